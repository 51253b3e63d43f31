/**
 * The fast read path (src/views/bulk.ts, bpf/sched_lat_bulk.bpf.c):
 *
 *   - decoding: records made here from known stats (values past 2^53
 *     included) give what classifyView gives on the lines the view prints
 *     for them (schedLatLines); the tree sums are the exact (bigint) sums of
 *     the subtrees;
 *   - schedLatLines is the view's own print: for a cgroup with waits, the
 *     lines computed from its map entry equal its sched_lat file byte for byte;
 *   - on the real kernel, driven through `cgview daemon`: with sched_lat and
 *     sched_lat_tree pinned on a tree of busy and idle cgroups (tasks stopped
 *     before reading, so nothing moves between the reads), the bulk sample of
 *     each cgroup equals classifyView(parseViewOutput(its file)); a removed
 *     cgroup is gone from the next read; a walk of more cgroups than the
 *     first array holds grows it; a collector that does not run gives an
 *     empty map; cgroup v1 (the cpu hierarchy) as well.
 *
 * The test process adopts the daemon's pinned collector (new Collectors on
 * the daemon's private directory): it reads the same maps and never stops
 * them. Every task is killed by pid, every cgroup and bpffs directory removed
 * after the file's tests, also on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hierarchyIdOf, mountOf } from '../../src/cgroup/hierarchy.js';
import { makeLogger } from '../../src/daemon/log.js';
import { SL_BULK_REC, SL_HIST_BUCKETS, SL_STATS } from '../../src/kernel/abi.js';
import { bpfBuildDir } from '../../src/kernel/features.js';
import { BpfMap, mapInfo } from '../../src/kernel/index.js';
import { classifyView, type ViewSample } from '../../src/stats/keys.js';
import {
  bulkReader,
  decodeSlStatsBig,
  decodeWalk,
  Reuse,
  type SlStatsBig,
  schedLatLines,
} from '../../src/views/bulk.js';
import { Collectors, collectorInstance } from '../../src/views/collectors.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { Daemon, type DaemonEnv, daemonEnv, liveDaemonLogs, treeRel } from '../daemon.js';
import { CGROUP_V1_CPU, CGROUP2, inode, onCleanup, tmpCgroup, waitFor } from '../helpers.js';

const CPU = 1;
const WAIT_MS = 5000;
const VIEWS = ['sched_lat', 'sched_lat_tree', 'info'];
const log = makeLogger('error');

// --- records made here --------------------------------------------------------------

/** A deterministic generator (xorshift), so that a failure repeats. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomStats(r: () => number, big: boolean): SlStatsBig {
  const u64 = () => (big ? (BigInt(r()) << 32n) | BigInt(r()) : BigInt(r() % 1000000));
  const hist: bigint[] = [];
  for (let i = 0; i < SL_HIST_BUCKETS; i++) hist.push(r() % 3 === 0 ? 0n : BigInt(r() % 5000));
  return {
    waitCount: hist.reduce((a, b) => a + b, 0n),
    waitNsTotal: u64(),
    selfNsTotal: u64(),
    otherNsTotal: u64(),
    selfMaxNs: u64(),
    otherMaxNs: u64(),
    hist,
  };
}

function writeRecord(buf: Buffer, i: number, id: bigint, parent: bigint, s: SlStatsBig): void {
  const o = i * SL_BULK_REC.size;
  buf.writeBigUInt64LE(id, o + SL_BULK_REC.id.off);
  buf.writeBigUInt64LE(parent, o + SL_BULK_REC.parentId.off);
  const st = o + SL_BULK_REC.st.off;
  buf.writeBigUInt64LE(s.waitCount, st + SL_STATS.waitCount.off);
  buf.writeBigUInt64LE(s.waitNsTotal, st + SL_STATS.waitNsTotal.off);
  buf.writeBigUInt64LE(s.selfNsTotal, st + SL_STATS.selfNsTotal.off);
  buf.writeBigUInt64LE(s.otherNsTotal, st + SL_STATS.otherNsTotal.off);
  buf.writeBigUInt64LE(s.selfMaxNs, st + SL_STATS.selfMaxNs.off);
  buf.writeBigUInt64LE(s.otherMaxNs, st + SL_STATS.otherMaxNs.off);
  for (let b = 0; b < SL_HIST_BUCKETS; b++) buf.writeBigUInt64LE(s.hist[b]!, st + SL_STATS.hist.off + 8 * b);
}

function addInto(acc: SlStatsBig, s: SlStatsBig): void {
  acc.waitCount += s.waitCount;
  acc.waitNsTotal += s.waitNsTotal;
  acc.selfNsTotal += s.selfNsTotal;
  acc.otherNsTotal += s.otherNsTotal;
  if (s.selfMaxNs > acc.selfMaxNs) acc.selfMaxNs = s.selfMaxNs;
  if (s.otherMaxNs > acc.otherMaxNs) acc.otherMaxNs = s.otherMaxNs;
  for (let b = 0; b < SL_HIST_BUCKETS; b++) acc.hist[b]! += s.hist[b]!;
}

function copyStats(s: SlStatsBig): SlStatsBig {
  return { ...s, hist: [...s.hist] };
}

describe('bulk decoding (records made here)', () => {
  it('each record gives classifyView of the lines the view prints for it (values past 2^53 too)', () => {
    const r = rng(12);
    const n = 300;
    const buf = Buffer.alloc(n * SL_BULK_REC.size);
    const want = new Map<string, ViewSample>();
    const zero: SlStatsBig = {
      waitCount: 0n,
      waitNsTotal: 0n,
      selfNsTotal: 0n,
      otherNsTotal: 0n,
      selfMaxNs: 0n,
      otherMaxNs: 0n,
      hist: new Array<bigint>(SL_HIST_BUCKETS).fill(0n),
    };
    for (let i = 0; i < n; i++) {
      // Every tenth cgroup without waits (their samples share one frozen metrics array).
      const s = i % 10 === 5 ? zero : randomStats(r, i % 2 === 0);
      const id = BigInt(i + 2);
      writeRecord(buf, i, id, 1n, s);
      want.set(String(id), classifyView(schedLatLines(id, s)));
    }
    // Zero stats (a cgroup without waits), and the decoder's own round trip of a record.
    const got = decodeWalk(buf, n, false);
    assert.equal(got.size, n);
    for (const [id, w] of want) assert.deepStrictEqual(got.get(id), w, `cgroup ${id}`);
    assert.deepStrictEqual(
      decodeSlStatsBig(buf, SL_BULK_REC.st.off),
      (() => {
        const r2 = rng(12);
        return randomStats(r2, true);
      })(),
    );
  });

  it('sched_lat_tree: each cgroup is the exact sum of its subtree (maxima max), in pre-order with parents', () => {
    const r = rng(99);
    // A random tree in pre-order: each new node's parent is one of the nodes on the current path.
    const n = 400;
    const ids: bigint[] = [];
    const parents: number[] = [];
    const own: SlStatsBig[] = [];
    const path: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i > 0) path.length = 1 + (r() % path.length);
      parents.push(i === 0 ? -1 : path[path.length - 1]!);
      path.push(i);
      ids.push(BigInt(1000 + i * 7));
      own.push(randomStats(r, i % 3 === 0));
    }
    const buf = Buffer.alloc(n * SL_BULK_REC.size);
    for (let i = 0; i < n; i++) writeRecord(buf, i, ids[i]!, i === 0 ? 5n : ids[parents[i]!]!, own[i]!);
    const sums = own.map(copyStats);
    for (let i = n - 1; i > 0; i--) addInto(sums[parents[i]!]!, sums[i]!);
    const got = decodeWalk(buf, n, true);
    for (let i = 0; i < n; i++)
      assert.deepStrictEqual(
        got.get(String(ids[i])),
        classifyView(schedLatLines(ids[i]!, sums[i]!)),
        `node ${i}`,
      );
  });

  it('reuse: an unchanged record gives the same frozen sample object again, a changed one a new, equal to a fresh decode', () => {
    const r = rng(7);
    const n = 50;
    for (const tree of [false, true]) {
      const buf = Buffer.alloc(n * SL_BULK_REC.size);
      const stats = Array.from({ length: n }, (_, i) => randomStats(r, i % 2 === 0));
      // A chain for the tree: each record's parent is the one before, so a change moves every ancestor.
      const parentOf = (i: number) => (tree ? BigInt(i === 0 ? 1 : i + 1) : 1n);
      for (let i = 0; i < n; i++) writeRecord(buf, i, BigInt(i + 2), parentOf(i), stats[i]!);
      const reuse = new Reuse();
      const first = decodeWalk(buf, n, tree, undefined, reuse);
      assert.equal(reuse.reused, 0);
      const again = decodeWalk(buf, n, tree, undefined, reuse);
      assert.equal(reuse.reused, n, `${tree}: every sample again`);
      for (const [id, s] of first) {
        assert.equal(again.get(id), s, `${tree} ${id}: the same object`);
        assert.ok(Object.isFrozen(s) && Object.isFrozen(s.metrics), 'frozen');
      }
      // Record 30 moves: in the tree its ancestors 0..29 move with it, 31.. do not.
      stats[30]!.waitNsTotal += 1000n;
      stats[30]!.hist[12]! += 1n;
      writeRecord(buf, 30, 32n, parentOf(30), stats[30]!);
      const third = decodeWalk(buf, n, tree, undefined, reuse);
      const fresh = decodeWalk(buf, n, tree);
      for (let i = 0; i < n; i++) {
        const id = String(i + 2);
        const moved = i === 30 || (tree && i < 30);
        if (moved) assert.notEqual(third.get(id), again.get(id), `${tree} ${id}: new sample`);
        else assert.equal(third.get(id), again.get(id), `${tree} ${id}: kept`);
        assert.deepStrictEqual(third.get(id), fresh.get(id), `${tree} ${id}: = a fresh decode`);
      }
      assert.equal(reuse.reused, tree ? n - 31 : n - 1);
    }
  });
});

// --- tasks ------------------------------------------------------------------------------

const started = new Map<number, string>();

function procStat(pid: number): string[] | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function killAll(): void {
  const ours = [...started].filter(([p, t]) => procStat(p)?.[19] === t).map(([p]) => p);
  for (const p of ours) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const p of ours)
    for (let i = 0; i < 200 && procStat(p) && procStat(p)![0] !== 'Z'; i++) execFileSync('sleep', ['0.01']);
  started.clear();
}

/** `n` busy loops in `cg` pinned to CPU 1, stopped (SIGSTOP) at once; resolves when they are. */
async function spinners(cg: string, n: number): Promise<number[]> {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${CPU} sh -c 'kill -STOP $$; while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const pids = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' })
    .trim()
    .split('\n')
    .map(Number);
  for (const p of pids) started.set(p, procStat(p)![19]!);
  await stopped(pids);
  return pids;
}

