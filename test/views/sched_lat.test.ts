/**
 * sched_lat on the real kernel (issue 4, docs/sched_lat.md), driven through
 * `cgview daemon` and `cgview pin` like an operator would:
 *
 *   1. the RFC's scenario: three CPU-bound tasks of one cgroup on one CPU;
 *   2. two cgroups x two tasks on one CPU: the split, and the totals against
 *      the kernel's own run_delay (/proc/PID/schedstat) over the same window;
 *   3. a sleeping cgroup, a removed cgroup, a daemon restart (SIGTERM, kill -9);
 *   4. collector lifecycle: loaded with the first sched_lat view, gone with the last;
 *   5. sched_lat_tree = sched_lat of the cgroup + of every descendant.
 *
 * CPU-bound tasks are `sh` busy loops pinned to CPU 1 that stop themselves
 * (SIGSTOP) right after they start, inside their cgroup; the test lets them
 * run with SIGCONT and stops them before reading, so a read sees no wait in
 * progress. Every task is killed by pid, and every cgroup, daemon and bpffs
 * directory (the tree and the daemon's private directory) removed after
 * the file's tests, also on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseSchedLat, parseViewOutput, type SchedLat } from '../../src/views/parse.js';
import { Daemon, type DaemonEnv, daemonEnv, liveDaemonLogs } from '../daemon.js';
import { inode, onCleanup, removeTree, sleep, waitFor } from '../helpers.js';

const CPU = 1;
const COLLECTOR = 'sched_lat@0';
const LINKS = ['sl_wakeup', 'sl_wakeup_new', 'sl_switch', 'sl_migrate', 'sl_rmdir'];
const MAPS = ['sl_cgrp', 'sl_cg_v1', 'sl_task', 'sl_cpu'];
const WAIT_MS = 5000;

// --- tasks -------------------------------------------------------------------------------

/** Tasks this file started, with their start time (/proc/PID/stat field 22): a reused pid is left alone. */
const started = new Map<number, string>();

function procStat(pid: number): string[] | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // Fields after "pid (comm) ": state is field 3, starttime field 22.
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** State letter of a process (R, S, T, Z...), null when gone. */
function procState(pid: number): string | null {
  return procStat(pid)?.[0] ?? null;
}

function alive(pid: number): boolean {
  const st = procState(pid);
  return st !== null && st !== 'Z' && st !== 'X';
}

function track(pid: number): void {
  const st = procStat(pid);
  assert.ok(st, `task ${pid} is gone`);
  started.set(pid, st[19]!);
}

/** SIGKILLs tasks this file started and waits until they are gone (their cgroups can go then). */
function kill(pids: number[]): void {
  const ours = pids.filter((p) => started.has(p) && procStat(p)?.[19] === started.get(p));
  for (const p of ours) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const p of ours) for (let i = 0; i < 200 && alive(p); i++) execFileSync('sleep', ['0.01']);
  for (const p of pids) started.delete(p);
}

function killAll(): void {
  kill([...started.keys()]);
}

/**
 * `n` busy loops born inside `cg` (a launcher shell joins the cgroup, forks
 * them and exits), pinned to CPU 1, each stopped (SIGSTOP) as soon as it
 * starts. Resolves when all are stopped.
 */
async function spinners(cg: string, n: number): Promise<number[]> {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${CPU} sh -c 'kill -STOP $$; while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const out = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' });
  const pids = out.trim().split('\n').map(Number);
  assert.equal(pids.length, n);
  for (const p of pids) track(p);
  await waitStopped(pids);
  return pids;
}

async function waitStopped(pids: number[]): Promise<void> {
  await waitFor(() => pids.every((p) => procState(p) === 'T'), WAIT_MS, `tasks ${pids.join(' ')} stopped`);
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) process.kill(p, sig);
}

/** Lets the tasks run for `ms`, then stops them and waits until they are. */
async function runFor(pids: number[], ms: number): Promise<void> {
  signal(pids, 'SIGCONT');
  await sleep(ms);
  signal(pids, 'SIGSTOP');
  await waitStopped(pids);
}

