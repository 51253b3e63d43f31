/**
 * The dashboard inside the real daemon (`--listen`, `--web-config`): the page
 * and the API are behind the same basic auth as /metrics; with the right
 * password the page loads in Chromium with no console error, no request to
 * another host, and shows a busy cgroup of the test's own.
 *
 *     node --test --test-concurrency=1 dist/test/web/daemon-web.test.js
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { get, hashOf, tmpDir, writeFile } from '../daemon/http-util.js';
import { Daemon, type DaemonEnv, daemonEnv, waitForAsync } from '../daemon.js';
import { onCleanup, removeTree, uniq, waitFor } from '../helpers.js';
import { killAll, launchBrowser, spinners } from './harness.js';

let env: DaemonEnv;
let d: Daemon;
let base: string;
let browser: Browser | undefined;
const pids: number[] = [];
const busyName = uniq('busy');
const USER = 'ops';
const PASSWORD = 'right-horse-battery';

describe('dashboard in the daemon, behind --web-config', { concurrency: false }, () => {
  before(async () => {
    env = daemonEnv();
    onCleanup(() => killAll(pids));
    const dir = tmpDir('dash-web');
    const cfg = writeFile(dir, 'web.yml', `basic_auth_users:\n  ${USER}: ${hashOf(PASSWORD)}\n`);
    d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0', '--web-config', cfg, '--sample-interval', '1'],
    });
    await waitForAsync(() => /"metrics":"https?:/.test(d.stderr), 15000, 'metrics url in the log');
    base = new URL(/"metrics":"(https?:[^"]+)"/.exec(d.stderr)![1]!).origin;
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    fs.mkdirSync(path.join(env.cgroupRoot, busyName));
    onCleanup(() => removeTree(path.join(env.cgroupRoot, busyName)));
    await waitFor(() => fs.existsSync(path.join(env.bpffs, busyName, 'sched_lat')), 10_000, 'busy view');
    pids.push(...spinners(path.join(env.cgroupRoot, busyName), 2, 0));
  });

  after(async () => {
    await browser?.close();
    killAll(pids);
    await d?.stop();
  });

  it('says where the dashboard is, and how to reach it through SSH', () => {
    assert.match(
      d.stdout,
      /cgview: dashboard at http:\/\/127\.0\.0\.1:\d+\/; from another machine: ssh -L (\d+):127\.0\.0\.1:\1 /,
    );
  });

  it('refuses the page and the API without or with a wrong password (401), serves them with the right one', async () => {
    for (const p of [
      '/',
      '/api/v1/info',
      '/api/v1/tree',
      '/api/v1/history?path=/',
      '/api/v1/events',
      '/assets/x.js',
    ]) {
      const none = await get(`${base}${p}`);
      assert.equal(none.status, 401, `${p} without credentials`);
      const wrong = await get(`${base}${p}`, { user: USER, password: 'wrong' });
      assert.equal(wrong.status, 401, `${p} with a wrong password`);
      assert.doesNotMatch(wrong.body, /cgroup|seq|<html/i, 'nothing of the page or the data in a refusal');
    }
    const ok = await get(`${base}/`, { user: USER, password: PASSWORD });
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['content-security-policy']), /default-src 'self'/);
    const info = await get(`${base}/api/v1/info`, { user: USER, password: PASSWORD });
    assert.equal(info.status, 200);
    assert.equal(JSON.parse(info.body).sampleIntervalMs, 1000);
  });

  it('loads in Chromium with the right password: no console error, no other host, the busy cgroup shown', async () => {
    browser = await launchBrowser();
    const page = await browser.newPage({ httpCredentials: { username: USER, password: PASSWORD } });
    const errors: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => {
      if (!r.url().startsWith(`${base}/`) && !/^(blob|data):/.test(r.url())) foreign.push(r.url());
    });
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector(`.row .name[title*="${busyName}"]`, { timeout: 20_000 });
    // Its wait/s (third figure) becomes a number above zero: two tasks on one CPU wait about one at a time.
    await page.waitForFunction(
      (name) => {
        const row = [...document.querySelectorAll('.row')].find((r) =>
          r.querySelector(`.name[title*="${name}"]`),
        );
        const v = Number(row?.querySelectorAll('.cell.num')[2]?.textContent);
        return v > 0.3;
      },
      busyName,
      { timeout: 20_000 },
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, []);
  });
});
