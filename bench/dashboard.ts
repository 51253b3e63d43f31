/**
 * Dashboard benchmarks (issue 11), at N mirrored cgroups (default 10,000):
 *   1. sampling: CPU and wall time per sample of the sampler (snapshot +
 *      cgroupfs + history), side by side with the snapshot alone (the floor:
 *      reading the views), per sample and per hour at a 5 s interval;
 *   2. a full hour of history (720 samples, 1% of the cgroups busy): record
 *      bytes, the process's RSS growth, and the time of one busy cgroup's
 *      hour (/api/v1/history: query + JSON);
 *   3. the page: navigation → tree rendered in Chromium (median of --loads),
 *      the tree payload (plain and gzip).
 * Run as root: node --expose-gc dist/bench/dashboard.js [--cgroups 10000] [--samples 12] [--loads 7]
 *        and:   node --expose-gc dist/bench/dashboard.js --hour [--cgroups 10000]   (part 2, a fresh process)
 *        and:   node dist/bench/dashboard.js --daemon [--seconds 60]   (part 4: the daemon itself, with and without the dashboard)
 *
 * The snapshot here reads the view files (test/web/harness.ts fileSnapshot);
 * in the daemon it is the exporter's collectSnapshot (bulk path where there is one).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';
import { type Route, startDashboard } from '../src/api/index.js';
import { CgroupFsReader } from '../src/history/cgroupfs.js';
import { History } from '../src/history/store.js';
import type { CgroupSnapLike } from '../src/history/types.js';
import { schedLat } from '../test/web/fixtures.js';
import { fileSnapshot, launchBrowser } from '../test/web/harness.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const CG2 = (() => {
  const m = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => / - cgroup2 /.test(l));
  return m ? m.split(' ')[4]! : '/sys/fs/cgroup';
})();
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('cgroups', 10000);
const SAMPLES = arg('samples', 12);
const LOADS = arg('loads', 7);
const tag = `cgvb-${process.pid}`;
const parent = path.join(CG2, tag);
const bpfDir = `/sys/fs/bpf/${tag}`;
const treeDir = path.join(bpfDir, 'tree');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvb-'));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

function layout(n: number): string[] {
  const k = Math.ceil(Math.sqrt(n));
  const rels: string[] = [];
  for (let i = 0; i < k && rels.length < n; i++) {
    rels.push(`g${i}`);
    for (let j = 0; j < k - 1 && rels.length < n; j++) rels.push(`g${i}/c${j}`);
  }
  return rels;
}

function rmCgroups(rels: string[]): void {
  for (const r of [...rels].reverse())
    try {
      fs.rmdirSync(path.join(parent, r));
    } catch {
      /* gone */
    }
  try {
    fs.rmdirSync(parent);
  } catch {
    /* gone */
  }
}

