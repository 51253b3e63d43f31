/**
 * /metrics at scale (issue 9): N mirrored cgroups with `info` and
 * `sched_lat` inherited, side by side in the same run with a C loop that
 * reads every view file once (bench/scrape_floor.c, the floor of the file
 * path). Prints the median time of one scrape (plain and gzip; each past the
 * scrape cache), the daemon's CPU time per scrape (utime + stime of its
 * /proc/PID/stat), what that is at a 15 s scrape interval, the body sizes,
 * and the daemon's RSS.
 *
 * Run as root after scripts/setup.sh:
 *   node dist/bench/scrape.js [--cgroups 10000] [--scrapes 7]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const REPO = path.resolve(import.meta.dirname, '../..');
const CG2 = '/sys/fs/cgroup/unified';
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('cgroups', 10000);
const SCRAPES = arg('scrapes', 7);
const tag = `cgvb-${process.pid}`;
const parent = path.join(CG2, tag);
const treeDir = `/sys/fs/bpf/${tag}-tree`;
const work = fs.mkdtempSync('/tmp/cgvb-');
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function layout(n: number): string[] {
  const k = Math.ceil(Math.sqrt(n));
  const rels: string[] = [];
  for (let i = 0; i < k && rels.length < n; i++) {
    rels.push(`g${i}`);
    for (let j = 0; j < k - 1 && rels.length < n; j++) rels.push(`g${i}/c${j}.scope`);
  }
  return rels;
}

function rmTree(p: string): void {
  if (!fs.existsSync(p)) return;
  for (const e of fs.readdirSync(p, { withFileTypes: true })) {
    const q = path.join(p, e.name);
    if (e.isDirectory()) rmTree(q);
    else if (!p.startsWith('/sys/fs/cgroup')) fs.unlinkSync(q);
  }
  fs.rmdirSync(p);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function cpuSeconds(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

function get(url: string, gzip: boolean): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          else resolve({ ms: performance.now() - t0, bytes });
        });
      })
      .on('error', reject);
  });
}

const enc = (s: string) => s.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E'));

async function main(): Promise<void> {
  const rels = layout(N);
  fs.mkdirSync(parent);
  for (const r of rels) fs.mkdirSync(path.join(parent, r));
  const state = path.join(work, 'state.json');
  fs.writeFileSync(
    state,
    JSON.stringify({
      version: 1,
      initialized: true,
      roots: [
        {
          dir: treeDir,
          cgroup: parent,
          mode: 'auto',
          inherit: [
            { view: 'info', name: 'info', fileMode: 0o440 },
            { view: 'sched_lat', name: 'sched_lat', fileMode: 0o440 },
          ],
          local: {},
        },
      ],
    }),
  );
  const d = spawn(
    process.execPath,
    [
      ...(process.env['CGVB_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['CGVB_PROF']}`] : []),
      path.join(REPO, 'bin/cgview'),
      'daemon',
      '--bpffs',
      treeDir,
      '--state',
      state,
      '--socket',
      path.join(work, 'sock'),
      '--no-default-views',
      '--listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    let buf = '';
    const url = await new Promise<string>((resolve, reject) => {
      d.stderr!.on('data', (c: Buffer) => {
        buf += c.toString();
        const m = /"msg":"ready".*?"metrics":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
      });
      d.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${buf}`)));
    });
    const files = ['', ...rels].flatMap((r) =>
      ['info', 'sched_lat'].map((v) => path.join(treeDir, ...r.split('/').filter(Boolean).map(enc), v)),
    );
    let missing = files;
    for (
      let t = performance.now();
      performance.now() - t < 30000;
      await new Promise((r) => setTimeout(r, 200))
    ) {
      missing = missing.filter((f) => !fs.existsSync(f));
      if (!missing.length) break;
    }
    if (missing.length)
      throw new Error(`${missing.length} view files missing, e.g. ${missing[0]}\n${buf.slice(-3000)}`);
    const floorBin = path.join(work, 'scrape_floor');
    execFileSync('gcc', ['-O2', '-o', floorBin, path.join(REPO, 'bench/scrape_floor.c')]);
    const floor = (list: string[]) =>
      median(
        execFileSync(floorBin, [String(SCRAPES)], {
          input: list.join('\n'),
          stdio: ['pipe', 'pipe', 'ignore'],
        })
          .toString()
          .trim()
          .split(' ')
          .map(Number),
      ) * 1000;
    const rows: Array<{ what: string; ms: number[]; cpu: number[]; bytes: number }> = [];
    const rssBefore = rssMb(d.pid!);
    // Warm-up (V8 compiles the path), not counted.
    await get(url, false);
    const floorAll: number[] = [];
    const floorInfo: number[] = [];
    const floorSl: number[] = [];
    for (const gzip of [false, true]) {
      const row = { what: gzip ? 'gzip' : 'plain', ms: [] as number[], cpu: [] as number[], bytes: 0 };
      for (let i = 0; i < SCRAPES; i++) {
        // Past the scrape cache (500 ms): every scrape makes its snapshot.
        await new Promise((r) => setTimeout(r, 700));
        // Interleaved with the C loop, so that both see the same machine.
        floorAll.push(floor(files));
        if (i === 0) {
          floorInfo.push(floor(files.filter((f) => f.endsWith('/info'))));
          floorSl.push(floor(files.filter((f) => f.endsWith('/sched_lat'))));
        }
        await new Promise((r) => setTimeout(r, 700));
        const c0 = cpuSeconds(d.pid!);
        const r = await get(url, gzip);
        row.cpu.push((cpuSeconds(d.pid!) - c0) * 1000);
        row.ms.push(r.ms);
        row.bytes = r.bytes;
      }
      rows.push(row);
    }
    const rssAfter = rssMb(d.pid!);
    const n = rels.length + 1;
    const fl = median(floorAll);
    console.log(
      `\n/metrics over ${n} mirrored cgroups x (info + sched_lat), ${SCRAPES} scrapes each (medians):`,
    );
    console.log(
      `  C floor, read every view file once: ${fl.toFixed(1)} ms (${((fl * 1000) / n).toFixed(1)} us/cgroup; info alone ${median(floorInfo).toFixed(1)} ms, sched_lat alone ${median(floorSl).toFixed(1)} ms)`,
    );
    for (const r of rows) {
      const cpu = median(r.cpu);
      console.log(
        `  scrape ${r.what.padEnd(5)} ${median(r.ms).toFixed(1).padStart(7)} ms wall (min ${Math.min(...r.ms).toFixed(1)}, max ${Math.max(...r.ms).toFixed(1)})  ratio to floor ${(median(r.ms) / fl).toFixed(2)}x  daemon CPU ${cpu.toFixed(0)} ms/scrape (tick ${(1000 / TICK).toFixed(0)} ms) = ${((cpu / 15000) * 100).toFixed(2)}% of a core at 15 s  body ${(r.bytes / 1e6).toFixed(2)} MB`,
      );
    }
    console.log(
      `  daemon RSS: ${rssBefore.toFixed(1)} MB before the scrapes, ${rssAfter.toFixed(1)} MB after`,
    );
    console.log(
      `  goals: 10,000 cgroups < 100 ms and faster than the floor; 1,000 < 15 ms; CPU < 1% at 15 s; RSS < 150 MB`,
    );
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
  }
}

try {
  await main();
} finally {
  for (const p of [treeDir, `/sys/fs/bpf/${tag}-tree-private`]) {
    try {
      rmTree(p);
    } catch (e) {
      console.error(`cleanup ${p}: ${e}`);
    }
  }
  try {
    rmTree(parent);
  } catch (e) {
    console.error(`cleanup ${parent}: ${e}`);
  }
  fs.rmSync(work, { recursive: true, force: true });
}
