import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';

const main = new URL('../../cli/main.js', import.meta.url).pathname;
/** Debian's chromium (.ci/run installs it); HV2M_CHROMIUM overrides. */
const CHROMIUM = process.env.HV2M_CHROMIUM ?? '/usr/bin/chromium';

describe('the HTML report in a real browser', () => {
  it('opens in headless Chromium without console errors; every chart is visible with one mark per data point', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2m-report-'));
    const r = spawnSync(
      process.execPath,
      [
        main,
        'bench',
        '--out',
        dir,
        '--quiet',
        '--paths',
        'loopback',
        '--tests',
        'ping,tcp_rr,udp_rr,tcp_stream,udp_stream',
        '--sizes',
        '256,4096',
        '--duration-ms',
        '2',
        '--warmup-ms',
        '1',
        '--ping-count',
        '5',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as {
      results: { latencyUs: unknown; throughputMbps: unknown; test: string; size: number; cpu: Record<string, number> }[];
    };
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`file://${join(dir, 'index.html')}`);
      // In the page's own JavaScript (this project's TypeScript has no DOM types).
      const charts = await page.evaluate<
        { title: string; w: number; h: number; rects: number; symbols: number }[]
      >(`[...document.querySelectorAll('figure')].map((f) => {
        const svg = f.querySelector('svg');
        const box = svg.getBoundingClientRect();
        return { title: f.querySelector('figcaption').textContent, w: box.width, h: box.height,
          rects: svg.querySelectorAll('g.mark-rect.role-mark > path').length, symbols: svg.querySelectorAll('g.mark-symbol.role-mark > path').length };
      })`);
      assert.deepEqual(errors, []);
      assert.equal(charts.length, 4);
      for (const c of charts) assert.ok(c.w > 100 && c.h > 100, `${c.title}: visible`);
      const rr = doc.results.filter((x) => x.latencyUs !== null).length;
      const streams = doc.results.filter((x) => x.throughputMbps !== null).length;
      assert.equal(charts[0]!.rects, 2 * rr, 'a bar (mean) and a tick (p99) per response-time result');
      assert.equal(charts[1]!.symbols, streams, 'a point per throughput result');
      // CPU and per-frame charts show each RR test and each stream test at its largest size.
      const largest = (t: string): number => Math.max(...doc.results.filter((x) => x.test === t).map((x) => x.size));
      const shown = doc.results.filter((x) => x.latencyUs !== null || x.size === largest(x.test));
      assert.equal(shown.length, rr + 2);
      assert.equal(
        charts[2]!.rects,
        shown.reduce((n, x) => n + Object.keys(x.cpu).length, 0),
        'a bar segment per domain and Xen',
      );
      assert.equal(charts[3]!.rects, shown.length * 5, 'a bar per counter');
    } finally {
      await browser.close();
    }
  });
});
