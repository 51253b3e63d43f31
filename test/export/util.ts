/**
 * Helpers of the exporter's tests: a daemon with --listen on a port from the
 * OS and its /metrics URL, CPU-bound tasks in a cgroup (started stopped,
 * killed by pid after the file's tests), and a minimal parser of the text
 * exposition for assertions.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Daemon, type DaemonEnv, type DaemonOptions } from '../daemon.js';
import { onCleanup, sleep, waitFor } from '../helpers.js';

/** A daemon listening on 127.0.0.1:<port from the OS>; returns it and its /metrics URL. */
export async function listeningDaemon(
  env: DaemonEnv,
  opts: DaemonOptions = {},
): Promise<{ d: Daemon; url: string }> {
  const d = await Daemon.start(env, { ...opts, args: ['--listen', '127.0.0.1:0', ...(opts.args ?? [])] });
  const url = await waitFor(
    () => /"metrics":"(https?:[^"]+)"/.exec(d.stderr)?.[1],
    5000,
    'metrics url in the log',
  );
  return { d, url: url! };
}

export async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await fetch(url, { headers });
  assert.equal(r.status, 200, `GET ${url}: ${r.status}`);
  return r.text();
}

/** One sample line of a text exposition. */
export interface TextSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of a text exposition (0.0.4 or OpenMetrics). */
export function parseExposition(text: string): TextSample[] {
  const out: TextSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let x = re.exec(m[2] ?? ''); x; x = re.exec(m[2] ?? ''))
      labels[x[1]!] = x[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** Samples named `name` whose labels include `where`. */
export function pick(samples: TextSample[], name: string, where: Record<string, string>): TextSample[] {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));
}

// --- CPU-bound tasks ------------------------------------------------------------------------

const started = new Map<number, string>();

function procStat(pid: number): string[] | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  const st = procStat(pid)?.[0];
  return st !== undefined && st !== 'Z' && st !== 'X';
}

/** SIGKILLs tasks this file started (same pid and start time) and waits until they are gone. */
export function killTasks(pids: number[]): void {
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

/** `n` busy loops born in cgroup `cg`, on CPU `cpu`, running (they compete, so they wait). */
export async function spinners(cg: string, n: number, cpu = 1): Promise<number[]> {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${cpu} sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const out = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' });
  const pids = out.trim().split('\n').map(Number);
  for (const p of pids) {
    const st = procStat(p);
    if (st) started.set(p, st[19]!);
  }
  // Registered after the cgroup: cleanups run newest first, so the tasks go before it.
  onCleanup(() => killTasks(pids));
  await sleep(10);
  return pids;
}