async function stopped(pids: number[]): Promise<void> {
  await waitFor(
    () => pids.every((p) => procStat(p)?.[0] === 'T'),
    WAIT_MS,
    `tasks ${pids.join(' ')} stopped`,
  );
}

async function runFor(pids: number[], ms: number): Promise<void> {
  for (const p of pids) process.kill(p, 'SIGCONT');
  await new Promise((r) => setTimeout(r, ms));
  for (const p of pids) process.kill(p, 'SIGSTOP');
  await stopped(pids);
}

/** Whether the kernel still has a map with this id (bpftool map show id N). */
function mapExists(id: number): boolean {
  try {
    execFileSync('bpftool', ['map', 'show', 'id', String(id)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// --- the daemon and the comparison -----------------------------------------------------

async function waitFile(file: string): Promise<void> {
  try {
    await waitFor(() => fs.existsSync(file), WAIT_MS, file);
  } catch (e) {
    (e as Error).message += `\n${liveDaemonLogs()}`;
    throw e;
  }
}

function fileSample(file: string): ViewSample {
  return classifyView(parseViewOutput(fs.readFileSync(file, 'latin1')));
}

/** A daemon on a fresh tree with sched_lat inherited and sched_lat_tree inherited too. */
async function setup(e: DaemonEnv): Promise<Daemon> {
  const d = await Daemon.start(e);
  await d.ok(['pin', 'sched_lat', e.bpffs, '--inherit']);
  await d.ok(['pin', 'sched_lat_tree', e.bpffs, '--inherit']);
  await d.ok(['pin', 'info', e.bpffs, '--inherit']);
  return d;
}

/**
 * The cgroups a..: busy ones (2 tasks, run 0.4 s) and idle ones, nested; returns
 * rel -> cgroup dir, after all tasks are stopped again.
 */
async function makeTree(e: DaemonEnv, rels: string[], busy: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of rels) {
    const cg = path.join(e.cgroupRoot, rel);
    fs.mkdirSync(cg);
    out.set(rel, cg);
    for (const v of VIEWS) await waitFile(path.join(e.bpffs, treeRel(rel), v));
  }
  const pids: number[] = [];
  for (const rel of busy) pids.push(...(await spinners(out.get(rel)!, 2)));
  await runFor(pids, 400);
  return out;
}

/** Asserts the bulk samples of both views equal the files for every cgroup of the tree (and its root). */
function compare(e: DaemonEnv, collectors: Collectors, hierarchyId: number, cgs: Map<string, string>): void {
  const rels = ['', ...cgs.keys()];
  for (const view of VIEWS) {
    const reader = bulkReader(collectors, view, hierarchyId);
    assert.ok(reader, `${view} has a bulk reader`);
    try {
      const got = reader.read();
      for (const rel of rels) {
        const cg = rel ? cgs.get(rel)! : e.cgroupRoot;
        const id = String(inode(cg));
        const want = fileSample(path.join(e.bpffs, treeRel(rel), view));
        assert.equal(want.id, id, `${view} ${rel}: the file is the cgroup's`);
        assert.deepStrictEqual(got.get(id), want, `${view} of ${rel || 'the root'}: bulk = file`);
      }
    } finally {
      reader.close();
    }
  }
}

/** A Collectors of the test process on the daemon's private directory: adopts its pinned collector. */
function adopt(e: DaemonEnv, hierarchyId: number): Collectors {
  const c = new Collectors(e.privateDir, bpfBuildDir(), log);
  c.acquire(collectorInstance('sched_lat', hierarchyId));
  const st = c.status()[collectorInstance('sched_lat', hierarchyId)] as { start: string };
  assert.equal(st.start, 'adopted', "the test reads the daemon's maps");
  onCleanup(() => c.close());
  return c;
}

describe('bulk reads on the real kernel (cgroup v2)', { concurrency: false }, () => {
  let e: DaemonEnv;
  let c: Collectors;
  let cgs: Map<string, string>;

  it('setup: daemon, sched_lat and sched_lat_tree inherited, busy and idle cgroups', async () => {
    e = daemonEnv();
    onCleanup(killAll);
    await setup(e);
    // Odd names for info: one that reads as a number, leading spaces, a dot (the tree encodes it).
    cgs = await makeTree(
      e,
      ['a', 'a/b', 'a/c', 'a/b/x', 'd', 'idle', '12345', '  sp', 'x.y'],
      ['a/b', 'a/b/x', 'd'],
    );
    c = adopt(e, 0);
  });

  it('every cgroup: the bulk sample of sched_lat, sched_lat_tree and info = classifyView(parseViewOutput(file))', () => {
    // A busy cgroup has waits: the comparison is not one of zeros.
    const s = fileSample(path.join(e.bpffs, 'a/b', 'sched_lat'));
    assert.ok(s.metrics.find((m) => m.key === 'wait_ns')!.value > 0, 'a/b waited');
    compare(e, c, 0, cgs);
  });

  it('reads again: an idle cgroup gives the same sample object, a busy one a new one (= its file)', async () => {
    const d = cgs.get('d')!;
    const idle = cgs.get('idle')!;
    const readers = ['sched_lat', 'sched_lat_tree', 'info'].map((v) => bulkReader(c, v)!);
    const pids = await spinners(d, 1);
    try {
      const before = readers.map((r) => r.read());
      const again = readers.map((r) => r.read());
      for (let i = 0; i < readers.length; i++) {
        const id = String(inode(idle));
        assert.equal(again[i]!.get(id), before[i]!.get(id), `${readers[i]!.view}: idle cgroup, same object`);
        assert.ok(readers[i]!.reused > 0, `${readers[i]!.view}: samples reused`);
      }
      await runFor(pids, 200);
      const after = readers.map((r) => r.read());
      for (const [i, r] of readers.entries()) {
        const idOf = (cg: string) => String(inode(cg));
        assert.equal(after[i]!.get(idOf(idle)), again[i]!.get(idOf(idle)), `${r.view}: idle kept`);
        if (r.view === 'info') {
          assert.equal(after[i]!.get(idOf(d)), again[i]!.get(idOf(d)), 'info does not move');
          continue;
        }
        assert.notEqual(after[i]!.get(idOf(d)), again[i]!.get(idOf(d)), `${r.view}: busy cgroup, new sample`);
        const want = fileSample(path.join(e.bpffs, treeRel('d'), r.view));
        assert.deepStrictEqual(after[i]!.get(idOf(d)), want, `${r.view}: the new sample = the file`);
      }
    } finally {
      for (const r of readers) r.close();
    }
  });

  it("schedLatLines = the view's print, byte for byte (from the cgroup's map entry)", () => {
    const map = c.sharedMaps('sched_lat@0')!.sl_cgrp!;
    for (const rel of ['a/b', 'd', 'idle']) {
      const cg = cgs.get(rel)!;
      const file = fs.readFileSync(path.join(e.bpffs, treeRel(rel), 'sched_lat'), 'latin1');
      const dir = fs.openSync(cg, 'r');
      try {
        const key = Buffer.alloc(4);
        key.writeInt32LE(dir);
        // CGRP_STORAGE takes a cgroup fd as key; a cgroup without an entry prints zeros.
        const v = new BpfMap(map.fd, 'sl_cgrp').lookup(key);
        const st = decodeSlStatsBig(v ?? Buffer.alloc(SL_STATS.size), 0);
        const text = [...schedLatLines(inode(cg), st)].map(([k, x]) => `${k}: ${x}\n`).join('');
        assert.equal(text, file, rel);
      } finally {
        fs.closeSync(dir);
      }
    }
  });

  it('opts.root: only that subtree is walked, sched_lat_tree sums the same', () => {
    const a = cgs.get('a')!;
    const want = new Set(
      [a, ...[...cgs].filter(([r]) => r.startsWith('a/')).map(([, cg]) => cg)].map((cg) => String(inode(cg))),
    );
    for (const view of ['sched_lat', 'sched_lat_tree', 'info']) {
      const whole = bulkReader(c, view)!;
      const sub = bulkReader(c, view, 0, { root: a })!;
      assert.notEqual(whole, sub);
      assert.equal(bulkReader(c, view, 0, { root: a }), sub, 'the same arguments, the same reader');
      try {
        const all = whole.read();
        const got = sub.read();
        assert.deepEqual(new Set(got.keys()), want, view);
        for (const id of want) assert.deepStrictEqual(got.get(id), all.get(id), `${view} ${id}`);
      } finally {
        whole.close();
        sub.close();
      }
    }
    assert.throws(() => bulkReader(c, 'sched_lat', 0, { root: CGROUP_V1_CPU }), { code: 'E_BAD_INPUT' });
  });

  it('opts.root removed and made again under the same path: the next read walks the new one', () => {
    const parent = tmpCgroup(CGROUP2);
    const root = path.join(parent, 'r');
    fs.mkdirSync(root);
    const reader = bulkReader(c, 'info', 0, { root })!;
    try {
      assert.deepEqual([...reader.read().keys()], [String(inode(root))]);
      fs.rmdirSync(root);
      fs.mkdirSync(root);
      assert.deepEqual([...reader.read().keys()], [String(inode(root))], 'the new cgroup');
    } finally {
      reader.close();
      fs.rmdirSync(root);
    }
  });

  it('cgroups made and removed during the reads: every walk is whole (each id once, every stable cgroup there)', async () => {
    const parent = tmpCgroup(CGROUP2);
    const stable = [...cgs.values()].map((cg) => String(inode(cg)));
    // Loaded before the churn starts, so that the reads fall inside it.
    const readers = ['sched_lat', 'sched_lat_tree', 'info'].map((v) => bulkReader(c, v)!);
    for (const r of readers) r.read();
    // A shell that makes and removes 50 cgroups in a loop for 3 s (killed by pid after, if still there).
    const churn = spawn(
      'sh',
      [
        '-c',
        'end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do for i in $(seq 50); do mkdir "$1/c$i"; done; for i in $(seq 50); do rmdir "$1/c$i"; done; done',
        'sh',
        parent,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((r) => churn.on('exit', r));
    onCleanup(() => {
      if (churn.exitCode === null && churn.signalCode === null) churn.kill('SIGKILL');
    });
    let reads = 0;
    try {
      while (churn.exitCode === null && churn.signalCode === null) {
        for (const r of readers) {
          const got = r.read(); // throws if an id came twice
          for (const id of stable) assert.ok(got.has(id), `${r.view}: cgroup ${id} in every walk`);
          reads++;
        }
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      for (const r of readers) r.close();
    }
    await exited;
    assert.ok(reads >= readers.length, `${reads} reads during the churn`);
  });

  it('a removed cgroup is gone from the next read; a new one appears', async () => {
    const reader = bulkReader(c, 'sched_lat')!;
    try {
      const idle = cgs.get('idle')!;
      const id = String(inode(idle));
      assert.ok(reader.read().has(id));
      fs.rmdirSync(idle);
      cgs.delete('idle');
      await waitFor(() => !reader.read().has(id), WAIT_MS, 'removed cgroup gone');
      const fresh = path.join(e.cgroupRoot, 'fresh');
      fs.mkdirSync(fresh);
      cgs.set('fresh', fresh);
      const got = reader.read().get(String(inode(fresh)));
      assert.ok(got, 'a new cgroup is read');
      assert.equal(got.metrics.find((m) => m.key === 'wait_ns')!.value, 0);
    } finally {
      reader.close();
    }
  });

  it('more cgroups than the first array holds: the array grows, every cgroup is read', () => {
    const parent = tmpCgroup(CGROUP2);
    const ids: string[] = [];
    for (let i = 0; i < 1100; i++) {
      const cg = path.join(parent, `c${i}`);
      fs.mkdirSync(cg);
      ids.push(String(inode(cg)));
    }
    const reader = bulkReader(c, 'sched_lat')!;
    try {
      const got = reader.read();
      for (const id of ids) assert.ok(got.has(id), `cgroup ${id}`);
      assert.ok(got.size >= 1100);
    } finally {
      reader.close();
      for (let i = 0; i < 1100; i++) fs.rmdirSync(path.join(parent, `c${i}`));
    }
  });

  it("info: a name its file cannot hold (a '\r' in it) is left out; the rest is read", () => {
    const cg = path.join(e.cgroupRoot, 'cr\rx');
    fs.mkdirSync(cg);
    cgs.set('cr\rx', cg);
    const reader = bulkReader(c, 'info')!;
    try {
      const got = reader.read();
      assert.equal(got.has(String(inode(cg))), false);
      assert.equal(got.get(String(inode(e.cgroupRoot)))?.text.get('name'), path.basename(e.cgroupRoot));
    } finally {
      reader.close();
    }
  });

  it('a collector stopped here: its readers let go of its maps at once (onStop), read() gives an empty map', async () => {
    const mine = new Collectors(path.join(e.bpffsParent, 'bulk-own-private'), bpfBuildDir(), log);
    onCleanup(() => mine.stop('sched_lat@0'));
    mine.acquire('sched_lat@0'); // adopts nothing (another directory): starts its own instance
    const r = bulkReader(mine, 'sched_lat')!;
    assert.ok(r.read().size > 0);
    const id = mine.sharedMaps('sched_lat@0')!.sl_cgrp!;
    const mapId = mapInfo(id).id;
    mine.stop('sched_lat@0');
    // Nothing holds the map any more (the reader closed its object at the stop): the kernel frees it.
    await waitFor(() => !mapExists(mapId), WAIT_MS, `map ${mapId} freed`);
    assert.equal(r.read().size, 0);
  });

  it('a collector that does not run here: an empty map (info needs none); user views: no bulk reader', () => {
    const none = new Collectors(e.privateDir, bpfBuildDir(), log);
    try {
      const r = bulkReader(none, 'sched_lat')!;
      assert.equal(r.read().size, 0);
      r.close();
      const i = bulkReader(none, 'info')!;
      assert.ok(i.read().has(String(inode(e.cgroupRoot))));
      i.close();
      assert.equal(bulkReader(none, '/x/y.bpf.o:prog'), null);
      assert.equal(bulkReader(none, 'constructor'), null);
    } finally {
      none.close();
    }
  });
});

describe('bulk reads on the real kernel (cgroup v1, the cpu hierarchy)', { concurrency: false }, () => {
  it('every cgroup: bulk = file for every view', async () => {
    const e = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    onCleanup(killAll);
    await setup(e);
    const hid = hierarchyIdOf(mountOf(e.cgroupRoot));
    assert.ok(hid > 0);
    const cgs = await makeTree(e, ['p', 'p/q', 'r'], ['p/q', 'r']);
    const c = adopt(e, hid);
    compare(e, c, hid, cgs);
  });
});