/** The kernel's own wait accounting: run_delay, the 2nd field of /proc/PID/schedstat (ns). */
function runDelay(pid: number): bigint {
  return BigInt(fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/)[1]!);
}

// --- the daemon and its tree -------------------------------------------------------------

let env: DaemonEnv;
let d: Daemon;

/** The daemon's private directory (cli/daemon.ts: <dirname(--bpffs)>/<basename(--bpffs)>-private). */
function privateDir(e: DaemonEnv): string {
  return path.join(path.dirname(e.bpffs), `${path.basename(e.bpffs)}-private`);
}

/** A new cgroup under the daemon's cgroup root (`rel` may be nested); its view file(s) mirrored. */
async function mkCgroup(rel: string, views = ['sched_lat']): Promise<string> {
  const cg = path.join(env.cgroupRoot, rel);
  fs.mkdirSync(cg);
  for (const v of views) await waitFile(path.join(env.bpffs, rel, v));
  return cg;
}

async function waitFile(file: string): Promise<void> {
  try {
    await waitFor(() => fs.existsSync(file), WAIT_MS, file);
  } catch (e) {
    (e as Error).message += `\n${liveDaemonLogs()}`;
    throw e;
  }
}

function readFile(file: string): string {
  return fs.readFileSync(file, 'latin1');
}

function readSL(rel: string, view = 'sched_lat'): SchedLat {
  const file = path.join(env.bpffs, rel, view);
  const s = parseSchedLat(readFile(file));
  assert.ok(s, `${file} is empty`);
  return s;
}

interface CollectorStatus {
  running: boolean;
  adopted: boolean;
}

async function collectorStatus(dm: Daemon): Promise<CollectorStatus | undefined> {
  const st = (await dm.status()) as unknown as { collectors: Record<string, CollectorStatus> };
  return st.collectors[COLLECTOR];
}

// --- kernel objects -------------------------------------------------------------------------

interface LinkRow {
  id: number;
  type: string;
  prog_id: number;
}

function bpftool<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' })) as T;
}

/** Link id and program of every collector link pinned in a private dir; [] when there is none. */
function pinnedCollectorLinks(priv: string): Array<{ name: string; id: number; progId: number }> {
  const dir = path.join(priv, COLLECTOR);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('link_'))
    .sort()
    .map((n) => {
      const l = bpftool<LinkRow>(['link', 'show', 'pinned', path.join(dir, n)]);
      return { name: n.slice(5), id: l.id, progId: l.prog_id };
    });
}

/**
 * The kernel's links and programs by id, asked one id at a time (bpftool
 * link/prog show id N): a global listing would depend on what else the host runs.
 */
function kernelLinks(ids: number[]): Map<number, LinkRow> {
  return byId<LinkRow>('link', ids);
}

function kernelProgs(ids: number[]): Map<number, { name: string; type: string }> {
  return byId<{ name: string; type: string }>('prog', ids);
}

function byId<T>(kind: 'link' | 'prog', ids: number[]): Map<number, T> {
  const out = new Map<number, T>();
  for (const id of ids) {
    try {
      out.set(id, bpftool<T>([kind, 'show', 'id', String(id)]));
    } catch {
      /* not in the kernel (any more) */
    }
  }
  return out;
}

// --- checks ----------------------------------------------------------------------------------

/** Cumulative histogram ends at wait_count; p50 <= p90 <= p99, each inside the bucket its rank falls in. */
function checkHistogram(s: SchedLat, what: string): void {
  let prev = 0n;
  for (const b of s.hist) {
    assert.ok(b.count >= prev, `${what}: histogram not cumulative at wait_ns_lt_${b.ltNs ?? 'inf'}`);
    prev = b.count;
  }
  assert.equal(prev, s.waitCount, `${what}: wait_ns_lt_inf = wait_count`);
  assert.ok(s.p50Ns <= s.p90Ns && s.p90Ns <= s.p99Ns, `${what}: p50 <= p90 <= p99`);
  if (s.waitCount === 0n) return;
  for (const [pct, v] of [
    [50n, s.p50Ns],
    [90n, s.p90Ns],
    [99n, s.p99Ns],
  ] as const) {
    const rank = (s.waitCount * pct + 99n) / 100n;
    const j = s.hist.findIndex((b) => b.count >= rank);
    const hi = s.hist[j]!.ltNs;
    const lo = j > 0 ? s.hist[j - 1]!.ltNs! : 0n;
    assert.ok(
      v >= lo && (hi === null || v <= hi),
      `${what}: p${pct} = ${v} outside its bucket [${lo}, ${hi}]`,
    );
  }
}

