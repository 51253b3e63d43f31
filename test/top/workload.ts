/**
 * Known workloads for top's tests: CPU-bound loops born inside a cgroup and
 * pinned to one CPU, killed after the file's tests; and the kernel's own
 * accounting of them (/proc/PID/schedstat), the ground truth top's figures
 * are checked against.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, type DaemonEnv, daemonEnv } from '../daemon.js';
import { onCleanup, waitFor } from '../helpers.js';

/** /proc/PID/stat field 22 (start time): a pid is ours only while it still has the start time we saw. */
function startTime(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const started = new Map<number, string>();

export function killAll(): void {
  const ours = [...started].filter(([p, st]) => startTime(p) === st).map(([p]) => p);
  for (const p of ours) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const p of ours)
    for (let i = 0; i < 200 && startTime(p) !== undefined; i++) execFileSync('sleep', ['0.01']);
  started.clear();
}

/** `n` busy loops born inside `cg` (a launcher shell joins it, forks them, exits), pinned to `cpu`. */
export function spinners(cg: string, n: number, cpu: number): number[] {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${cpu} sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  // Registered after the cgroup was made: cleanups run newest first, so the tasks go before their cgroup.
  onCleanup(() => killAll());
  const out = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' });
  const pids = out.trim().split('\n').map(Number);
  assert.equal(pids.length, n);
  for (const p of pids) {
    const st = startTime(p);
    assert.ok(st, `spinner ${p} is gone`);
    started.set(p, st);
  }
  return pids;
}

/** The kernel's accounting of some tasks: run time, run_delay (time waiting on a runqueue), timeslices; summed. */
export interface SchedStat {
  runNs: number;
  waitNs: number;
  slices: number;
  at: number;
}

export function schedstat(pids: number[]): SchedStat {
  const s: SchedStat = { runNs: 0, waitNs: 0, slices: 0, at: performance.now() };
  for (const p of pids) {
    const [run, wait, slices] = fs
      .readFileSync(`/proc/${p}/schedstat`, 'latin1')
      .trim()
      .split(/\s+/)
      .map(Number);
    s.runNs += run!;
    s.waitNs += wait!;
    s.slices += slices!;
  }
  return s;
}

/** Rates between two readings: CPUs used, tasks waiting on average, waits (timeslices begun) per second. */
export function rates(
  a: SchedStat,
  b: SchedStat,
): { cpu: number; wait: number; waits: number; seconds: number } {
  const seconds = (b.at - a.at) / 1000;
  return {
    cpu: (b.runNs - a.runNs) / 1e9 / seconds,
    wait: (b.waitNs - a.waitNs) / 1e9 / seconds,
    waits: (b.slices - a.slices) / seconds,
    seconds,
  };
}

/** A daemon whose tree mirrors a fresh cgroup with sched_lat and info inherited. */
export async function schedTree(): Promise<{ env: DaemonEnv; d: Daemon }> {
  const env = daemonEnv();
  const d = await Daemon.start(env);
  await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
  await d.ok(['pin', 'info', env.bpffs, '--inherit']);
  return { env, d };
}

/** A child cgroup of the tree's cgroup, once its sched_lat file is there. */
export async function child(env: DaemonEnv, name: string): Promise<string> {
  const cg = path.join(env.cgroupRoot, name);
  fs.mkdirSync(cg);
  await waitFor(
    () =>
      fs.existsSync(
        path.join(
          env.bpffs,
          name.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E')),
          'sched_lat',
        ),
      ),
    10000,
    `${name}/sched_lat`,
  );
  return cg;
}

/** The path top shows for a cgroup directory (relative to the v2 mount). */
export function shownPath(cgroup2: string, cg: string): string {
  return `/${path.relative(cgroup2, cg)}`;
}
