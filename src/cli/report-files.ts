import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../profile/index.js';
import { toCsv, toJson, type ResultsDocument } from '../bench/results.js';
import { renderHtml } from '../bench/report/html.js';

/** Writes a file whole or not at all (a temporary beside it, then rename). */
export function writeWhole(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** results.json, results.csv and index.html of a run into `dir`. */
export async function writeReport(dir: string, doc: ResultsDocument, profile: Profile): Promise<void> {
  const html = await renderHtml(doc, profile);
  mkdirSync(dir, { recursive: true });
  writeWhole(join(dir, 'results.json'), toJson(doc));
  writeWhole(join(dir, 'results.csv'), toCsv(doc));
  writeWhole(join(dir, 'index.html'), html);
}