function totalsOf(s: SchedLat): bigint[] {
  return [s.waitCount, s.waitNsTotal, s.queueSelfNsTotal, s.queueOtherNsTotal];
}

/** The largest of bigints (Math.max takes numbers only). */
function maxOf(xs: bigint[]): bigint {
  let m = 0n;
  for (const x of xs) if (x > m) m = x;
  return m;
}

function pct(a: bigint, b: bigint): string {
  return b === 0n ? 'n/a' : `${(Number((a * 100000n) / b) / 1000).toFixed(3)}%`;
}

// --- the tests ----------------------------------------------------------------------------

describe('sched_lat on the real kernel', { concurrency: false }, () => {
  it('setup: a daemon, `cgview pin sched_lat TREE --inherit`', async () => {
    env = daemonEnv();
    // Registered after daemonEnv's cleanups, so it runs before them: tasks die before their cgroups go.
    onCleanup(killAll);
    onCleanup(() => removeTree(privateDir(env)));
    d = await Daemon.start(env);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    assert.ok(fs.existsSync(path.join(env.bpffs, 'sched_lat')));
    const st = await collectorStatus(d);
    assert.equal(st?.running, true, 'the collector runs');
    assert.equal(st?.adopted, false, 'a fresh daemon starts the collector');
  });

  it("1. the RFC's scenario: 3 CPU-bound tasks of one cgroup on one CPU for 3 s", async (t) => {
    const cg = await mkCgroup('rfc');
    const pids = await spinners(cg, 3);
    await runFor(pids, 3000);
    const text = readFile(path.join(env.bpffs, 'rfc', 'sched_lat'));
    kill(pids);

    // The first three lines as the RFC selftest read them: "cgroup_id: %8d", "queue_self: %8lu", ...
    const lines = text.split('\n');
    assert.match(lines[0]!, /^cgroup_id: +\d+$/);
    assert.match(lines[1]!, /^queue_self: +\d+$/);
    assert.match(lines[2]!, /^queue_other: +\d+$/);
    assert.equal(lines[0]!.replace(/^cgroup_id: +/, ''), String(inode(cg)), 'cgroup_id is the cgroup inode');
    assert.deepEqual([...parseViewOutput(text).keys()].slice(0, 7), [
      'cgroup_id',
      'queue_self',
      'queue_other',
      'wait_count',
      'wait_ns_total',
      'queue_self_ns_total',
      'queue_other_ns_total',
    ]);
    const s = parseSchedLat(text)!;
    t.diagnostic(
      `wait_count ${s.waitCount} wait_ns_total ${s.waitNsTotal} queue_self share ${pct(s.queueSelfNsTotal, s.waitNsTotal)} p50 ${s.p50Ns} p99 ${s.p99Ns}`,
    );
    // Three tasks share the CPU: each waits about 2/3 of 3 s, in waits of a few ms.
    assert.ok(s.waitNsTotal > 3_000_000_000n, `wait_ns_total ${s.waitNsTotal} < 3 s`);
    assert.ok(s.waitCount >= 100n, `wait_count ${s.waitCount}`);
    assert.equal(s.queueSelfNsTotal + s.queueOtherNsTotal, s.waitNsTotal, 'self + other = wait');
    assert.ok(
      s.queueSelfNsTotal * 100n >= s.waitNsTotal * 80n,
      `queue_self_ns_total is ${pct(s.queueSelfNsTotal, s.waitNsTotal)} of wait_ns_total, want >= 80%\n${text}`,
    );
    assert.ok(s.queueSelfMaxNs > 0n && s.queueSelfMaxNs <= s.waitNsTotal);
    checkHistogram(s, 'rfc');
  });

  it('2. two cgroups x two CPU-bound tasks on one CPU: mostly queue_other; totals = run_delay within 2%', async (t) => {
    const groups = { a: await mkCgroup('two_a'), b: await mkCgroup('two_b') };
    const pids = { a: await spinners(groups.a, 2), b: await spinners(groups.b, 2) };
    const all = [...pids.a, ...pids.b];
    // Same window on both sides: everything is stopped at both reads (no wait in progress).
    const before = {
      a: { sl: readSL('two_a'), rd: pids.a.map(runDelay) },
      b: { sl: readSL('two_b'), rd: pids.b.map(runDelay) },
    };
    await runFor(all, 3000);
    const afterRun = {
      a: { sl: readSL('two_a'), rd: pids.a.map(runDelay) },
      b: { sl: readSL('two_b'), rd: pids.b.map(runDelay) },
    };
    kill(all);

    for (const g of ['a', 'b'] as const) {
      const s0 = before[g].sl;
      const s1 = afterRun[g].sl;
      const wait = s1.waitNsTotal - s0.waitNsTotal;
      const self = s1.queueSelfNsTotal - s0.queueSelfNsTotal;
      const other = s1.queueOtherNsTotal - s0.queueOtherNsTotal;
      const rd = afterRun[g].rd.reduce((x, y) => x + y, 0n) - before[g].rd.reduce((x, y) => x + y, 0n);
      const info = `cgroup ${g}: wait ${wait} (self ${self}, other ${other}), run_delay ${rd}`;
      t.diagnostic(`${info}, wait/run_delay ${pct(wait, rd)}`);
      assert.ok(rd > 3_000_000_000n, `${info}: the tasks hardly waited`);
      assert.ok(other > self, `${info}: most of the wait should be queue_other`);
      // Round robin of 4 tasks: a task waits behind 1 of its cgroup and 2 of the other (self ~1/3).
      assert.ok(self * 100n >= wait * 15n, `${info}: queue_self should be about a third`);
      const diff = wait > rd ? wait - rd : rd - wait;
      assert.ok(diff * 50n <= rd, `${info}: differ by ${pct(diff, rd)}, want <= 2%`);
      checkHistogram(s1, g);
    }
  });

  it('3a. a sleeping cgroup shows (almost) no wait', async (t) => {
    const cg = await mkCgroup('sleeper');
    // SCHED_FIFO, so that the few wakeups are served at once whatever else the machine runs
    // (a CFS wakeup may really wait a few ms behind a busy task: that wait would be reported).
    const out = execFileSync(
      'chrt',
      [
        '-f',
        '10',
        'sh',
        '-c',
        'echo $$ > "$1/cgroup.procs" || exit 1; sleep 3 </dev/null >/dev/null 2>&1 & echo $!',
        'sh',
        cg,
      ],
      { encoding: 'latin1' },
    );
    const pid = Number(out.trim());
    track(pid);
    await waitFor(() => !alive(pid), 10000, 'sleep 3 to end');
    started.delete(pid);
    const s = readSL('sleeper');
    t.diagnostic(`sleeper: wait_count ${s.waitCount} wait_ns_total ${s.waitNsTotal}`);
    // A handful of waits (fork, exec, the wakeup after the sleep): short ones.
    assert.ok(s.waitCount >= 1n, `the wakeup after the sleep is a wait: ${s.waitCount}`);
    assert.ok(s.waitCount <= 10n, `wait_count ${s.waitCount}`);
    assert.ok(s.waitNsTotal < 1_000_000n, `wait_ns_total ${s.waitNsTotal} >= 1 ms`);
    checkHistogram(s, 'sleeper');
  });

  it("3b. a removed cgroup's file reads empty", async () => {
    const cg = await mkCgroup('gone');
    const file = path.join(env.bpffs, 'gone', 'sched_lat');
    assert.equal(readSL('gone').cgroupId, inode(cg), 'the live cgroup prints its stats');
    const fd = fs.openSync(file, 'r');
    try {
      fs.rmdirSync(cg);
      await waitFor(() => !fs.existsSync(path.dirname(file)), WAIT_MS, 'the tree directory to go');
      assert.equal(fs.readFileSync(fd, 'latin1'), '', 'read after rmdir');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('3c. counts never go down across a daemon restart (SIGTERM, kill -9); the collector is adopted', async () => {
    const cg = await mkCgroup('grow');
    const pids = await spinners(cg, 2);
    const links0 = pinnedCollectorLinks(privateDir(env));
    assert.equal(links0.length, LINKS.length);
    signal(pids, 'SIGCONT');
    const seen: Array<[string, SchedLat]> = [];
    const step = async (what: string) => {
      await sleep(300);
      const s = readSL('grow');
      const prev = seen[seen.length - 1];
      if (prev) {
        const [pw, ps] = prev;
        const [a, b] = [totalsOf(ps), totalsOf(s)];
        for (const [i, k] of [
          'wait_count',
          'wait_ns_total',
          'queue_self_ns_total',
          'queue_other_ns_total',
        ].entries())
          assert.ok(b[i]! >= a[i]!, `${k} went down from ${pw} (${a[i]}) to ${what} (${b[i]})`);
        assert.ok(s.waitCount > ps.waitCount, `wait_count did not grow from ${pw} to ${what}`);
      }
      seen.push([what, s]);
    };
    try {
      await step('running');
      await d.stop();
      await step('after SIGTERM');
      d = await Daemon.start(env);
      assert.equal((await collectorStatus(d))?.adopted, true, 'adopted after SIGTERM');
      await step('restarted');
      await d.kill();
      await step('after kill -9');
      d = await Daemon.start(env);
      assert.equal((await collectorStatus(d))?.adopted, true, 'adopted after kill -9');
      await step('restarted again');
    } finally {
      kill(pids);
    }
    assert.deepEqual(pinnedCollectorLinks(privateDir(env)), links0, 'the same collector links throughout');
  });

  it('4. the collector comes with the first sched_lat view and goes with the last', async () => {
    const e = daemonEnv();
    const priv = privateDir(e);
    onCleanup(() => removeTree(priv));
    const dm = await Daemon.start(e);
    const collectorDir = path.join(priv, COLLECTOR);
    const expectAttached = (what: string) => {
      const links = pinnedCollectorLinks(priv);
      assert.deepEqual(
        fs.readdirSync(collectorDir).sort(),
        [...LINKS.map((l) => `link_${l}`), ...MAPS].sort(),
        `${what}: pins in the private dir`,
      );
      const kl = kernelLinks(links.map((l) => l.id));
      const progs = kernelProgs([...kl.values()].map((k) => k.prog_id));
      for (const l of links) {
        // tp_btf programs (type tracing) attach through a raw_tracepoint link.
        const k = kl.get(l.id);
        assert.equal(k?.type, 'raw_tracepoint', `${what}: link ${l.id} (${l.name}) in bpftool link list`);
        assert.deepEqual(
          progs.get(k!.prog_id),
          { ...progs.get(k!.prog_id), name: l.name, type: 'tracing' },
          `${what}: link ${l.id} runs the tracing program ${l.name}`,
        );
      }
      assert.deepEqual(links.map((l) => l.name).sort(), [...LINKS].sort());
      return links;
    };
    const expectDetached = async (what: string, links: Array<{ id: number; progId: number }>) => {
      assert.ok(!fs.existsSync(collectorDir), `${what}: ${collectorDir} is gone`);
      await waitFor(
        () => {
          const kl = kernelLinks(links.map((l) => l.id));
          const progs = kernelProgs(links.map((l) => l.progId));
          return links.every((l) => !kl.has(l.id) && !progs.has(l.progId));
        },
        WAIT_MS,
        `${what}: the collector links and programs to leave the kernel`,
      );
      assert.equal((await collectorStatus(dm)) ?? null, null, `${what}: status lists no collector`);
    };

    // A tree with another view only: no collector.
    await dm.ok(['pin', 'info', e.bpffs, '--inherit']);
    assert.ok(!fs.existsSync(collectorDir), 'no collector for the info view');
    assert.deepEqual(pinnedCollectorLinks(priv), []);

    // The first sched_lat view loads it; a second one reuses it.
    await dm.ok(['pin', 'sched_lat', e.bpffs, '--inherit']);
    const links = expectAttached('sched_lat pinned');
    await dm.ok(['pin', 'sched_lat_tree', e.bpffs]);
    assert.deepEqual(expectAttached('sched_lat_tree pinned too'), links, 'the same links');
    await dm.ok(['unpin', path.join(e.bpffs, 'sched_lat')]);
    assert.deepEqual(expectAttached('sched_lat unpinned, sched_lat_tree left'), links, 'the same links');
    // ... and the last one unloads it.
    await dm.ok(['unpin', path.join(e.bpffs, 'sched_lat_tree')]);
    await expectDetached('last sched_lat view unpinned', links);
    assert.ok(fs.existsSync(path.join(e.bpffs, 'info')), 'the info view stays');

    // sched_lat_tree alone, in a sub-directory: the same.
    const sub = path.join(e.cgroupRoot, 'sub');
    fs.mkdirSync(sub);
    await waitFile(path.join(e.bpffs, 'sub', 'info'));
    await dm.ok(['pin', 'sched_lat_tree', path.join(e.bpffs, 'sub')]);
    const links2 = expectAttached('sched_lat_tree pinned alone');
    assert.equal(parseSchedLat(readFile(path.join(e.bpffs, 'sub', 'sched_lat_tree')))?.cgroupId, inode(sub));
    await dm.ok(['unpin', path.join(e.bpffs, 'sub', 'sched_lat_tree')]);
    await expectDetached('sched_lat_tree unpinned', links2);
    await dm.stop();
  });

  it("5. sched_lat_tree of a cgroup = its own sched_lat + its descendants'", async () => {
    const rels = ['tp', 'tp/c1', 'tp/c2', 'tp/c1/g'];
    const cgs: string[] = [];
    for (const r of rels) cgs.push(await mkCgroup(r));
    await d.ok(['pin', 'sched_lat_tree', path.join(env.bpffs, 'tp')]);
    await d.ok(['pin', 'sched_lat_tree', path.join(env.bpffs, 'tp/c1')]);
    const pids: number[] = [];
    for (const [i, cg] of cgs.entries()) pids.push(...(await spinners(cg, i === 1 ? 2 : 1)));
    await runFor(pids, 2000);
    const self = new Map(rels.map((r) => [r, readSL(r)]));
    const tree = { tp: readSL('tp', 'sched_lat_tree'), c1: readSL('tp/c1', 'sched_lat_tree') };
    kill(pids);

    const sum = (of: string[]) => {
      const ss = of.map((r) => self.get(r)!);
      return {
        totals: ss.map(totalsOf).reduce((a, b) => a.map((x, i) => x + b[i]!)),
        hist: ss.map((s) => s.hist.map((b) => b.count)).reduce((a, b) => a.map((x, i) => x + b[i]!)),
        selfMax: maxOf(ss.map((s) => s.queueSelfMaxNs)),
        otherMax: maxOf(ss.map((s) => s.queueOtherMaxNs)),
      };
    };
    for (const [name, t, of] of [
      ['tp', tree.tp, rels],
      ['tp/c1', tree.c1, ['tp/c1', 'tp/c1/g']],
    ] as const) {
      const want = sum([...of]);
      assert.equal(t.cgroupId, inode(path.join(env.cgroupRoot, name)));
      assert.ok(t.waitCount > 0n);
      // Nothing runs in these cgroups at the reads: the sums are exact.
      assert.deepEqual(totalsOf(t), want.totals, `${name}: wait_count, wait_ns_total, self, other`);
      assert.deepEqual(
        t.hist.map((b) => b.count),
        want.hist,
        `${name}: histogram`,
      );
      assert.equal(t.queueSelfMaxNs, want.selfMax, `${name}: queue_self is the max over the subtree`);
      assert.equal(t.queueOtherMaxNs, want.otherMax, `${name}: queue_other is the max over the subtree`);
      checkHistogram(t, `${name} tree`);
    }
  });
});
