/**
 * sched_lat with waits that change CPU (docs/sched_lat.md, "Migration while
 * waiting"): four CPU-bound tasks of one cgroup on two CPUs, one resident on
 * each CPU and two movers whose affinity is swapped between the CPUs every
 * millisecond, so that the scheduler moves them while they wait on a run
 * queue. A wait that spans migrations is one wait: the totals still equal the
 * kernel's own run_delay (/proc/PID/schedstat), the count its number of runs,
 * and since every task a mover waits behind is of its own cgroup, most of the
 * wait is queue_self. (That last check is loose: with one cgroup on both
 * CPUs, a split that ignored migrations would come out about the same.)
 *
 * Tasks are killed by pid, the cgroup, daemon and bpffs directories removed
 * after the file's tests, also on failure.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseSchedLat, type SchedLat } from '../../src/views/parse.js';
import { Daemon, daemonEnv } from '../daemon.js';
import { onCleanup, removeTree, sleep, waitFor } from '../helpers.js';

const CPUS = [0, 1];

function procState(pid: number): string | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2)[0] ?? null;
  } catch {
    return null;
  }
}

/** run_delay (ns) and the number of runs (pcount) of a task: /proc/PID/schedstat fields 2 and 3. */
function schedstat(pid: number): { delay: bigint; runs: bigint } {
  const f = fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/);
  return { delay: BigInt(f[1]!), runs: BigInt(f[2]!) };
}

/** Times the task changed CPU (/proc/PID/sched se.nr_migrations). */
function migrations(pid: number): number {
  const m = /^se\.nr_migrations\s*:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/sched`, 'latin1'));
  return m ? Number(m[1]) : 0;
}

const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);

function pct(a: bigint, b: bigint): string {
  return b === 0n ? 'n/a' : `${(Number((a * 100000n) / b) / 1000).toFixed(2)}%`;
}

describe('sched_lat, waits that migrate', { skip: os.availableParallelism() < 2 && 'needs two CPUs' }, () => {
  it('tasks moved between two CPUs while waiting: totals = run_delay, count = runs, self + other = wait', async (t) => {
    const env = daemonEnv();
    const priv = path.join(path.dirname(env.bpffs), `${path.basename(env.bpffs)}-private`);
    onCleanup(() => removeTree(priv));
    const pids: number[] = [];
    let flipper: ChildProcess | null = null;
    // Registered after daemonEnv's cleanups, so they run first: tasks die before their cgroup goes.
    onCleanup(() => {
      if (flipper?.pid && flipper.exitCode === null) flipper.kill('SIGKILL');
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      for (const p of pids)
        for (let i = 0; i < 200 && !['Z', 'X', null].includes(procState(p)); i++)
          execFileSync('sleep', ['0.01']);
    });
    const d = await Daemon.start(env);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    const cg = path.join(env.cgroupRoot, 'mig');
    fs.mkdirSync(cg);
    const file = path.join(env.bpffs, 'mig', 'sched_lat');
    await waitFor(() => fs.existsSync(file), 5000, file);

    // Four busy loops born in the cgroup, allowed on both CPUs, each stopped as it starts.
    const script =
      'echo $$ > "$1/cgroup.procs" || exit 1\n' +
      'for i in 1 2 3 4; do\n' +
      `  taskset -c ${CPUS.join(',')} sh -c 'kill -STOP $$; while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
      '  echo $!\n' +
      'done\n';
    pids.push(
      ...execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' }).trim().split('\n').map(Number),
    );
    assert.equal(pids.length, 4);
    await waitFor(() => pids.every((p) => procState(p) === 'T'), 5000, 'tasks stopped');

    const read = (): SchedLat => {
      const s = parseSchedLat(fs.readFileSync(file, 'latin1'));
      assert.ok(s, `${file} is empty`);
      return s;
    };
    // Residents: one per CPU.
    for (const [i, p] of pids.slice(0, 2).entries())
      execFileSync('taskset', ['-pc', String(CPUS[i]), String(p)]);
    const movers = pids.slice(2);
    // Same window on both sides: the tasks are stopped at both reads (no wait in progress).
    const s0 = read();
    const k0 = pids.map(schedstat);
    const m0 = pids.map(migrations);
    for (const p of pids) process.kill(p, 'SIGCONT');
    // Swap the movers between the CPUs every millisecond (they are on different CPUs at any time).
    flipper = spawn(
      '/usr/bin/python3',
      [
        '-c',
        'import os, sys, time\n' +
          'ps = [int(x) for x in sys.argv[1:]]\n' +
          'c = 0\n' +
          'while True:\n' +
          '    c ^= 1\n' +
          '    for i, p in enumerate(ps): os.sched_setaffinity(p, {(c + i) % 2})\n' +
          '    time.sleep(0.001)\n',
        ...movers.map(String),
      ],
      { stdio: 'ignore' },
    );
    await sleep(3000);
    flipper.kill('SIGKILL');
    await new Promise((r) =>
      flipper!.exitCode !== null || flipper!.signalCode ? r(null) : flipper!.once('exit', r),
    );
    for (const p of pids) process.kill(p, 'SIGSTOP');
    await waitFor(() => pids.every((p) => procState(p) === 'T'), 5000, 'tasks stopped');
    const s1 = read();
    const k1 = pids.map(schedstat);
    const moved = pids.reduce((n, p, i) => n + migrations(p) - m0[i]!, 0);

    const wait = s1.waitNsTotal - s0.waitNsTotal;
    const self = s1.queueSelfNsTotal - s0.queueSelfNsTotal;
    const other = s1.queueOtherNsTotal - s0.queueOtherNsTotal;
    const count = s1.waitCount - s0.waitCount;
    const rd = sum(k1.map((k) => k.delay)) - sum(k0.map((k) => k.delay));
    const runs = sum(k1.map((k) => k.runs)) - sum(k0.map((k) => k.runs));
    const info = `migrations ${moved}; wait ${wait} (self ${self}, other ${other}) vs run_delay ${rd}; waits ${count} vs runs ${runs}`;
    t.diagnostic(
      `${info}; wait/run_delay ${pct(wait, rd)}, waits/runs ${pct(count, runs)}, queue_self ${pct(self, wait)}`,
    );

    assert.ok(moved >= 500, `${info}: the tasks hardly changed CPU`);
    assert.ok(rd > 1_000_000_000n, `${info}: the tasks hardly waited`);
    assert.equal(self + other, wait, `${info}: self + other = wait`);
    // Every task is of this cgroup: what is not queue_self is other processes of the host.
    assert.ok(self * 2n >= wait, `${info}: queue_self is ${pct(self, wait)} of the wait, want >= 50%`);
    // A wait that spans a migration is counted once and whole: the kernel's own figures.
    const dw = wait > rd ? wait - rd : rd - wait;
    assert.ok(dw * 50n <= rd, `${info}: wait differs from run_delay by ${pct(dw, rd)}, want <= 2%`);
    const dc = count > runs ? count - runs : runs - count;
    assert.ok(dc * 20n <= runs, `${info}: waits differ from runs by ${pct(dc, runs)}, want <= 5%`);
    assert.ok(
      s1.queueSelfMaxNs <= s1.waitNsTotal && s1.queueOtherMaxNs <= s1.waitNsTotal,
      'maxima within the total',
    );
    await d.stop();
  });
});
