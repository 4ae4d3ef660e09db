// After tsc: make the CLI entry point executable, so `npx hv2m` runs it directly.
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