function cli(args: string[], sock: string): void {
  execFileSync(process.execPath, [path.join(REPO, 'bin/cgview'), ...args, '--socket', sock], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function main(): Promise<void> {
  if (process.argv.includes('--hour')) {
    await hour();
    return;
  }
  const rels = layout(N);
  fs.mkdirSync(parent);
  for (const r of rels) fs.mkdirSync(path.join(parent, r));
  fs.mkdirSync(bpfDir);
  const sock = path.join(work, 'sock');
  let d = await startDaemon(sock, []);
  process.on('exit', () => {
    try {
      d.child.kill('SIGTERM');
    } catch {
      /* gone */
    }
  });
  const t0 = performance.now();
  cli(['pin', 'info', treeDir, '--cgroup', parent, '--inherit'], sock);
  cli(['pin', 'sched_lat', treeDir, '--inherit'], sock);
  console.log(
    `${N} cgroups mirrored with info + sched_lat in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  try {
    if (process.argv.includes('--daemon')) d = await daemonBench(d, sock);
    else await bench(rels);
  } finally {
    d.child.kill('SIGTERM');
    await new Promise((r) => d.child.once('exit', r));
    execFileSync('rm', ['-rf', bpfDir]);
    rmCgroups(rels);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

interface Running {
  child: ReturnType<typeof spawn>;
  url: string | undefined;
}

async function startDaemon(sock: string, extra: string[]): Promise<Running> {
  const child = spawn(
    process.execPath,
    [
      // CGVB_PROF=DIR: the daemon with the dashboard writes a V8 CPU profile there.
      ...(process.env['CGVB_PROF'] && extra.length
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env['CGVB_PROF']}`]
        : []),
      path.join(REPO, 'bin/cgview'),
      'daemon',
      '--bpffs',
      treeDir,
      '--cgroup-root',
      parent,
      '--state',
      path.join(work, 'state.json'),
      '--socket',
      sock,
      '--no-default-views',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const url = await new Promise<string | undefined>((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('"msg":"ready"')) resolve(/"metrics":"(https?:[^"]+)\/metrics"/.exec(buf)?.[1]);
    });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${buf}`)));
  });
  return { child, url };
}

/** utime + stime of a process, ms. */
function cpuMsOf(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}
function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/**
 * 4. The daemon itself, side by side: the same tree, first without --listen
 * (no dashboard), then with --listen and the dashboard sampling every 5 s:
 * CPU and RSS over the same wall time, the page through the daemon.
 */
async function daemonBench(d: Running, sock: string): Promise<Running> {
  const W = arg('seconds', 60);
  await new Promise((r) => setTimeout(r, 3000));
  const c0 = cpuMsOf(d.child.pid!);
  await new Promise((r) => setTimeout(r, W * 1000));
  const base = { cpu: cpuMsOf(d.child.pid!) - c0, rss: rssOf(d.child.pid!) };
  d.child.kill('SIGTERM');
  await new Promise((r) => d.child.once('exit', r));
  const withDash = await startDaemon(sock, ['--listen', '127.0.0.1:0', '--sample-interval', '5']);
  const url = withDash.url!;
  const info = async () =>
    (await (await fetch(`${url}/api/v1/info`)).json()) as {
      seq: number;
      sampler: { cpuUs: number; samples: number; lastMs: number };
      memory: { recordBytes: number; estimateBytes: number };
    };
  while ((await info()).seq < 2) await new Promise((r) => setTimeout(r, 500));
  const s0 = await info();
  const c1 = cpuMsOf(withDash.child.pid!);
  await new Promise((r) => setTimeout(r, W * 1000));
  const cpu = cpuMsOf(withDash.child.pid!) - c1;
  const s1 = await info();
  const rss = rssOf(withDash.child.pid!);
  const samples = s1.seq - s0.seq;
  const perSample = (cpu - base.cpu) / Math.max(1, samples);
  console.log(`\n4. the daemon over ${W} s, ${N} cgroups (info + sched_lat), side by side:`);
  console.log(`   without --listen: ${base.cpu.toFixed(0)} ms CPU, RSS ${mb(base.rss)}`);
  console.log(
    `   with the dashboard sampling every 5 s: ${cpu.toFixed(0)} ms CPU over ${samples} samples, RSS ${mb(rss)}; history ${mb(s1.memory.recordBytes)} records, ${mb(s1.memory.estimateBytes)} estimated`,
  );
  console.log(
    `   sampling: ${perSample.toFixed(0)} ms CPU a sample = ${((perSample / 5000) * 100).toFixed(2)}% of a core, ${((perSample * 720) / 1000).toFixed(0)} s an hour (the sampler's own count: ${((s1.sampler.cpuUs - s0.sampler.cpuUs) / 1000 / Math.max(1, samples)).toFixed(0)} ms, last sample ${s1.sampler.lastMs.toFixed(0)} ms wall)`,
  );
  const tree = await (await fetch(`${url}/api/v1/tree`)).arrayBuffer();
  const browser = await launchBrowser();
  const loads: number[] = [];
  try {
    for (let i = 0; i < LOADS; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const w0 = performance.now();
      await page.goto(`${url}/`);
      await page.waitForSelector('body[data-ready="1"] .row');
      loads.push(performance.now() - w0);
      await page.close();
    }
  } finally {
    await browser.close();
  }
  const hq: number[] = [];
  for (let i = 0; i < 5; i++) {
    const w0 = performance.now();
    await (
      await fetch(
        `${url}/api/v1/history?hierarchy=v2&path=${encodeURIComponent(`/${path.relative(CG2, parent)}/g0/c0`)}`,
      )
    ).arrayBuffer();
    hq.push(performance.now() - w0);
  }
  console.log(
    `   tree payload ${(tree.byteLength / 1024).toFixed(0)} KiB; navigation → tree rendered: median ${median(loads).toFixed(0)} ms of ${LOADS} (${loads.map((x) => x.toFixed(0)).join(' ')}); one cgroup's history over HTTP: median ${median(hq).toFixed(1)} ms`,
  );
  return withDash;
}

