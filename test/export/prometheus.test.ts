/**
 * /metrics scraped by a real Prometheus (issue 9): a daemon mirrors a test
 * cgroup with info and sched_lat inherited; two busy loops share CPU 1 in
 * `busy.service`, so they wait. Two Prometheus servers scrape the daemon
 * every second: one classic (it negotiates OpenMetrics), one with native
 * histograms (it negotiates the protobuf exposition). PromQL answers are
 * checked against the view files read by the test over the same interval.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { type Daemon, type DaemonEnv, daemonEnv } from '../daemon.js';
import { CGROUP2, onCleanup, RUN_PREFIX, sleep, waitFor } from '../helpers.js';
import { Prometheus, promtoolCheckMetrics } from '../prometheus.js';
import { killTasks, listeningDaemon, parseExposition, pick, scrape, spinners } from './util.js';

/** The view's counters and p99 (parsed by the test itself, not by cgview's code). */
function readSchedLat(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of fs.readFileSync(file, 'latin1').split('\n')) {
    const i = l.indexOf(': ');
    if (i > 0) out[l.slice(0, i)] = Number(l.slice(i + 2));
  }
  return out;
}

describe('/metrics in a real Prometheus', () => {
  let env: DaemonEnv;
  let d: Daemon;
  let url: string;
  let classic: Prometheus;
  let native: Prometheus;
  let busy: string;
  let label: string;
  let pids: number[] = [];
  let classicTolerance = 2;
  const rel = (cg: string) => `/${path.relative(CGROUP2, cg)}`;

  before(async () => {
    env = daemonEnv();
    busy = path.join(env.cgroupRoot, 'busy.service');
    fs.mkdirSync(busy);
    // Every view bucket in the classic histogram too (factor-2 buckets, as the native ones), where
    // the daemon has --metrics-config (the web helper's flag); else the default set, whose
    // factor-4 buckets bound the classic quantile's error to x4, not x2.
    const cfg = path.join(fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX)), 'metrics.json');
    onCleanup(() => fs.rmSync(path.dirname(cfg), { recursive: true, force: true }));
    fs.writeFileSync(cfg, '{"buckets": "all"}');
    try {
      ({ d, url } = await listeningDaemon(env, { args: ['--metrics-config', cfg] }));
    } catch {
      classicTolerance = 4;
      ({ d, url } = await listeningDaemon(env));
    }
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await waitFor(
      () => fs.existsSync(path.join(env.bpffs, 'busy%2Eservice', 'sched_lat')),
      5000,
      'sched_lat pinned',
    );
    label = rel(busy);
    pids = await spinners(busy, 2);
    const target = new URL(url).host;
    [classic, native] = await Promise.all([
      Prometheus.start({ targets: [target] }),
      Prometheus.start({ targets: [target], nativeHistograms: true }),
    ]);
    await Promise.all([classic.waitScrapes(3), native.waitScrapes(3)]);
  });
  after(() => killTasks(pids));

  it('both servers scrape cleanly (OpenMetrics and protobuf)', async () => {
    for (const p of [classic, native]) {
      const t = await p.targets();
      assert.equal(t.length, 1);
      assert.equal(t[0]!.health, 'up', JSON.stringify(t));
      assert.equal(t[0]!.lastError, '');
    }
    const v = await classic.value(`cgview_cgroup_info{cgroup="${label}"}`);
    assert.equal(v, 1);
    const info = await classic.query(`cgview_cgroup_info{cgroup="${label}"}`);
    assert.equal(info[0]!.metric['cgroup_id'], String(fs.statSync(busy, { bigint: true }).ino));
    assert.equal(info[0]!.metric['unit'], 'busy.service');
    assert.equal(info[0]!.metric['hierarchy'], 'v2');
    assert.equal(info[0]!.metric['level'], String(label.split('/').length - 1));
  });

  it('rate(wait_seconds_sum) is what the view file counts over the same interval', async () => {
    const file = path.join(env.bpffs, 'busy%2Eservice', 'sched_lat');
    const q = `cgview_sched_lat_wait_seconds_sum{cgroup="${label}"}`;
    // The raw samples Prometheus holds over ~10 s, and the view file read at both ends of that window.
    const t0 = Date.now() / 1000;
    const a = readSchedLat(file);
    await sleep(10000);
    const b = readSchedLat(file);
    const t1 = Date.now() / 1000;
    await classic.waitScrapes(1);
    const fileRate = (b['wait_ns_total']! - a['wait_ns_total']!) / 1e9 / (t1 - t0);
    assert.ok(fileRate > 0.3, `two loops on one CPU wait: ${fileRate} s/s`);
    const rate = await classic.value(`rate(${q}[10s])`);
    assert.ok(rate !== undefined && rate > 0);
    console.log(`wait rate: prometheus ${rate} s/s, view file ${fileRate} s/s`);
    assert.ok(Math.abs(rate - fileRate) / fileRate < 0.2, `rate ${rate} vs file ${fileRate}`);
    // The same for the counters of the split, self + other = total.
    const self = await classic.value(
      `rate(cgview_sched_lat_queue_self_seconds_total{cgroup="${label}"}[10s])`,
    );
    const other = await classic.value(
      `rate(cgview_sched_lat_queue_other_seconds_total{cgroup="${label}"}[10s])`,
    );
    assert.ok(self !== undefined && other !== undefined);
    assert.ok(Math.abs(self + other - rate) / rate < 0.2, `self ${self} + other ${other} vs ${rate}`);
    // Counts agree too: _count is the view's wait_ns_lt_inf.
    const cnt = await classic.value(`rate(cgview_sched_lat_wait_seconds_count{cgroup="${label}"}[10s])`);
    const fileCnt = (b['wait_ns_lt_inf']! - a['wait_ns_lt_inf']!) / (t1 - t0);
    assert.ok(
      cnt !== undefined && Math.abs(cnt - fileCnt) / fileCnt < 0.2,
      `count rate ${cnt} vs file ${fileCnt}`,
    );
  });

  it("histogram_quantile(0.99) of the classic and the native histogram agree with the view's p99", async () => {
    const p99 = readSchedLat(path.join(env.bpffs, 'busy%2Eservice', 'sched_lat'))['p99_ns']! / 1e9;
    assert.ok(p99 > 0);
    const cl = await classic.value(
      `histogram_quantile(0.99, rate(cgview_sched_lat_wait_seconds_bucket{cgroup="${label}"}[20s]))`,
    );
    const na = await native.value(
      `histogram_quantile(0.99, rate(cgview_sched_lat_wait_seconds{cgroup="${label}"}[20s]))`,
    );
    assert.ok(cl !== undefined && Number.isFinite(cl), `classic ${cl}`);
    assert.ok(na !== undefined && Number.isFinite(na), `native ${na}`);
    console.log(`p99: view ${p99} s, classic ${cl} s, native ${na} s`);
    const within = (x: number, y: number, f: number) => x / y <= f && y / x <= f;
    assert.ok(
      within(cl, p99, classicTolerance),
      `classic p99 ${cl} s vs view ${p99} s (x${classicTolerance})`,
    );
    assert.ok(within(na, p99, 2), `native p99 ${na} s vs view ${p99} s`);
    assert.ok(within(na, cl, classicTolerance), `native ${na} vs classic ${cl} (x${classicTolerance})`);
    // The native series is a native histogram (its count and sum are functions of it).
    const nc = await native.value(
      `histogram_count(rate(cgview_sched_lat_wait_seconds{cgroup="${label}"}[20s]))`,
    );
    const cc = await classic.value(`rate(cgview_sched_lat_wait_seconds_count{cgroup="${label}"}[20s])`);
    assert.ok(
      nc !== undefined && cc !== undefined && Math.abs(nc - cc) / cc < 0.2,
      `native count ${nc}, classic ${cc}`,
    );
  });

  it("a removed cgroup's series go stale", async () => {
    const gone = path.join(env.cgroupRoot, 'gone');
    fs.mkdirSync(gone);
    const l = rel(gone);
    await classic.waitValue(`cgview_cgroup_info{cgroup="${l}"}`, (v) => v === 1);
    await classic.waitValue(`count(cgview_sched_lat_wait_seconds_count{cgroup="${l}"})`, (v) => v === 1);
    fs.rmdirSync(gone);
    // Stale at the first scrape without it: the instant query is empty (lookback is 30 s: not just aged out).
    const t = Date.now();
    await classic.waitValue(`count({cgroup="${l}"})`, (v) => v === undefined, 10000);
    assert.ok(Date.now() - t < 10000);
    assert.equal(pick(parseExposition(await scrape(url)), 'cgview_cgroup_info', { cgroup: l }).length, 0);
  });

  it('promtool check metrics: nothing on the text format; OpenMetrics only its counters seen as help-less', async () => {
    const text = await scrape(url);
    assert.match(text, /^cgview_sched_lat_wait_seconds_bucket\{/m);
    const r = promtoolCheckMetrics(text);
    assert.equal(r.output, '', r.output);
    assert.equal(r.code, 0);
    const om = await scrape(url, { accept: 'application/openmetrics-text; version=1.0.0' });
    assert.ok(om.endsWith('# EOF\n'));
    const r2 = promtoolCheckMetrics(
      om.replace(
        /^# (HELP|TYPE) cgview_cgroup (.*)$/gm,
        (_s, w: string, rest: string) => `# ${w} cgview_cgroup_info ${rest === 'info' ? 'gauge' : rest}`,
      ),
    );
    for (const f of r2.output.split('\n').filter((x) => x !== ''))
      assert.match(f, /^\S+_total no help text$/);
  });

  it('every histogram of a scrape is self-consistent', async () => {
    const s = parseExposition(await scrape(url));
    const series = new Map<string, { le: Array<[number, number]>; count?: number }>();
    for (const x of s) {
      if (!x.name.startsWith('cgview_sched_lat_wait_seconds_')) continue;
      const { le, ...rest } = x.labels;
      const k = JSON.stringify(rest);
      const e = series.get(k) ?? { le: [] };
      series.set(k, e);
      if (x.name.endsWith('_bucket')) e.le.push([le === '+Inf' ? Infinity : Number(le), x.value]);
      if (x.name.endsWith('_count')) e.count = x.value;
    }
    assert.ok(series.size >= 2);
    for (const [k, e] of series) {
      for (let i = 1; i < e.le.length; i++) {
        assert.ok(e.le[i]![0] > e.le[i - 1]![0], k);
        assert.ok(e.le[i]![1] >= e.le[i - 1]![1], `${k}: buckets fall`);
      }
      assert.equal(e.le[e.le.length - 1]![0], Infinity);
      assert.equal(e.le[e.le.length - 1]![1], e.count, `${k}: +Inf is the count`);
    }
  });

  it('gzip when asked; the same samples', async () => {
    const body = await new Promise<{ enc: string | undefined; type: string | undefined; buf: Buffer }>(
      (resolve, reject) => {
        http
          .get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                enc: res.headers['content-encoding'],
                type: res.headers['content-type'],
                buf: Buffer.concat(chunks),
              }),
            );
          })
          .on('error', reject);
      },
    );
    assert.equal(body.enc, 'gzip');
    assert.match(body.type ?? '', /^text\/plain; version=0\.0\.4/);
    const text = zlib.gunzipSync(body.buf).toString('utf8');
    assert.ok(pick(parseExposition(text), 'cgview_cgroup_info', { cgroup: label }).length === 1);
  });

  it('the daemon figures are cgview_daemon_*', async () => {
    const s = parseExposition(await scrape(url));
    assert.equal(pick(s, 'cgview_daemon_up', {})[0]!.value, 1);
    // The tree root and busy.service ('gone' went in the test before).
    assert.equal(pick(s, 'cgview_daemon_tree_dirs', { root: env.bpffs })[0]!.value, 2);
    assert.ok(pick(s, 'cgview_daemon_scrapes_total', {})[0]!.value >= 1);
    assert.equal(
      pick(s, 'cgview_daemon_collector_runs_total', { collector: 'sched_lat@0' }).length > 0,
      true,
    );
  });
});
