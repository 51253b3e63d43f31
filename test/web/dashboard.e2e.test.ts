/**
 * The dashboard in a real browser (Chromium through playwright-core), served
 * by a real daemon (`--listen`, sampling every second) on the real kernel:
 * cgroups with CPU-bound tasks, figures checked against the view files, live
 * additions and removals.
 *
 *     node --test --test-concurrency=1 dist/test/web/dashboard.e2e.test.js
 *
 * Writes a screenshot with a busy cgroup selected (path printed); with
 * CGVIEW_UPDATE_DOCS=1 also docs/dashboard.png.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { Daemon, type DaemonEnv, daemonEnv, waitForAsync } from '../daemon.js';
import { CGROUP2, onCleanup, REPO, removeTree, sleep, uniq, waitFor } from '../helpers.js';
import { killAll, launchBrowser, readWait, spinners } from './harness.js';

let env: DaemonEnv;
let d: Daemon;
let base: string;
let browser: Browser;
let page: Page;
const pids: number[] = [];
const consoleErrors: string[] = [];
const foreign: string[] = [];
const busyName = uniq('busy');
const idleName = uniq('quiet');

describe('dashboard in a browser', { concurrency: false }, () => {
  before(async () => {
    env = daemonEnv();
    onCleanup(() => killAll(pids));
    // The daemon's own dashboard (--listen), sampling every second.
    d = await Daemon.start(env, { args: ['--listen', '127.0.0.1:0', '--sample-interval', '1'] });
    await waitForAsync(() => /"metrics":"https?:/.test(d.stderr), 15000, 'metrics url in the log');
    base = new URL(/"metrics":"(https?:[^"]+)"/.exec(d.stderr)![1]!).origin;
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    fs.mkdirSync(path.join(env.cgroupRoot, busyName));
    fs.mkdirSync(path.join(env.cgroupRoot, idleName));
    onCleanup(() => {
      for (const n of [busyName, idleName]) removeTree(path.join(env.cgroupRoot, n));
    });
    await waitFor(() => fs.existsSync(path.join(env.bpffs, busyName, 'sched_lat')), 10_000, 'busy view');
    // Three CPU-bound tasks on one CPU: about two waiting at any time.
    pids.push(...spinners(path.join(env.cgroupRoot, busyName), 3, 0));
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => {
      if (!r.url().startsWith(`${base}/`) && !r.url().startsWith('blob:') && !r.url().startsWith('data:'))
        foreign.push(r.url());
    });
    // A few samples so that the busy cgroup has intervals.
    await waitForAsync(
      async () => ((await (await fetch(`${base}/api/v1/info`)).json()) as { seq: number }).seq >= 3,
      15_000,
      'three samples',
    );
  });

  after(async () => {
    await browser?.close();
    killAll(pids);
    await d?.stop();
  });

  it('loads with no console error and no request to another host', async () => {
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector(`.row .name[title*="${busyName}"]`);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreign, []);
    const csp = (await page.request.get(`${base}/`)).headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'/);
  });

  it("shows the busy cgroup's wait/s as its view file counts it over the same time (within 10%)", async () => {
    const file = path.join(env.bpffs, busyName, 'sched_lat');
    const a = readWait(file);
    await sleep(6000);
    const b = readWait(file);
    const truth = (b.waitNs - a.waitNs) / 1e9 / ((b.at - a.at) / 1000);
    // The dashboard's intervals inside [a, b]: from its API, as the page draws them.
    const histUrl = `${base}/api/v1/history?path=${encodeURIComponent(`/${path.relative(CGROUP2, path.join(env.cgroupRoot, busyName))}`)}&hierarchy=v2`;
    const h = (await (await page.request.get(histUrl)).json()) as {
      t: number[];
      views: Array<{
        view: string;
        dt: Array<number | null>;
        histograms: Array<{ key: string; sum: Array<number | null> }>;
      }>;
    };
    const sl = h.views.find((v) => v.view === 'sched_lat')!;
    const sum = sl.histograms.find((x) => x.key === 'wait_ns')!.sum;
    let ns = 0;
    let sec = 0;
    for (let i = 0; i < h.t.length; i++)
      if (h.t[i]! - (sl.dt[i] ?? 0) * 1000 >= a.at - 200 && h.t[i]! <= b.at + 200 && sum[i] !== null) {
        ns += sum[i]!;
        sec += sl.dt[i]!;
      }
    const dashRate = ns / 1e9 / sec;
    assert.ok(truth > 0.5, `the busy cgroup waits (${truth})`);
    assert.ok(Math.abs(dashRate - truth) / truth < 0.1, `dashboard ${dashRate} vs file ${truth}`);
    // And the tree shows exactly the figure of one of the last intervals (paused, so that it holds still).
    await page.click('#pause');
    const shown = Number(
      await page.locator(`.row:has(.name[title*="${busyName}"]) .cell.num`).nth(2).textContent(),
    );
    const h2 = (await (await page.request.get(histUrl)).json()) as typeof h;
    const sl2 = h2.views.find((v) => v.view === 'sched_lat')!;
    const sum2 = sl2.histograms.find((x) => x.key === 'wait_ns')!.sum;
    const last = [1, 2, 3].map((k) => (sum2.at(-k) ?? 0) / 1e9 / (sl2.dt.at(-k) ?? 1));
    assert.ok(
      last.some((x) => Math.abs(x - shown) <= 0.006 * Math.max(1, x)),
      `tree shows ${shown}; the last intervals: ${last.join(', ')}`,
    );
    assert.ok(Math.abs(shown - truth) / truth < 0.25, `tree shows ${shown}, file over 6 s ${truth}`);
    await page.click('#pause');
  });

  it('selecting the busy cgroup draws the charts and the heat map', async () => {
    await page.locator(`.row .name[title*="${busyName}"]`).click();
    await page.waitForSelector('canvas.heat');
    await page.waitForFunction(() => document.querySelectorAll('.uplot').length >= 3);
    const painted = await page.evaluate(() => {
      const c = document.querySelector('canvas.heat') as HTMLCanvasElement;
      const ctx = c.getContext('2d')!;
      const img = ctx.getImageData(0, 0, c.width, c.height).data;
      const bg = [img[0], img[1], img[2]];
      let n = 0;
      for (let i = 0; i < img.length; i += 4)
        if (Math.abs(img[i]! - bg[0]!) + Math.abs(img[i + 1]! - bg[1]!) + Math.abs(img[i + 2]! - bg[2]!) > 60)
          n++;
      return n;
    });
    assert.ok(painted > 500, `heat map pixels painted: ${painted}`);
    assert.match(page.url(), /sel=v2%3A/);
    // Wait a moment for the charts' lines, then keep a picture.
    await sleep(1500);
    const shot = path.join(os.tmpdir(), `cgview-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot });
    process.stdout.write(`# screenshot: ${shot}\n`);
    if (process.env['CGVIEW_UPDATE_DOCS'] === '1')
      fs.copyFileSync(shot, path.join(REPO, 'docs/dashboard.png'));
    assert.deepEqual(consoleErrors, []);
  });

  it('PromQL per chart names the exporter metric and the real path; CSV holds the visible history', async () => {
    const rel = `/${path.relative(CGROUP2, path.join(env.cgroupRoot, busyName))}`;
    const titles = await page
      .locator('figure.chart button')
      .evaluateAll((bs) => bs.map((b) => b.getAttribute('title') ?? ''));
    assert.ok(titles.length >= 4, `${titles.length} PromQL buttons`);
    assert.ok(
      titles.some((t) =>
        t.includes(`rate(cgview_sched_lat_wait_seconds_sum{cgroup="${rel}",hierarchy="v2"}[1m])`),
      ),
      titles.join('\n'),
    );
    assert.ok(
      titles.some((t) =>
        t.includes('histogram_quantile(0.99, sum by (le) (rate(cgview_sched_lat_wait_seconds_bucket{'),
      ),
    );
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download CSV')]);
    const file = path.join(os.tmpdir(), `cgview-dashboard-${process.pid}.csv`);
    await download.saveAs(file);
    onCleanup(() => fs.rmSync(file, { force: true }));
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.match(lines[0]!, /^time,seconds,.*sched_lat\.queue_self_ns_total\.per_s/);
    assert.ok(lines.length >= 4, `${lines.length} CSV lines`);
  });

  it('compares two cgroups side by side (Shift+click), and the URL holds both', async () => {
    await page.locator(`.row .name[title*="${idleName}"]`).click({ modifiers: ['Shift'] });
    await page.waitForFunction(() => document.querySelectorAll('section.cg').length === 2);
    assert.match(decodeURIComponent(page.url()), new RegExp(`cmp=v2:.*${idleName}`));
    await page.locator(`.row .name[title*="${idleName}"]`).click({ modifiers: ['Shift'] });
    await page.waitForFunction(() => document.querySelectorAll('section.cg').length === 1);
  });

  it('follows the dark colour scheme', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    // The charts are drawn again in the scheme's colours.
    await page.waitForFunction(() => {
      const c = getComputedStyle(document.body).backgroundColor.match(/\d+/g)!.map(Number);
      return c[0]! + c[1]! + c[2]! < 150;
    });
    await page.waitForSelector('canvas.heat');
    const shot = path.join(os.tmpdir(), `cgview-dashboard-dark-${process.pid}.png`);
    await page.screenshot({ path: shot });
    process.stdout.write(`# screenshot (dark): ${shot}\n`);
    await page.emulateMedia({ colorScheme: 'light' });
    assert.deepEqual(consoleErrors, []);
  });

  it('the filter finds a cgroup by part of its name', async () => {
    await page.fill('#filter', idleName.slice(-6));
    await page.waitForSelector(`.row .name[title*="${idleName}"]`);
    assert.equal(await page.locator(`.row:not([hidden]) .name[title*="${busyName}"]`).count(), 0);
    await page.fill('#filter', '');
  });

  it('a new cgroup appears live, a removed one disappears, without a reload', async () => {
    const name = uniq('live');
    const dir = path.join(env.cgroupRoot, name);
    fs.mkdirSync(dir);
    onCleanup(() => removeTree(dir));
    try {
      await page.waitForSelector(`.row .name[title*="${name}"]`, { timeout: 15_000 });
    } catch (e) {
      const api = (await (await page.request.get(`${base}/api/v1/tree`)).json()) as { path: string[] };
      const shown = await page
        .locator('.row:not([hidden]) .name')
        .evaluateAll((es) => es.map((x) => x.getAttribute('title')));
      throw new Error(
        `${(e as Error).message}\napi: ${api.path.join(' ')}\npage: ${shown.join(' | ')}\nconsole: ${consoleErrors.join(' | ')}`,
      );
    }
    fs.rmdirSync(dir);
    await page.waitForSelector(`.row .name[title*="${name}"]`, { state: 'detached', timeout: 15_000 });
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreign, []);
  });

  it('works with the keyboard: / filters, arrows move, Enter selects', async () => {
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.keyboard.press('/');
    await page.keyboard.type(busyName);
    await page.keyboard.press('Enter');
    // The first visible row is an ancestor; End goes to the last one, the busy cgroup.
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.waitForSelector('canvas.heat');
    assert.match(decodeURIComponent(page.url()), new RegExp(busyName));
  });
});