async function bench(rels: string[]): Promise<void> {
  const source = fileSnapshot(treeDir, parent);
  // 1. Sampling, against the snapshot alone.
  const floor: Array<{ cpu: number; ms: number }> = [];
  for (let i = 0; i < 3; i++) {
    const c0 = cpuUs();
    const w0 = performance.now();
    await source();
    floor.push({ cpu: cpuUs() - c0, ms: performance.now() - w0 });
  }
  const h = new History({ intervalMs: 5000 });
  const cgfs = new CgroupFsReader();
  const samp: Array<{ snap: number; fs: number; ingest: number; reads: number }> = [];
  for (let i = 0; i < SAMPLES; i++) {
    const c0 = cpuUs();
    const s = await source();
    const c1 = cpuUs();
    const r0 = cgfs.reads;
    cgfs.addTo(s.cgroups);
    const c2 = cpuUs();
    h.ingest(s);
    samp.push({ snap: c1 - c0, fs: c2 - c1, ingest: cpuUs() - c2, reads: cgfs.reads - r0 });
  }
  // The first two are the baseline and the first delta of every cgroup: the steady state follows.
  const warm = samp.slice(2);
  const ms = (k: 'snap' | 'fs' | 'ingest') => median(warm.map((x) => x[k])) / 1000;
  const floorCpu = median(floor.map((x) => x.cpu)) / 1000;
  const own = ms('fs') + ms('ingest');
  const pct = (x: number) => `${((x / 5000) * 100).toFixed(2)}%`;
  console.log(`\n1. sampling, CPU per sample (median of the last ${warm.length}):`);
  console.log(
    `   snapshot of the view files alone (the floor; the daemon uses the exporter's): ${floorCpu.toFixed(0)} ms (${pct(floorCpu)} of a core at 5 s)`,
  );
  console.log(`   snapshot in the sampler: ${ms('snap').toFixed(0)} ms`);
  console.log(
    `   cgroupfs (tasks, CPU where something moves): ${ms('fs').toFixed(1)} ms, ${median(warm.map((x) => x.reads))} cgroups read`,
  );
  console.log(`   history ingest: ${ms('ingest').toFixed(1)} ms`);
  console.log(
    `   the dashboard's own part (cgroupfs + ingest): ${own.toFixed(1)} ms = ${pct(own)} of a core at 5 s, ${((own * 720) / 1000).toFixed(1)} s CPU per hour; ${(own / floorCpu).toFixed(3)}x the file snapshot`,
  );

  // 3. The page (while the file-backed history of the real cgroups serves it).
  const routes: Array<[string, Route]> = [];
  const dash = startDashboard({ source, addRoute: (p, r) => routes.push([p, r]), intervalMs: 5000 });
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    for (const [p, r] of routes) if (url.pathname.startsWith(p) && (await r(req, res, url))) return;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  while (dash.history.seq < 2) await new Promise((r) => setTimeout(r, 200));
  // The file-backed sampler blocks the event loop while it reads (the daemon's bulk path does not): the
  // page is timed on its own.
  dash.sampler.stop();
  const tree = await (await fetch(`${base}/api/v1/tree`)).arrayBuffer();
  const treeGz = zlib.gzipSync(Buffer.from(tree), { level: 4 }).length;
  const browser = await launchBrowser();
  const loads: number[] = [];
  try {
    for (let i = 0; i < LOADS; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const w0 = performance.now();
      await page.goto(`${base}/`);
      await page.waitForSelector('body[data-ready="1"] .row');
      loads.push(performance.now() - w0);
      await page.close();
    }
  } finally {
    await browser.close();
    dash.stop();
    server.closeAllConnections();
    server.close();
  }
  console.log('\n3. the page:');
  console.log(
    `   tree payload: ${(tree.byteLength / 1024).toFixed(0)} KiB, ${(treeGz / 1024).toFixed(0)} KiB gzip (${rels.length + 1} rows)`,
  );
  console.log(
    `   navigation → tree rendered: median ${median(loads).toFixed(0)} ms of ${LOADS} (${loads.map((x) => x.toFixed(0)).join(' ')})`,
  );

  console.log('\n(2. an hour of history: run with --hour, in a fresh process)');
}

