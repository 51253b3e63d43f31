/**
 * sched_lat collector overhead (issue 4): the worst case for a scheduler
 * tracer is a pipe ping-pong on one CPU (every op is two wakeups and two
 * context switches). In one run, interleaved rounds of
 * `taskset -c 1 perf bench sched pipe -l 200000` (usecs/op):
 *   none      no tracing
 *   cgview    the sched_lat collector attached (loaded and pinned by
 *             src/views/collectors.ts, as the daemon does on the first pin)
 *   bpftrace  `bpftrace bench/sched_lat_bpftrace.bt` running
 *   + every `--variant NAME=OBJ`: another collector object (same programs
 *     and maps) loaded the same way, e.g. a storage variant.
 * Then the per-event cost of each program (kernel.bpf_stats_enabled=1 only
 * while measuring, the old value restored): run_time_ns / run_cnt.
 *
 * Run as root, from the repository:
 *   node dist/bench/sched_pipe.js [--rounds 3] [--runs 5] [--loops 200000] [--cpu 1]
 *        [--variant NAME=path/to/collector.bpf.o ...] [--no-bpftrace]
 * bpftrace needs tracefs: mounted at /sys/kernel/tracing for the run if it
 * is not (and unmounted after).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeLogger } from '../src/daemon/log.js';
import { bpfBuildDir } from '../src/kernel/features.js';
import { Collectors } from '../src/views/collectors.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const BT_SCRIPT = path.join(REPO, 'bench/sched_lat_bpftrace.bt');
const TRACEFS = '/sys/kernel/tracing';
const STATS = '/proc/sys/kernel/bpf_stats_enabled';
const INSTANCE = 'sched_lat@0';

// --- options ---------------------------------------------------------------------------

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} wants a positive integer`);
  return v;
}
const ROUNDS = opt('rounds', 3);
const RUNS = opt('runs', 5);
const LOOPS = opt('loops', 200000);
const CPU = opt('cpu', 1);
const WITH_BPFTRACE = !process.argv.includes('--no-bpftrace');
const VARIANTS: Array<{ name: string; object: string }> = [];
for (let i = 0; i < process.argv.length; i++)
  if (process.argv[i] === '--variant') {
    const m = /^([A-Za-z0-9_-]+)=(.+)$/.exec(process.argv[i + 1] ?? '');
    if (!m) throw new Error('--variant wants NAME=path/to/collector.bpf.o');
    VARIANTS.push({ name: m[1]!, object: path.resolve(m[2]!) });
  }

// --- things to undo --------------------------------------------------------------------

const tag = `cgvb-sched-${process.pid}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
const undo: Array<() => void> = [];
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  while (undo.length) {
    try {
      undo.pop()!();
    } catch (e) {
      console.error(`cleanup: ${(e as Error).message}`);
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });

const log = makeLogger('warn');

// --- modes -----------------------------------------------------------------------------

interface Mode {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Per-program [run_cnt, run_time_ns] while attached. */
  progStats(): Map<string, { cnt: number; ns: number }>;
}

/** A collector object loaded and pinned by src/views/collectors.ts (what the daemon does). */
function collectorMode(name: string, object: string | null): Mode {
  let dir = bpfBuildDir();
  if (object) {
    // Collectors loads <dir>/sched_lat_collector.bpf.o: give it the variant under that name.
    dir = fs.mkdtempSync(path.join(work, `${name}-`));
    fs.copyFileSync(object, path.join(dir, 'sched_lat_collector.bpf.o'));
  }
  const priv = `/sys/fs/bpf/${tag}-${name}-private`;
  let c: Collectors | null = null;
  const stop = () => {
    if (!c) return;
    c.stop(INSTANCE);
    c.close();
    c = null;
    fs.rmSync(priv, { recursive: true, force: true });
  };
  undo.push(stop);
  return {
    name,
    async start() {
      c = new Collectors(priv, dir, log);
      c.acquire(INSTANCE);
    },
    async stop() {
      stop();
    },
    progStats() {
      const st = c!.status()[INSTANCE] as { programs: Record<string, { runCnt: number; runTimeNs: number }> };
      return new Map(Object.entries(st.programs).map(([p, v]) => [p, { cnt: v.runCnt, ns: v.runTimeNs }]));
    },
  };
}

