/**
 * The dependency rule of STYLE.md, checked on every test run: folders under src/ import
 * one way only. `profile` (the cost-profile loader) is a leaf like `xen/abi`: every layer
 * that charges costs may read it, and it imports nothing from src/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Layer of a file (path relative to src/), most specific first. */
function layerOf(rel: string): string {
  if (rel.startsWith('xen/abi/')) return 'xen/abi';
  const top = rel.split('/')[0]!;
  return top.endsWith('.ts') ? 'root' : top;
}

const allowed: Record<string, string[]> = {
  sim: [],
  'xen/abi': [],
  profile: [],
  net: ['sim', 'profile'],
  xen: ['sim', 'xen/abi', 'profile'],
  vnet: ['sim', 'xen', 'xen/abi', 'net', 'profile'],
  host: ['sim', 'xen', 'xen/abi', 'net', 'vnet', 'profile'],
  bench: ['sim', 'xen', 'xen/abi', 'net', 'vnet', 'host', 'profile'],
  cli: ['sim', 'xen', 'xen/abi', 'net', 'vnet', 'host', 'bench', 'profile'],
  root: [],
};

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

describe('architecture', () => {
  it('src/ folders depend on each other only as STYLE.md allows', () => {
    const violations: string[] = [];
    const files = sources(srcDir);
    assert.ok(files.length > 10, 'found the sources');
    for (const file of files) {
      const rel = relative(srcDir, file).split('\\').join('/');
      const from = layerOf(rel);
      if (!(from in allowed)) {
        violations.push(`${rel}: folder "${from}" has no place in the dependency rule (add it to architecture.test.ts)`);
        continue;
      }
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(importRe)) {
        const spec = m[1] ?? m[2]!;
        if (!spec.startsWith('.')) continue; // packages and node: built-ins
        const target = relative(srcDir, resolve(dirname(file), spec))
          .split('\\')
          .join('/');
        if (target.startsWith('..')) {
          violations.push(`${rel}: imports ${spec}, outside src/`);
          continue;
        }
        const to = layerOf(target);
        if (to === from) continue;
        const isTest = rel.endsWith('.test.ts');
        if (!allowed[from]!.includes(to) && !(isTest && from === 'root')) violations.push(`${rel} (${from}) imports ${spec} (${to})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