async function hour(): Promise<void> {
  // 2. An hour of history at N cgroups, 1% busy (synthetic samples: the store's cost alone).
  if (global.gc) global.gc();
  const heap = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const hh = new History({ intervalMs: 5000 });
  const busy = Math.max(1, Math.floor(N / 100));
  const idle: CgroupSnapLike[] = [];
  for (let c = busy; c < N; c++) {
    const id = String(5_000_000 + c);
    idle.push({
      path: `/h/c${c}`,
      hierarchy: 'v2',
      id,
      level: 2,
      views: new Map([['sched_lat', schedLat(id, { self: 7, other: 3, buckets: [1] })]]),
    });
  }
  // Baseline after the bench's own idle samples (in the daemon the snapshot's, let go after each sample).
  if (global.gc) global.gc();
  const rssStart = process.memoryUsage().rss;
  const rss0 = heap();
  const w0 = performance.now();
  for (let i = 0; i < 720; i++) {
    const cgroups: CgroupSnapLike[] = [];
    for (let c = 0; c < busy; c++) {
      const id = String(5_000_000 + c);
      const buckets = Array.from({ length: 20 }, (_, b) => (i * (b + 1) * 13) % 997);
      cgroups.push({
        path: `/h/c${c}`,
        hierarchy: 'v2',
        id,
        level: 2,
        views: new Map([['sched_lat', schedLat(id, { self: i * 3e6, other: i * 1e6, buckets })]]),
      });
    }
    cgroups.push(...idle);
    hh.ingest({ at: 1_700_000_000_000 + i * 5000, cgroups });
  }
  const fillS = (performance.now() - w0) / 1000;
  if (global.gc) global.gc();
  const mem = hh.memory();
  const rss1 = heap();
  const s = hh.find({ path: '/h/c0' })!;
  const qt: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 9; i++) {
    const q0 = performance.now();
    bytes = JSON.stringify(hh.query(s)).length;
    qt.push(performance.now() - q0);
  }
  console.log(
    `\n2. an hour of history (720 samples × ${N} cgroups, ${busy} busy with 20 buckets moving; filled in ${fillS.toFixed(0)} s):`,
  );
  console.log(
    `   records ${mem.records} = ${mb(mem.recordBytes)} (budget ${mb(mem.budgetBytes)}), estimate with series ${mb(mem.estimateBytes)}; JS heap + typed arrays growth ${mb(rss1 - rss0)} (series and their last values included)`,
  );
  console.log(`   process RSS: ${mb(rssStart)} before, ${mb(process.memoryUsage().rss)} with the hour`);
  console.log(
    `   one busy cgroup's hour: ${(bytes / 1024).toFixed(0)} KiB JSON in median ${median(qt).toFixed(1)} ms (query + JSON.stringify)`,
  );
}

await main();
