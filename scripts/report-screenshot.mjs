#!/usr/bin/env node
// README's picture of the report: opens hv2m-report/index.html (run `npx hv2m bench` first)
// in headless Chromium and saves the first screenful and the charts as docs/report.png.
// Usage: node scripts/report-screenshot.mjs [report-dir] [out.png]
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const dir = resolve(process.argv[2] ?? 'hv2m-report');
const out = resolve(process.argv[3] ?? 'docs/report.png');
mkdirSync(dirname(out), { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.HV2M_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
await page.goto(`file://${dir}/index.html`);
await page.screenshot({ path: out, fullPage: false });
await browser.close();
console.log(`wrote ${out}`);
