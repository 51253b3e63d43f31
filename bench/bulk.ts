/**
 * The sched_lat fast read path (src/views/bulk.ts) against reading every
 * cgroup's view (issue 9 item 6). With N fresh cgroups under a cgroup v2
 * directory of its own, in one run:
 *   bulk        bulkReader(..., { root }).read(): one iterator read() over
 *               the bench's subtree + one BPF_MAP_LOOKUP_BATCH + the
 *               ViewSamples (wall time, and this process's CPU time)
 *   bulk_tree   the same for sched_lat_tree (subtree sums in user space)
 *   info        the bulk reader of the info view, and its file reads (as below)
 *   file        per cgroup, what reading a pinned view file costs the kernel
 *               and Node: BPF_ITER_CREATE on the cgroup's sched_lat link,
 *               read(), close, then classifyView(parseViewOutput(text)); on
 *               a sample of the cgroups (--sample, default 1000), scaled to N
 *   decode      CPU time of decoding N records that all have waits (made
 *               here, not read: the bench's cgroups have none, and a cgroup
 *               without waits decodes faster), sched_lat and sched_lat_tree
 * Medians of --runs reads. Every cgroup and pin it makes is removed after.
 *
 * Run as root, from the repository:
 *   node dist/bench/bulk.js [--cgroups 1000,10000] [--runs 7] [--sample 1000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroup2Root } from '../src/cgroup/hierarchy.js';
import { makeLogger } from '../src/daemon/log.js';
import { SL_BULK_REC } from '../src/kernel/abi.js';
import { bpfBuildDir } from '../src/kernel/features.js';
import { BpfObject, openDir } from '../src/kernel/index.js';
import { classifyView } from '../src/stats/keys.js';
import { bulkReader, decodeWalk, type Scratch } from '../src/views/bulk.js';
import { Collectors } from '../src/views/collectors.js';
import { parseViewOutput } from '../src/views/parse.js';

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
}
const SIZES = opt('cgroups', '1000,10000').split(',').map(Number);
const RUNS = Number(opt('runs', '7'));
const SAMPLE = Number(opt('sample', '1000'));

const root = path.join(cgroup2Root(), `cgvb-bulk-${process.pid}`);
const priv = `/sys/fs/bpf/cgvb-bulk-${process.pid}`;
const made: string[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function ms(f: () => void): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** CPU time (user + system) of this process for f, in ms: less hostage to a loaded machine than wall time. */
function cpuMs(f: () => void): number {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

/** Grows the tree to `n` cgroups: 100 per directory, two levels. */
function grow(n: number): void {
  while (made.length < n) {
    const i = made.length;
    const dir = path.join(root, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0 && !fs.existsSync(dir)) fs.mkdirSync(dir);
    const cg = path.join(dir, `c${i}`);
    fs.mkdirSync(cg);
    made.push(cg);
  }
}

function cleanup(): void {
  for (const cg of made.reverse()) fs.rmdirSync(cg);
  for (const d of fs.existsSync(root) ? fs.readdirSync(root) : [])
    if (d.startsWith('d')) fs.rmdirSync(path.join(root, d));
  if (fs.existsSync(root)) fs.rmdirSync(root);
}

const log = makeLogger('error');
const collectors = new Collectors(priv, bpfBuildDir(), log);
fs.mkdirSync(root);
try {
  const maps = collectors.acquire('sched_lat@0');
  const view = BpfObject.load(path.join(bpfBuildDir(), 'sched_lat.bpf.o'), {
    programs: ['sched_lat'],
    reuseMaps: maps,
  });
  const infoView = BpfObject.load(path.join(bpfBuildDir(), 'info.bpf.o'), { programs: ['info'] });
  // Only the bench's own subtree (opts.root): the host's other cgroups do not count.
  const bulk = bulkReader(collectors, 'sched_lat', 0, { root })!;
  const tree = bulkReader(collectors, 'sched_lat_tree', 0, { root })!;
  const info = bulkReader(collectors, 'info', 0, { root })!;
  const all = fs.readdirSync(cgroup2Root()).length;
  console.log(
    `# bulk read vs per-cgroup view reads; cgroup v2 at ${cgroup2Root()} (${all} top-level entries), load ${os.loadavg()[0]!.toFixed(1)}`,
  );
  console.log(
    'cgroups(ours)  walked  bulk_ms  bulk_cpu_ms  bulk_tree_ms  file_ms(est)  file_us/cg  file/bulk  info_bulk_ms  info_file_ms(est)  info_file/bulk',
  );
  for (const n of SIZES) {
    grow(n);
    bulk.read(); // sizes the array
    tree.read();
    info.read();
    let walked = 0;
    const b = median(Array.from({ length: RUNS }, () => ms(() => (walked = bulk.read().size))));
    const bc = median(Array.from({ length: RUNS }, () => cpuMs(() => bulk.read())));
    const bt = median(Array.from({ length: RUNS }, () => ms(() => tree.read())));
    const bi = median(Array.from({ length: RUNS }, () => ms(() => info.read())));
    // Per-cgroup reads on a sample: one link per cgroup, as a pinned view file is.
    const sample = made.slice(0, Math.min(SAMPLE, made.length));
    const perFile = (obj: BpfObject, prog: string): number => {
      const links = sample.map((cg) => {
        const d = openDir(cg);
        try {
          return obj.program(prog).cgroupIter({ fd: d });
        } finally {
          d.close();
        }
      });
      const t = median(
        Array.from({ length: Math.max(3, Math.floor(RUNS / 2)) }, () =>
          ms(() => {
            for (const l of links) classifyView(parseViewOutput(l.read().toString('latin1')));
          }),
        ),
      );
      for (const l of links) l.close();
      return (t * 1000) / sample.length;
    };
    const usPer = perFile(view, 'sched_lat');
    const fileMs = (usPer * walked) / 1000;
    const infoMs = (perFile(infoView, 'info') * walked) / 1000;
    console.log(
      `${String(n).padStart(13)}  ${String(walked).padStart(6)}  ${b.toFixed(2).padStart(7)}  ${bc.toFixed(2).padStart(11)}  ${bt.toFixed(2).padStart(12)}  ${fileMs.toFixed(1).padStart(12)}  ${usPer.toFixed(1).padStart(10)}  ${(fileMs / b).toFixed(1).padStart(9)}  ${bi.toFixed(2).padStart(12)}  ${infoMs.toFixed(1).padStart(17)}  ${(infoMs / bi).toFixed(1).padStart(14)}`,
    );
  }
  console.log('records  decode_cpu_ms  decode_tree_cpu_ms  (all with waits)');
  for (const n of SIZES) {
    const R = SL_BULK_REC.size;
    const buf = Buffer.alloc(n * R);
    for (let i = 0; i < n; i++) {
      buf.writeBigUInt64LE(BigInt(i + 2), i * R + SL_BULK_REC.id.off);
      buf.writeBigUInt64LE(BigInt(Math.floor(i / 100) + 1), i * R + SL_BULK_REC.parentId.off);
      for (let w = 0; w < SL_BULK_REC.st.size / 8; w++)
        buf.writeBigUInt64LE(BigInt((i + 1) * (w + 1)), i * R + SL_BULK_REC.st.off + 8 * w);
    }
    const sc: Scratch = {
      hi: new Float64Array((n * SL_BULK_REC.st.size) / 8),
      lo: new Float64Array((n * SL_BULK_REC.st.size) / 8),
      parent: new Int32Array(n),
      v: new Float64Array(SL_BULK_REC.st.size / 8),
    };
    const d = median(Array.from({ length: RUNS }, () => cpuMs(() => decodeWalk(buf, n, false))));
    const dt = median(Array.from({ length: RUNS }, () => cpuMs(() => decodeWalk(buf, n, true, sc))));
    console.log(`${String(n).padStart(7)}  ${d.toFixed(2).padStart(13)}  ${dt.toFixed(2).padStart(18)}`);
  }
  bulk.close();
  tree.close();
  info.close();
  view.close();
  infoView.close();
} finally {
  collectors.stop('sched_lat@0');
  try {
    fs.rmdirSync(priv);
  } catch {
    /* gone */
  }
  cleanup();
}
