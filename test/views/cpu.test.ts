/**
 * The `cpu` view on the real kernel (issue 12, docs/cpu-views.md), driven
 * through `cgview daemon` and `cgview pin` like an operator would, against
 * the kernel's own figures over the same window (all tasks stopped at both
 * reads):
 *
 *   1. one cgroup alone with two CPU-bound tasks on one CPU: run_ns_total
 *      within 2% of cpu.stat usage_usec and of the tasks' schedstat run
 *      time; nivcsw_total / nvcsw_total against the tasks' context switch
 *      counts; preempted_by_other near zero (the tasks preempt each other);
 *   2. two cgroups, one task each, on one CPU: preempted_by_other grows;
 *   3. migrations_total against the tasks' se.nr_migrations;
 *   4. counters keep growing across a daemon restart (collector adopted);
 *   5. cgroup v1 (a tree on the cpu hierarchy): run time and switches.
 *
 * The tasks are pinned to CPU 0 (the sched_lat tests use CPU 1). Other
 * load on the machine can only add preemptions by other cgroups, so test 1
 * compares them with the cgroup's own switches, not with zero.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { classifyView } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { Daemon, type DaemonEnv, daemonEnv, liveDaemonLogs } from '../daemon.js';
import { CGROUP_V1_CPU, inode, onCleanup, removeTree, sleep, waitFor } from '../helpers.js';
import {
  boostGroup,
  delta,
  diffTruth,
  kill,
  pct,
  privateDirOf,
  readCounters,
  runFor,
  spinners,
  sumTruth,
  usageUsec,
  within,
} from './cpu_tasks.js';

const CPU = 0;
const KEYS = [
  'cgroup_id',
  'run_ns_total',
  'nvcsw_total',
  'nivcsw_total',
  'preempted_by_self_total',
  'preempted_by_other_total',
  'migrations_total',
];

let env: DaemonEnv;
let d: Daemon;

async function mkCgroup(e: DaemonEnv, rel: string): Promise<string> {
  const cg = path.join(e.cgroupRoot, rel);
  fs.mkdirSync(cg);
  const file = path.join(e.bpffs, rel, 'cpu');
  try {
    await waitFor(() => fs.existsSync(file), 5000, file);
  } catch (err) {
    (err as Error).message += `\n${liveDaemonLogs()}`;
    throw err;
  }
  return cg;
}

function readCpu(e: DaemonEnv, rel: string): Map<string, bigint> {
  return readCounters(path.join(e.bpffs, rel, 'cpu'));
}

describe('the cpu view on the real kernel', { concurrency: false }, () => {
  it('setup: a daemon, `cgview pin cpu TREE --inherit`', async () => {
    env = daemonEnv();
    onCleanup(() => removeTree(privateDirOf(env.bpffs)));
    d = await Daemon.start(env);
    await d.ok(['pin', 'cpu', env.bpffs, '--inherit']);
    const text = fs.readFileSync(path.join(env.bpffs, 'cpu'), 'latin1');
    assert.deepEqual(
      text
        .split('\n')
        .slice(0, -1)
        .map((l) => l.split(':')[0]),
      KEYS,
      `the fixed names, in order:\n${text}`,
    );
    const st = (await d.status()) as unknown as { collectors: Record<string, { running: boolean }> };
    assert.equal(st.collectors['cpu@0']?.running, true);
    // The exporter's conversion (docs/views.md, "Key conventions").
    assert.deepEqual(
      classifyView(parseViewOutput(text)).metrics.map((m) => [m.name, m.kind, m.scale]),
      [
        ['run_seconds_total', 'counter', 1e-9],
        ['nvcsw_total', 'counter', 1],
        ['nivcsw_total', 'counter', 1],
        ['preempted_by_self_total', 'counter', 1],
        ['preempted_by_other_total', 'counter', 1],
        ['migrations_total', 'counter', 1],
      ],
    );
  });

  it("1. alone on a CPU: run time = usage_usec = schedstat (2%), switches = the tasks', preempted by self", async (t) => {
    const cg = await mkCgroup(env, 'alone');
    // In a v1 cpu group with the largest shares: a foreign CPU-bound task on the same CPU (other
    // tests of this machine) gets ~0.4% of it and hardly ever preempts these two; without it, it
    // took 45% of their switches. Without a v1 cpu hierarchy, the check below needs a quiet CPU.
    const pids = await spinners(cg, 2, CPU, { v1CpuGroup: boostGroup(CGROUP_V1_CPU) ?? undefined });
    const v0 = readCpu(env, 'alone');
    const u0 = usageUsec(cg);
    const k0 = sumTruth(pids);
    await runFor(pids, 2500);
    const v1 = readCpu(env, 'alone');
    const u1 = usageUsec(cg);
    const k1 = sumTruth(pids);
    kill(pids);
    assert.equal(v1.get('cgroup_id'), inode(cg), 'cgroup_id is the cgroup inode');
    const dv = delta(v0, v1);
    const dk = diffTruth(k0, k1);
    const usageNs = (u1 - u0) * 1000n;
    const run = dv.get('run_ns_total')!;
    const info = `run_ns ${run}, usage ${usageNs} ns (${pct(run, usageNs)}), schedstat ${dk.runNs} (${pct(run, dk.runNs)}); nivcsw ${dv.get('nivcsw_total')} vs ${dk.nonvoluntary}, nvcsw ${dv.get('nvcsw_total')} vs ${dk.voluntary}; by_self ${dv.get('preempted_by_self_total')} by_other ${dv.get('preempted_by_other_total')}`;
    t.diagnostic(info);
    assert.ok(dk.runNs > 1_000_000_000n, `the tasks hardly ran: ${info}`);
    assert.ok(within(run, usageNs, 2), `run_ns_total vs cpu.stat usage_usec: ${info}`);
    assert.ok(within(run, dk.runNs, 2), `run_ns_total vs schedstat: ${info}`);
    const niv = dv.get('nivcsw_total')!;
    assert.ok(dk.nonvoluntary >= 50n, `few involuntary switches: ${info}`);
    assert.ok(within(niv, dk.nonvoluntary, 2), `nivcsw_total vs nonvoluntary_ctxt_switches: ${info}`);
    // SIGSTOP/SIGCONT: a handful of voluntary switches; exact but for a signal racing a sleep.
    const nv = dv.get('nvcsw_total')!;
    const dnv = nv > dk.voluntary ? nv - dk.voluntary : dk.voluntary - nv;
    assert.ok(dnv <= 2n + dk.voluntary / 50n, `nvcsw_total vs voluntary_ctxt_switches: ${info}`);
    const self = dv.get('preempted_by_self_total')!;
    const other = dv.get('preempted_by_other_total')!;
    assert.ok(self + other <= niv, `self + other <= nivcsw: ${info}`);
    // Alone on its CPU the two tasks preempt each other at the end of their slices; kernel threads
    // and foreign tasks waking on that CPU (other tests of this machine: 10-26% of the switches
    // seen under that load, ~0 on a quiet machine) preempt them too, so "near zero" is: far below
    // the share when another cgroup's task shares the CPU (100%, test 2).
    assert.ok(
      other * 2n < niv,
      `preempted_by_other should be near zero, is ${pct(other, niv)} of nivcsw: ${info}`,
    );
  });

  it('2. sharing a CPU with another cgroup: preempted_by_other grows', async (t) => {
    const a = await mkCgroup(env, 'share_a');
    const b = await mkCgroup(env, 'share_b');
    const pa = await spinners(a, 1, CPU);
    const pb = await spinners(b, 1, CPU);
    const v0 = readCpu(env, 'share_a');
    const k0 = sumTruth(pa);
    await runFor([...pa, ...pb], 2500);
    const v1 = readCpu(env, 'share_a');
    const k1 = sumTruth(pa);
    kill([...pa, ...pb]);
    const dv = delta(v0, v1);
    const dk = diffTruth(k0, k1);
    const niv = dv.get('nivcsw_total')!;
    const other = dv.get('preempted_by_other_total')!;
    const self = dv.get('preempted_by_self_total')!;
    const info = `nivcsw ${niv} (kernel ${dk.nonvoluntary}), by_other ${other}, by_self ${self}`;
    t.diagnostic(info);
    assert.ok(niv >= 50n, `few involuntary switches: ${info}`);
    assert.ok(within(niv, dk.nonvoluntary, 2), `nivcsw_total vs nonvoluntary_ctxt_switches: ${info}`);
    // One task in the cgroup: every preemption in favour of a task is by another cgroup's.
    assert.ok(other * 10n >= niv * 9n, `preempted_by_other should be most of nivcsw: ${info}`);
    assert.ok(self === 0n, `a cgroup with one task cannot be preempted by itself: ${info}`);
  });

  it("3. migrations_total = the tasks' se.nr_migrations", async (t) => {
    const cg = await mkCgroup(env, 'mig');
    const pids = await spinners(cg, 1, CPU);
    const v0 = readCpu(env, 'mig');
    const k0 = sumTruth(pids);
    const { execFileSync } = await import('node:child_process');
    await runFor(pids, 0, async () => {
      for (let i = 0; i < 20; i++) {
        execFileSync('taskset', ['-p', '-c', String((CPU + 1 + i) % 2), String(pids[0])], {
          stdio: 'ignore',
        });
        await sleep(20);
      }
    });
    const v1 = readCpu(env, 'mig');
    const k1 = sumTruth(pids);
    kill(pids);
    const m = delta(v0, v1).get('migrations_total')!;
    const km = diffTruth(k0, k1).migrations;
    t.diagnostic(`migrations_total ${m}, se.nr_migrations ${km}`);
    assert.ok(km >= 20n, `the task moved ${km} times`);
    assert.equal(m, km, 'migrations_total vs se.nr_migrations');
  });

  it('4. counters keep growing across a daemon restart; the collector is adopted', async () => {
    const cg = await mkCgroup(env, 'grow');
    const pids = await spinners(cg, 1, CPU);
    await runFor(pids, 300);
    const a = readCpu(env, 'grow');
    const ka = sumTruth(pids);
    await d.stop();
    d = await Daemon.start(env);
    const st = (await d.status()) as unknown as { collectors: Record<string, { adopted: boolean }> };
    assert.equal(st.collectors['cpu@0']?.adopted, true, 'adopted after SIGTERM');
    await runFor(pids, 300);
    const b = readCpu(env, 'grow');
    const kb = sumTruth(pids);
    kill(pids);
    for (const k of KEYS.slice(1))
      assert.ok(b.get(k)! >= a.get(k)!, `${k} went down: ${a.get(k)} -> ${b.get(k)}`);
    // The task's own run time over the same span (the restart included: the
    // collector kept counting), not a share of wall time the machine's load decides.
    const grew = b.get('run_ns_total')! - a.get('run_ns_total')!;
    const truth = diffTruth(ka, kb).runNs;
    const info = `run_ns_total +${grew}, schedstat +${truth}`;
    assert.ok(truth > 10_000_000n, `the task hardly ran: ${info}`);
    assert.ok(
      grew * 10n >= truth * 9n && grew * 10n <= truth * 11n + 50_000_000n,
      `run_ns_total grew as the task ran: ${info}`,
    );
  });

  it("5. cgroup v1 (the cpu hierarchy): run time = schedstat, switches = the tasks'", async (t) => {
    if (!fs.existsSync(path.join(CGROUP_V1_CPU, 'cgroup.procs'))) {
      t.skip(`no v1 cpu hierarchy at ${CGROUP_V1_CPU}`);
      return;
    }
    const e = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    onCleanup(() => removeTree(privateDirOf(e.bpffs)));
    const dm = await Daemon.start(e);
    try {
      await dm.ok(['pin', 'cpu', e.bpffs, '--inherit']);
      const cg = await mkCgroup(e, 'v1');
      const pids = await spinners(cg, 2, CPU);
      const v0 = readCpu(e, 'v1');
      const k0 = sumTruth(pids);
      await runFor(pids, 2000);
      const v1 = readCpu(e, 'v1');
      const k1 = sumTruth(pids);
      kill(pids);
      assert.equal(v1.get('cgroup_id'), inode(cg), 'cgroup_id is the v1 cgroup inode');
      const dv = delta(v0, v1);
      const dk = diffTruth(k0, k1);
      const run = dv.get('run_ns_total')!;
      const niv = dv.get('nivcsw_total')!;
      const info = `run_ns ${run} vs schedstat ${dk.runNs}; nivcsw ${niv} vs ${dk.nonvoluntary}`;
      t.diagnostic(info);
      assert.ok(dk.runNs > 300_000_000n, `the tasks hardly ran: ${info}`);
      assert.ok(within(run, dk.runNs, 2), `run_ns_total vs schedstat: ${info}`);
      assert.ok(within(niv, dk.nonvoluntary, 2), `nivcsw_total: ${info}`);
      const st = (await dm.status()) as unknown as { collectors: Record<string, unknown> };
      assert.ok(
        Object.keys(st.collectors).some((k) => k.startsWith('cpu@') && k !== 'cpu@0'),
        `a v1 collector instance: ${Object.keys(st.collectors)}`,
      );
    } finally {
      await dm.stop();
    }
  });
});
