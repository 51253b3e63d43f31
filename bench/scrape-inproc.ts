/**
 * Where a scrape's time goes (issue 9), in one process: a Manager mirrors N
 * cgroups with info and sched_lat inherited, then each step of a scrape is
 * timed on its own, in rounds: snapshot (collectSnapshot), conversion
 * (toFamilies), text and OpenMetrics formatting, protobuf, gzip. CPU time of
 * the process (process.cpuUsage) beside wall time: on a loaded machine wall
 * time includes waiting for a CPU.
 *
 * Run as root after scripts/setup.sh:
 *   node dist/bench/scrape-inproc.js [--cgroups 10000] [--rounds 5]
 */
import fs from 'node:fs';
import inspector from 'node:inspector/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';
import { Manager } from '../src/daemon/manager.js';
import { toFamilies } from '../src/export/families.js';
import { defaultExportOptions } from '../src/export/options.js';
import { gzipPieces } from '../src/export/pieces.js';
import { renderProtobuf } from '../src/export/protobuf.js';
import { collectSnapshot } from '../src/export/snapshot.js';
import { renderTextBuffer, renderTextPieces } from '../src/export/text.js';
import { openDir } from '../src/kernel/index.js';
import { cpath, readFileAt } from '../src/kernel/readat.js';
import { bulkReader } from '../src/views/bulk.js';

const CG2 = '/sys/fs/cgroup/unified';
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('cgroups', 10000);
const ROUNDS = arg('rounds', 5);
const tag = `cgvb-${process.pid}`;
const parent = path.join(CG2, tag);
const treeDir = `/sys/fs/bpf/${tag}-tree`;
const work = fs.mkdtempSync('/tmp/cgvb-');

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

async function timed<T>(fn: () => T | Promise<T>): Promise<{ v: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { v, wall, cpu: (c.user + c.system) / 1000 };
}

