// Lint configuration: typescript-eslint's type-aware recommended rules plus the
// project's own: the model never reads a real clock or Math.random (STYLE.md §4).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const realClock = [
  { object: 'Math', property: 'random', message: 'Use the environment\'s seeded Rng (src/sim/rng.ts).' },
  { object: 'Date', property: 'now', message: 'Use env.now (virtual nanoseconds).' },
  { object: 'performance', property: 'now', message: 'Use env.now (virtual nanoseconds).' },
  { object: 'process', property: 'hrtime', message: 'Use env.now (virtual nanoseconds).' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'hv2m-report/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked.map((c) => ({ ...c, files: ['src/**/*.ts'] })),
  {
    files: ['src/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      'eqeqeq': ['error', 'always'],
      'no-restricted-properties': ['error', ...realClock],
    },
  },
  {
    // The CLI and the benchmarks measure wall time on purpose; tests may too.
    files: ['src/cli/**', 'src/bench/**/*-bench.ts', '**/*.test.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  {
    files: ['scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
