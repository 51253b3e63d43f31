/**
 * What the cpu and sched_culprits tests share: CPU-bound tasks born inside
 * a cgroup and pinned to one CPU, stopped (SIGSTOP) between measurements so
 * that every read sees no wait or run in progress, and the kernel's own
 * per-task figures (/proc/PID/schedstat, status, sched) as ground truth.
 * Every task is killed by pid (and only if it is still the one this file
 * started: start time checked), from the file's cleanups.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseViewOutput, viewUint } from '../../src/views/parse.js';
import { onCleanup, sleep, tmpCgroup, waitFor } from '../helpers.js';

const WAIT_MS = 5000;

/** Tasks started here, with their start time (/proc/PID/stat field 22). */
const started = new Map<number, string>();
let registered = false;

function procStat(pid: number): string[] | null {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

export function procState(pid: number): string | null {
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
  if (!registered) {
    registered = true;
    onCleanup(() => kill([...started.keys()]));
  }
}

/** SIGKILLs tasks started here and waits until they are gone (their cgroups can go then). */
export function kill(pids: number[]): void {
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

/**
 * `n` busy loops born inside `cg` (a launcher shell joins the cgroup, forks
 * them and exits), pinned to `cpu`, at nice level `nice`, each stopped as
 * soon as it starts. `v1CpuGroup`: a v1 cpu cgroup the tasks join as well
 * (see boostGroup).
 */
export async function spinners(
  cg: string,
  n: number,
  cpu: number,
  opts: { nice?: number; v1CpuGroup?: string } = {},
): Promise<number[]> {
  const nice = opts.nice ?? 0;
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    (opts.v1CpuGroup ? 'echo $$ > "$2/cgroup.procs" || exit 1\n' : '') +
    `for i in $(seq ${n}); do\n` +
    `  nice -n ${nice} taskset -c ${cpu} sh -c 'kill -STOP $$; while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const out = execFileSync('sh', ['-c', script, 'sh', cg, opts.v1CpuGroup ?? ''], { encoding: 'latin1' });
  const pids = out.trim().split('\n').map(Number);
  assert.equal(pids.length, n);
  for (const p of pids) track(p);
  await waitStopped(pids);
  return pids;
}

export async function waitStopped(pids: number[]): Promise<void> {
  await waitFor(() => pids.every((p) => procState(p) === 'T'), WAIT_MS, `tasks ${pids.join(' ')} stopped`);
}

export function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) process.kill(p, sig);
}

/** Lets the tasks run for `ms` (calling `during` meanwhile, if given), then stops them. */
export async function runFor(pids: number[], ms: number, during?: () => Promise<void>): Promise<void> {
  signal(pids, 'SIGCONT');
  const end = Date.now() + ms;
  if (during) await during();
  const left = end - Date.now();
  if (left > 0) await sleep(left);
  signal(pids, 'SIGSTOP');
  await waitStopped(pids);
}

/** The kernel's per-task figures. */
export interface TaskTruth {
  /** sum_exec_runtime (ns): /proc/PID/schedstat field 1. */
  runNs: bigint;
  /** run_delay (ns): field 2. */
  waitNs: bigint;
  voluntary: bigint;
  nonvoluntary: bigint;
  /** se.nr_migrations (/proc/PID/sched). */
  migrations: bigint;
}

export function taskTruth(pid: number): TaskTruth {
  const ss = fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const field = (re: RegExp, text: string) => {
    const m = re.exec(text);
    assert.ok(m, `${re} in /proc/${pid}`);
    return BigInt(m[1]!);
  };
  return {
    runNs: BigInt(ss[0]!),
    waitNs: BigInt(ss[1]!),
    voluntary: field(/^voluntary_ctxt_switches:\s+(\d+)$/m, status),
    nonvoluntary: field(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m, status),
    migrations: field(/^se\.nr_migrations\s+:\s+(\d+)$/m, fs.readFileSync(`/proc/${pid}/sched`, 'latin1')),
  };
}

/** The sum of the figures of tasks. */
export function sumTruth(pids: number[]): TaskTruth {
  const z: TaskTruth = { runNs: 0n, waitNs: 0n, voluntary: 0n, nonvoluntary: 0n, migrations: 0n };
  for (const p of pids) {
    const t = taskTruth(p);
    for (const k of Object.keys(z) as Array<keyof TaskTruth>) z[k] += t[k];
  }
  return z;
}

export function diffTruth(a: TaskTruth, b: TaskTruth): TaskTruth {
  const out = { ...b };
  for (const k of Object.keys(out) as Array<keyof TaskTruth>) out[k] = b[k] - a[k];
  return out;
}

/** A view file's lines as unsigned integers (cgroup_id included). */
export function readCounters(file: string): Map<string, bigint> {
  const text = fs.readFileSync(file, 'latin1');
  const m = parseViewOutput(text);
  assert.ok(m.size > 0, `${file} is empty`);
  return new Map([...m.keys()].map((k) => [k, viewUint(m, k)]));
}

/** b - a for every key of b (a missing key counts 0). */
export function delta(a: Map<string, bigint>, b: Map<string, bigint>): Map<string, bigint> {
  return new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0n)]));
}

/** |a - b| <= pct% of b. */
export function within(a: bigint, b: bigint, pct: number): boolean {
  const d = a > b ? a - b : b - a;
  return Number(d) * 100 <= pct * Number(b);
}

export function pct(a: bigint, b: bigint): string {
  return b === 0n ? 'n/a' : `${((100 * Number(a)) / Number(b)).toFixed(2)}%`;
}

/** The daemon's private directory (cli/daemon.ts: <dirname(--bpffs)>/<basename(--bpffs)>-private). */
export function privateDirOf(bpffs: string): string {
  return path.join(path.dirname(bpffs), `${path.basename(bpffs)}-private`);
}

/** `cpu.stat` usage_usec of a v2 cgroup (µs). */
export function usageUsec(cg: string): bigint {
  const m = /^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(cg, 'cpu.stat'), 'latin1'));
  assert.ok(m, `usage_usec in ${cg}/cpu.stat`);
  return BigInt(m[1]!);
}

/**
 * A v1 cpu cgroup of the test's own with the largest cpu.shares (262144), so
 * that tasks in it get ~99% of a CPU against foreign load: the tasks of other
 * sessions each come in an autogroup of weight 1024, which a nice level
 * inside our own autogroup would not beat. Null without a v1 cpu hierarchy.
 */
export function boostGroup(v1Cpu: string): string | null {
  if (!fs.existsSync(path.join(v1Cpu, 'cpu.shares'))) return null;
  const g = tmpCgroup(v1Cpu);
  fs.writeFileSync(path.join(g, 'cpu.shares'), '262144');
  return g;
}