async function main(): Promise<void> {
  const k = Math.ceil(Math.sqrt(N));
  fs.mkdirSync(parent);
  let n = 0;
  for (let i = 0; i < k && n < N; i++) {
    fs.mkdirSync(path.join(parent, `g${i}`));
    n++;
    for (let j = 0; j < k - 1 && n < N; j++, n++) fs.mkdirSync(path.join(parent, `g${i}`, `c${j}.scope`));
  }
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
  const m = new Manager({
    bpffs: treeDir,
    stateFile: state,
    privateDir: `${treeDir}-private`,
    defaultViews: false,
    log: () => {},
  });
  m.start();
  try {
    const opts = defaultExportOptions();
    const steps: Record<string, Array<{ wall: number; cpu: number }>> = {};
    const add = (k: string, t: { wall: number; cpu: number }) => {
      steps[k] ??= [];
      steps[k].push(t);
    };
    let sizes = '';
    // The reads alone (openat2 + read + close per file, nothing parsed): the Node floor of the file path.
    const rels = [...m.roots[0]!.model.dirs.keys()];
    const enc = (r: string) =>
      r
        .split('/')
        .map((c) => c.replace(/[%.]/g, (x) => (x === '%' ? '%25' : '%2E')))
        .join('/');
    const paths = rels.flatMap((r) =>
      ['info', 'sched_lat'].map((v) => ({ v, p: cpath(r === '' ? v : `${enc(r)}/${v}`) })),
    );
    const root = openDir(treeDir);
    const buf = Buffer.allocUnsafe(1 << 16);
    const readAll = (which: string) => {
      for (const x of paths) if (x.v === which) readFileAt(root, x.p, buf);
    };
    // The daemon mirrors and loads its collectors in the background: wait until every cgroup
    // is there and the bulk path serves them (else the first rounds measure the file path).
    for (let t0 = Date.now(); Date.now() - t0 < 60000; ) {
      const s = await collectSnapshot(m, opts);
      if (s.cgroups.length >= N + 1 && s.stats.files === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // CGVB_PROFILE=FILE: a V8 CPU profile of the rounds (started after the collectors loaded).
    const prof = process.env['CGVB_PROFILE'] ? new inspector.Session() : null;
    if (prof) {
      prof.connect();
      await prof.post('Profiler.enable');
      await prof.post('Profiler.start');
    }
    for (let r = 0; r <= ROUNDS; r++) {
      const snap = await timed(() => collectSnapshot(m, opts));
      const conv = await timed(() => toFamilies(snap.v, opts));
      const text = await timed(() => renderTextBuffer(conv.v.families, false));
      const om = await timed(() => renderTextBuffer(conv.v.families, true));
      const pb = await timed(() => renderProtobuf(conv.v.families));
      const gz = await timed(() => gzipPieces(renderTextPieces(conv.v.families, false), 1));
      const gzWhole = await timed(() => zlib.gzipSync(text.v, { level: 1 }));
      if (r === 0) {
        sizes = `text ${(text.v.length / 1e6).toFixed(2)} MB, OpenMetrics ${(om.v.length / 1e6).toFixed(2)} MB, protobuf ${(pb.v.length / 1e6).toFixed(2)} MB, gzip ${(gz.v.length / 1e6).toFixed(2)} MB; ${snap.v.cgroups.length} cgroups, ${snap.v.stats.files} files read, ${snap.v.stats.readErrors} errors`;
        continue; // warm-up
      }
      add('snapshot (read + classify)', snap);
      add(
        '  bulk read alone: sched_lat',
        await timed(() => bulkReader(m.collectors, 'sched_lat', 0, { root: parent })?.read()),
      );
      add('  reads alone: sched_lat files', await timed(() => readAll('sched_lat')));
      add('  reads alone: info files', await timed(() => readAll('info')));
      add('conversion (families)', conv);
      add('text 0.0.4', text);
      add('OpenMetrics', om);
      add('protobuf', pb);
      add('text + gzip (kept pieces)', gz);
      add('  gzip of the whole text', gzWhole);
    }
    if (process.argv.includes('--check')) {
      // The kept paths give the bytes a fresh conversion gives: samples cloned (new objects) vs kept.
      const snap = await collectSnapshot(m, opts);
      const a = renderTextBuffer(toFamilies(snap, opts).families, false);
      const clone = {
        ...snap,
        cgroups: snap.cgroups.map((c) => ({ ...c, views: structuredClone(c.views) })),
      };
      const b = renderTextBuffer(toFamilies(clone, opts).families, false);
      const gz = zlib.gunzipSync(gzipPieces(renderTextPieces(toFamilies(snap, opts).families, false)));
      const r = bulkReader(m.collectors, 'sched_lat', 0, { root: parent })!;
      const t1 = performance.now();
      toFamilies(snap, opts);
      const t2 = performance.now();
      console.log(`check: reused ${r.reused} samples; conversion again ${(t2 - t1).toFixed(1)} ms`);
      console.log(
        `check: kept = fresh ${a.equals(b)}, gunzip(pieces) = text ${gz.equals(a)}, ${a.length} bytes`,
      );
    }
    if (prof) {
      const { profile } = await prof.post('Profiler.stop');
      fs.writeFileSync(process.env['CGVB_PROFILE']!, JSON.stringify(profile));
      prof.disconnect();
    }
    console.log(`\none scrape over ${N + 1} cgroups x (info + sched_lat), medians of ${ROUNDS} rounds:`);
    console.log(`  ${sizes}`);
    for (const [k, xs] of Object.entries(steps))
      console.log(
        `  ${k.padEnd(28)} ${median(xs.map((x) => x.wall))
          .toFixed(1)
          .padStart(8)} ms wall ${median(xs.map((x) => x.cpu))
          .toFixed(1)
          .padStart(8)} ms CPU`,
      );
    console.log(`  RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
    root.close();
  } finally {
    m.stop();
  }
}

try {
  await main();
} finally {
  for (const p of [treeDir, `${treeDir}-private`]) {
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