interface ProgRow {
  id: number;
  name: string;
  run_cnt?: number;
  run_time_ns?: number;
}

/** Programs a process holds (prog_id in the fdinfo of its bpf-prog descriptors). */
function progsOf(pid: number): ProgRow[] {
  const ids = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      const m = /^prog_id:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  const rows = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as ProgRow[];
  return rows.filter((p) => ids.has(p.id));
}

function bpftraceMode(): Mode {
  let bt: ChildProcess | null = null;
  const stop = async () => {
    const p = bt;
    if (!p) return;
    bt = null;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    const t = setTimeout(() => p.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  };
  undo.push(() => {
    if (bt?.pid) process.kill(bt.pid, 'SIGKILL');
  });
  return {
    name: 'bpftrace',
    async start() {
      const p = spawn('bpftrace', [BT_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
      bt = p;
      let out = '';
      p.stdout!.setEncoding('utf8').on('data', (s: string) => {
        if (out.length < 4096) out += s;
      });
      p.stderr!.setEncoding('utf8').on('data', (s: string) => {
        if (out.length < 4096) out += s;
      });
      // Attached when its tracepoint programs show up and their number holds still.
      const end = Date.now() + 30000;
      let last = -1;
      for (;;) {
        if (p.exitCode !== null) throw new Error(`bpftrace exited (${p.exitCode}):\n${out}`);
        if (Date.now() > end) throw new Error(`bpftrace did not attach within 30 s:\n${out}`);
        await sleep(250);
        if (!/Attaching \d+ probes/.test(out)) continue;
        const n = progsOf(p.pid!).length;
        if (n >= 3 && n === last) break;
        last = n;
      }
      await sleep(500);
    },
    stop,
    progStats() {
      return new Map(progsOf(bt!.pid!).map((p) => [p.name, { cnt: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 }]));
    },
  };
}

const none: Mode = {
  name: 'none',
  async start() {},
  async stop() {},
  progStats: () => new Map(),
};

// --- measuring ---------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const PERF = ['-c', String(CPU), 'perf', 'bench', 'sched', 'pipe', '-l', String(LOOPS)];
const COMMAND = `taskset ${PERF.join(' ')}`;

function perfOnce(): number {
  const out = execFileSync('taskset', PERF, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /([0-9.]+) usecs\/op/.exec(out);
  if (!m) throw new Error(`no usecs/op in perf output:\n${out}`);
  return Number(m[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Raw tracepoint / tracing links in the kernel that are not ours (they would slow every mode). */
function foreignTracing(ours: Set<number>): string[] {
  // Other sessions may hold many links: a listing of megabytes.
  const links = JSON.parse(
    execFileSync('bpftool', ['-j', 'link', 'list'], { encoding: 'utf8', maxBuffer: 1 << 28 }),
  ) as Array<{
    id: number;
    type: string;
    prog_id: number;
    tp_name?: string;
  }>;
  return links
    .filter(
      (l) =>
        (l.type === 'raw_tracepoint' || l.type === 'tracing' || l.type === 'perf_event') && !ours.has(l.id),
    )
    .map((l) => `link ${l.id} ${l.type} ${l.tp_name ?? ''} prog ${l.prog_id}`);
}

function tracefsMounted(): boolean {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === TRACEFS && l.split(' ')[2] === 'tracefs');
}

function fmt(x: number, d = 3): string {
  return x.toFixed(d);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  if (WITH_BPFTRACE && !tracefsMounted()) {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS]);
    undo.push(() => execFileSync('umount', [TRACEFS]));
    console.log(`mounted tracefs at ${TRACEFS} for bpftrace (unmounted at the end)`);
  }
  const modes: Mode[] = [
    none,
    collectorMode('cgview', null),
    ...(WITH_BPFTRACE ? [bpftraceMode()] : []),
    ...VARIANTS.map((v) => collectorMode(v.name, v.object)),
  ];
  const load0 = os.loadavg()[0]!;
  console.log(`${COMMAND}: ${ROUNDS} rounds x ${RUNS} runs per mode, modes rotated each round`);
  const foreign = foreignTracing(new Set());
  if (foreign.length) console.log(`WARNING: tracing programs of others attached:\n  ${foreign.join('\n  ')}`);

  // usecs/op per mode and round.
  const res = new Map<string, number[][]>(modes.map((m) => [m.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    for (const m of order) {
      await m.start();
      try {
        perfOnce(); // warm-up, not counted
        const xs: number[] = [];
        for (let i = 0; i < RUNS; i++) xs.push(perfOnce());
        res.get(m.name)!.push(xs);
        console.log(
          `round ${r + 1} ${m.name.padEnd(10)} ${xs.map((x) => fmt(x)).join(' ')}  median ${fmt(median(xs))}`,
        );
      } finally {
        await m.stop();
      }
    }
  }

  // Per-event cost: bpf_stats_enabled only while one run is measured.
  const perEvent = new Map<string, Map<string, { cnt: number; ns: number }>>();
  const old = fs.readFileSync(STATS, 'utf8').trim();
  for (const m of modes.filter((x) => x !== none)) {
    await m.start();
    try {
      fs.writeFileSync(STATS, '1');
      try {
        perfOnce();
      } finally {
        fs.writeFileSync(STATS, old);
      }
      perEvent.set(m.name, m.progStats());
    } finally {
      await m.stop();
    }
  }
  const load1 = os.loadavg()[0]!;

  // --- report ---
  const base = res.get('none')!;
  const lines: string[] = [];
  const head = ['mode', ...base.map((_, r) => `round ${r + 1}`), 'all runs', 'added', 'added %'];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  const added = new Map<string, number>();
  const baseAll = median(base.flat());
  for (const m of modes) {
    const rounds = res.get(m.name)!;
    const all = median(rounds.flat());
    const add = all - baseAll;
    added.set(m.name, add);
    lines.push(
      `| ${m.name} | ${rounds.map((xs) => fmt(median(xs))).join(' | ')} | ${fmt(all)} | ${
        m === none ? '—' : `+${fmt(add)}`
      } | ${m === none ? '—' : `+${fmt((100 * add) / baseAll, 1)}%`} |`,
    );
  }
  lines.push('');
  if (WITH_BPFTRACE) {
    const per = base.map((xs, r) => {
      const b = median(xs);
      return (median(res.get('cgview')![r]!) - b) / (median(res.get('bpftrace')![r]!) - b);
    });
    const ratio = added.get('cgview')! / added.get('bpftrace')!;
    lines.push(
      `cgview added / bpftrace added: **${fmt(ratio, 2)}** over all runs (per round: ${per
        .map((x) => fmt(x, 2))
        .join(', ')}); goal <= 0.5: ${ratio <= 0.5 ? 'met' : 'NOT met'}`,
      '',
    );
  }
  lines.push('Per event (kernel.bpf_stats_enabled=1 during one run; run_time_ns / run_cnt):', '');
  lines.push('| mode | program | run_cnt | ns/event |', '|---|---|---:|---:|');
  for (const [mode, progs] of perEvent)
    for (const [p, v] of [...progs].sort((a, b) => b[1].cnt - a[1].cnt))
      lines.push(`| ${mode} | ${p} | ${v.cnt} | ${v.cnt ? fmt(v.ns / v.cnt, 1) : '—'} |`);
  lines.push(
    '',
    `Load average (1 min) ${fmt(load0, 2)} at the start, ${fmt(load1, 2)} at the end; ${os.cpus().length} CPUs, Linux ${os.release()}.`,
  );
  console.log(`\n${lines.join('\n')}`);
}

try {
  await main();
} finally {
  cleanup();
}
