/**
 * sched_lat must not keep stale wait starts (issue 7.1). Many short
 * sleepers (perl loops sleeping in select(), no fork per sleep) run in a
 * test cgroup, spread on both CPUs, while the collector starts:
 *
 *   1. the collector started and stopped again and again by the daemon (the
 *      first `pin sched_lat`, the last unpin): every round's waits and
 *      maxima stay within the kernel's own run_delay of those tasks
 *      (/proc/PID/schedstat, 2nd field) over the round;
 *   2. the switch-ins missed on purpose (the wakeup programs attached alone
 *      for a while, then the rest): no wait spans a sleep.
 *
 * A stale start makes the next wait span the task's whole sleep (0.3 s, or
 * 20 ms), far above what the tasks really waited. Every task is killed by
 * pid, and the cgroups, daemon and bpffs directories removed after the
 * file's tests, also on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BpfObject, type Link } from '../../src/kernel/index.js';
import { parseSchedLat, type SchedLat } from '../../src/views/parse.js';
import { Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, inode, onCleanup, sleep, tmpCgroup, waitFor } from '../helpers.js';

/** Tasks this file started, with their start time (/proc/PID/stat field 22): a reused pid is left alone. */
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
    for (let i = 0; i < 200; i++) {
      const st = procStat(p)?.[0];
      if (st === undefined || st === 'Z' || st === 'X') break;
      execFileSync('sleep', ['0.01']);
    }
  started.clear();
}
onCleanup(killAll);

/**
 * `n` tasks born in cgroup `cg` (a launcher shell joins it, forks them and
 * exits), alternately pinned to CPU 0 and 1, each sleeping `sleepS` in a loop.
 */
function sleepers(cg: string, n: number, sleepS: number): number[] {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c $((i % 2)) perl -e 'select(undef, undef, undef, ${sleepS}) while 1' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const pids = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' })
    .trim()
    .split('\n')
    .map(Number);
  assert.equal(pids.length, n);
  for (const p of pids) {
    const st = procStat(p);
    assert.ok(st, `sleeper ${p} is gone`);
    started.set(p, st[19]!);
  }
  return pids;
}

/** The kernel's run_delay (ns spent runnable, waiting) of each task. */
function runDelays(pids: number[]): bigint[] {
  return pids.map((p) => BigInt(fs.readFileSync(`/proc/${p}/schedstat`, 'latin1').trim().split(/\s+/)[1]!));
}

/**
 * The collector's figures against each task's run_delay over a window that
 * holds the collector's: the total may not exceed their sum by more than
 * 5% + 1 ms (clock and boundary differences), and no single wait may be
 * longer than what its task waited in all (so than the largest task's
 * figure, + 1 ms). Both hold for any load; a stale start breaks them.
 */
function checkBounded(s: SchedLat, rd0: bigint[], rd1: bigint[], what: string): void {
  const deltas = rd1.map((v, i) => v - rd0[i]!);
  const rd = deltas.reduce((a, b) => a + b, 0n);
  let rdMax = 0n;
  for (const v of deltas) if (v > rdMax) rdMax = v;
  const info = `${what}: wait_ns_total ${s.waitNsTotal} (count ${s.waitCount}), queue_self ${s.queueSelfMaxNs}, queue_other ${s.queueOtherMaxNs}, run_delay ${rd} (largest task ${rdMax})`;
  assert.ok(s.waitNsTotal * 100n <= rd * 105n + 100_000_000n, `${info}: more wait than the kernel saw`);
  assert.ok(s.queueSelfMaxNs <= rdMax + 1_000_000n, `${info}: a queue_self longer than any task waited`);
  assert.ok(s.queueOtherMaxNs <= rdMax + 1_000_000n, `${info}: a queue_other longer than any task waited`);
}

describe('sched_lat: no stale wait starts', { concurrency: false }, () => {
  it('the collector started 10 times under 400 sleepers of 0.3 s: each round within run_delay', async (t) => {
    const env = daemonEnv();
    const cg = path.join(env.cgroupRoot, 'sleepers');
    fs.mkdirSync(cg);
    onCleanup(killAll); // runs before the cgroup's removal (cleanups run newest first)
    const pids = sleepers(cg, 400, 0.3);
    const d = await Daemon.start(env);
    const file = path.join(env.bpffs, 'sleepers', 'sched_lat');
    for (let round = 1; round <= 10; round++) {
      const rd0 = runDelays(pids);
      await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
      await sleep(700);
      const s = parseSchedLat(fs.readFileSync(file, 'latin1'));
      const rd1 = runDelays(pids);
      await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);
      assert.ok(s && s.cgroupId === inode(cg), `round ${round}: the sleepers' view`);
      t.diagnostic(
        `round ${round}: wait ${s.waitNsTotal} ns in ${s.waitCount} waits, max ${s.queueSelfMaxNs}/${s.queueOtherMaxNs}`,
      );
      assert.ok(s.waitCount > 0n, `round ${round}: the sleepers' waits are seen`);
      checkBounded(s, rd0, rd1, `round ${round}`);
      await waitFor(
        () => !fs.existsSync(path.join(env.privateDir, 'sched_lat@0')),
        5000,
        'collector stopped',
      );
    }
    await d.stop();
  });

  it('switch-ins missed on purpose (wakeups attached alone for 0.6 s): no wait spans a sleep', async (t) => {
    const cg = tmpCgroup();
    onCleanup(killAll);
    const pids = sleepers(cg, 50, 0.3);
    const coll = BpfObject.load(path.join(BPF_BUILD, 'sched_lat_collector.bpf.o'));
    const links: Link[] = [];
    let view: BpfObject | undefined;
    try {
      const rd0 = runDelays(pids);
      // Every sleeper wakes in this time, gets a start and is switched in unseen.
      for (const p of ['sl_wakeup', 'sl_wakeup_new']) links.push(coll.program(p).attach());
      await sleep(600);
      for (const p of ['sl_switch', 'sl_migrate']) links.push(coll.program(p).attach());
      await sleep(1500);
      view = BpfObject.load(path.join(BPF_BUILD, 'sched_lat.bpf.o'), {
        programs: ['sched_lat'],
        reuseMaps: {
          sl_cgrp: coll.map('sl_cgrp'),
          sl_cg_v1: coll.map('sl_cg_v1'),
        },
      });
      const iter = view.program('sched_lat').cgroupIter({ id: inode(cg) });
      let text: string;
      try {
        text = iter.read().toString('latin1');
      } finally {
        iter.close();
      }
      const rd1 = runDelays(pids);
      const s = parseSchedLat(text);
      assert.ok(s, 'the view prints');
      t.diagnostic(`wait ${s.waitNsTotal} ns in ${s.waitCount} waits, max other ${s.queueOtherMaxNs}`);
      assert.ok(s.waitCount > 0n, 'waits after the switch program came are seen');
      // A stale start spans a whole sleep (0.3 s): more than any task waited.
      checkBounded(s, rd0, rd1, 'missed switch-ins');
    } finally {
      for (const l of links) l.close();
      view?.close();
      coll.close();
    }
  });
});
