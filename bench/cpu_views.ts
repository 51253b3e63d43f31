/**
 * Scheduler-path cost of the sched_lat, cpu and sched_culprits collectors
 * (issue 12), side by side with bpftrace doing the same work, in one run:
 *
 *   none          no tracing
 *   sched_lat     the sched_lat collector alone
 *   all3          sched_lat + cpu + sched_culprits collectors (loaded and
 *                 pinned by src/views/collectors.ts, as the daemon does on
 *                 the first pin of a view)
 *   bt_sched_lat  `bpftrace bench/sched_lat_bpftrace.bt` (sched_lat's work)
 *   bt_all3       `bpftrace bench/cpu_views_bpftrace.bt` (all three's work,
 *                 per cgroup-pair attribution included)
 *
 * Workloads, each on one CPU (usecs per round trip; every op is two wakeups
 * and two context switches):
 *   pipe        `taskset -c CPU perf bench sched pipe -l LOOPS`: both tasks
 *               in one cgroup (the culprit walk has nothing to charge);
 *   pipe2cg     the same ping-pong (a perl pair over two pipes) with the two
 *               tasks in two cgroups of their own, so that every wait is
 *               behind the other cgroup: a culprit charge per wait.
 * Modes are rotated each round; medians of RUNS runs. Then the per-event
 * cost of every program (kernel.bpf_stats_enabled=1 during one run of each
 * workload, the old value restored): run_time_ns / run_cnt.
 *
 * Run as root, from the repository (linux-perf and bpftrace: scripts/setup-bench.sh):
 *   node dist/bench/cpu_views.js [--rounds 3] [--runs 5] [--loops 200000] [--cpu 1]
 * bpftrace needs tracefs: mounted at /sys/kernel/tracing for the run if it
 * is not (and unmounted after).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeLogger } from '../src/daemon/log.js';
import { bpfBuildDir } from '../src/kernel/features.js';
import { Collectors } from '../src/views/collectors.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const TRACEFS = '/sys/kernel/tracing';
const STATS = '/proc/sys/kernel/bpf_stats_enabled';
const CGROUP2 = (() => {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    if (dash > 0 && f[dash + 1] === 'cgroup2' && f[3] === '/') return f[4]!;
  }
  throw new Error('no cgroup2 mount');
})();

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} wants a non-negative integer`);
  return v;
}
const ROUNDS = opt('rounds', 3);
const RUNS = opt('runs', 5);
const LOOPS = opt('loops', 200000);
const CPU = opt('cpu', 1);

// --- things to undo --------------------------------------------------------------------

const tag = `cgvb-cpuviews-${process.pid}`;
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
  /** Per program: [run_cnt, run_time_ns] so far. */
  progStats(): Map<string, { cnt: number; ns: number }>;
}

function collectorMode(name: string, instances: string[]): Mode {
  const priv = `/sys/fs/bpf/${tag}-${name}-private`;
  let c: Collectors | null = null;
  const stop = () => {
    if (!c) return;
    for (const i of instances) c.stop(i);
    c.close();
    c = null;
    fs.rmSync(priv, { recursive: true, force: true });
  };
  undo.push(stop);
  return {
    name,
    async start() {
      c = new Collectors(priv, bpfBuildDir(), log);
      for (const i of instances) c.acquire(i);
    },
    async stop() {
      stop();
    },
    progStats() {
      const out = new Map<string, { cnt: number; ns: number }>();
      for (const [inst, st] of Object.entries(c!.status()))
        for (const [p, v] of Object.entries(
          (st as { programs: Record<string, { runCnt: number; runTimeNs: number }> }).programs,
        ))
          out.set(`${inst.split('@')[0]}/${p}`, { cnt: v.runCnt, ns: v.runTimeNs });
      return out;
    },
  };
}

interface ProgRow {
  id: number;
  name: string;
  run_cnt?: number;
  run_time_ns?: number;
}

/** Programs a process holds (prog_id in the fdinfo of its bpf-prog descriptors), asked one id at a time. */
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
  return [...ids].map(
    (id) =>
      JSON.parse(
        execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' }),
      ) as ProgRow,
  );
}

function bpftraceMode(name: string, script: string): Mode {
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
    name,
    async start() {
      // Its maps are printed at exit: thrown away.
      const p = spawn('bpftrace', [path.join(REPO, script)], { stdio: ['ignore', 'pipe', 'pipe'] });
      bt = p;
      let out = '';
      const keep = (s: string) => {
        if (out.length < 4096) out += s;
      };
      p.stdout!.setEncoding('utf8').on('data', keep);
      p.stderr!.setEncoding('utf8').on('data', keep);
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

const none: Mode = { name: 'none', async start() {}, async stop() {}, progStats: () => new Map() };

// --- workloads ---------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Workload {
  name: string;
  command: string;
  /** usecs per op: CPU time of the workload's tasks (perf stat task-clock), and wall time. */
  once(): { cpu: number; wall: number };
}

/**
 * Runs `argv` under `perf stat -e task-clock` (counted in every task it
 * starts): the CPU time its tasks used, per op. On a machine that other
 * load shares, the wall time also counts the time others ran on the CPU;
 * the task-clock does not. The tracing programs run in the benchmark's tasks
 * (at their switches and wakeups), so their cost is in it.
 */
function perfStat(argv: string[], parse: (out: string) => number): { cpu: number; wall: number } {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', '--', ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const m = /^([0-9.]+),msec,task-clock/m.exec(r.stderr);
  if (!m) throw new Error(`no task-clock in perf stat's output:\n${r.stderr}`);
  return { cpu: (Number(m[1]) * 1000) / LOOPS, wall: parse(`${r.stdout}${r.stderr}`) };
}

const pipe: Workload = {
  name: 'pipe',
  command: `taskset -c ${CPU} perf bench sched pipe -l ${LOOPS}`,
  once() {
    return perfStat(
      ['taskset', '-c', String(CPU), 'perf', 'bench', 'sched', 'pipe', '-l', String(LOOPS)],
      (out) => {
        const m = /([0-9.]+) usecs\/op/.exec(out);
        if (!m) throw new Error(`no usecs/op in perf output:\n${out}`);
        return Number(m[1]);
      },
    );
  },
};

// Parent in cgroup A, child in cgroup B; LOOPS round trips of one byte; prints usecs per round trip.
const PINGPONG = `
use Time::HiRes qw(time);
my ($a, $b, $n) = @ARGV;
sub join_cg { open(my $f, '>', "$_[0]/cgroup.procs") or die "$_[0]: $!"; print $f "$$\\n"; close($f) or die "$_[0]: $!"; }
pipe(my $r1, my $w1) or die; pipe(my $r2, my $w2) or die;
my $pid = fork() // die;
if ($pid == 0) {
  join_cg($b); close($w1); close($r2); my $x;
  for (1..$n) { sysread($r1, $x, 1) == 1 or die; syswrite($w2, 'x', 1) == 1 or die; }
  exit 0;
}
join_cg($a); close($r1); close($w2); my $x;
syswrite($w1, 'x', 1); sysread($r2, $x, 1);
my $t0 = time;
for (2..$n) { syswrite($w1, 'x', 1) == 1 or die; sysread($r2, $x, 1) == 1 or die; }
my $t1 = time;
waitpid($pid, 0);
printf("%.3f usecs/op\\n", ($t1 - $t0) * 1e6 / ($n - 1));
`;

function pipe2cg(): Workload {
  const a = path.join(CGROUP2, `${tag}-a`);
  const b = path.join(CGROUP2, `${tag}-b`);
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  undo.push(() => {
    for (const d of [a, b]) fs.rmdirSync(d);
  });
  return {
    name: 'pipe2cg',
    command: `taskset -c ${CPU} perl (ping-pong, the two tasks in two cgroups) ${LOOPS}`,
    once() {
      return perfStat(['taskset', '-c', String(CPU), 'perl', '-e', PINGPONG, a, b, String(LOOPS)], (out) => {
        const m = /([0-9.]+) usecs\/op/.exec(out);
        if (!m) throw new Error(`no usecs/op in the ping-pong's output:\n${out}`);
        return Number(m[1]);
      });
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function fmt(x: number, d = 3): string {
  return x.toFixed(d);
}

function tracefsMounted(): boolean {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === TRACEFS && l.split(' ')[2] === 'tracefs');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  if (!tracefsMounted()) {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS]);
    undo.push(() => execFileSync('umount', [TRACEFS]));
    console.log(`mounted tracefs at ${TRACEFS} for bpftrace (unmounted at the end)`);
  }
  const modes: Mode[] = [
    none,
    collectorMode('sched_lat', ['sched_lat@0']),
    collectorMode('all3', ['sched_lat@0', 'cpu@0', 'sched_culprits@0']),
    bpftraceMode('bt_sched_lat', 'bench/sched_lat_bpftrace.bt'),
    bpftraceMode('bt_all3', 'bench/cpu_views_bpftrace.bt'),
  ];
  const workloads = [pipe, pipe2cg()];
  const load0 = os.loadavg()[0]!;
  console.log(`${ROUNDS} rounds x ${RUNS} runs per mode and workload, modes rotated each round`);
  for (const w of workloads) console.log(`  ${w.name}: ${w.command}`);

  // usecs/op per workload, mode and round: CPU time (task-clock) and wall time.
  const res = new Map<string, number[][]>();
  const resWall = new Map<string, number[][]>();
  for (let r = 0; r < ROUNDS; r++) {
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    for (const m of order) {
      await m.start();
      try {
        for (const w of workloads) {
          w.once(); // warm-up, not counted
          const xs: number[] = [];
          const ws: number[] = [];
          for (let i = 0; i < RUNS; i++) {
            const v = w.once();
            xs.push(v.cpu);
            ws.push(v.wall);
          }
          const k = `${w.name}\0${m.name}`;
          if (!res.has(k)) res.set(k, []);
          if (!resWall.has(k)) resWall.set(k, []);
          res.get(k)!.push(xs);
          resWall.get(k)!.push(ws);
          console.log(
            `round ${r + 1} ${w.name.padEnd(8)} ${m.name.padEnd(13)} cpu median ${fmt(median(xs))}, wall median ${fmt(median(ws))}`,
          );
        }
      } finally {
        await m.stop();
      }
    }
  }

  // Per-event cost: bpf_stats_enabled only while one run of each workload is measured.
  const perEvent = new Map<string, Map<string, { cnt: number; ns: number }>>();
  const old = fs.readFileSync(STATS, 'utf8').trim();
  for (const w of workloads)
    for (const m of modes.filter((x) => x !== none)) {
      await m.start();
      try {
        const before = m.progStats();
        fs.writeFileSync(STATS, '1');
        try {
          w.once();
        } finally {
          fs.writeFileSync(STATS, old);
        }
        const after = m.progStats();
        const d = new Map<string, { cnt: number; ns: number }>();
        for (const [p, v] of after) {
          const b = before.get(p) ?? { cnt: 0, ns: 0 };
          d.set(p, { cnt: v.cnt - b.cnt, ns: v.ns - b.ns });
        }
        perEvent.set(`${w.name}\0${m.name}`, d);
      } finally {
        await m.stop();
      }
    }
  const load1 = os.loadavg()[0]!;

  // --- report ---
  const lines: string[] = [];
  for (const w of workloads) {
    lines.push(
      `${w.name}: \`${w.command}\`, CPU usecs/op (task-clock of the workload's tasks; wall usecs/op in the last column)`,
      '',
    );
    const head = [
      'mode',
      ...Array.from({ length: ROUNDS }, (_, r) => `round ${r + 1}`),
      'all runs',
      'added',
      'wall, all runs',
    ];
    lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
    const base = res.get(`${w.name}\0none`)!;
    const baseAll = median(base.flat());
    const added = new Map<string, number>();
    const perRound = new Map<string, number[]>();
    for (const m of modes) {
      const rounds = res.get(`${w.name}\0${m.name}`)!;
      const all = median(rounds.flat());
      added.set(m.name, all - baseAll);
      perRound.set(
        m.name,
        rounds.map((xs, r) => median(xs) - median(base[r]!)),
      );
      lines.push(
        `| ${m.name} | ${rounds.map((xs) => fmt(median(xs))).join(' | ')} | ${fmt(all)} | ${m === none ? '—' : `+${fmt(all - baseAll)}`} | ${fmt(median(resWall.get(`${w.name}\0${m.name}`)!.flat()))} |`,
      );
    }
    const ratio = (a: string, b: string) => {
      const r = added.get(a)! / added.get(b)!;
      const pr = perRound.get(a)!.map((x, i) => fmt(x / perRound.get(b)![i]!, 2));
      return `**${fmt(r, 2)}** (per round: ${pr.join(', ')})`;
    };
    lines.push(
      '',
      `added, cgview / bpftrace: sched_lat ${ratio('sched_lat', 'bt_sched_lat')}; all three ${ratio('all3', 'bt_all3')}; goal for all three < 0.5: ${
        added.get('all3')! / added.get('bt_all3')! < 0.5 ? 'met' : 'NOT met'
      }`,
      '',
    );
  }
  // In-kernel BPF time per op: every program's run time during the measured run, over the ops.
  // Load on the machine hardly moves it (unlike usecs/op); it leaves out what is not a program's
  // run time (the tracepoint's dispatch, for bpftrace also the trace record it fills).
  lines.push('BPF run time per op (all programs, ns; during one run of LOOPS ops):', '');
  lines.push(
    '| workload | sched_lat | all3 | bt_sched_lat | bt_all3 | sched_lat / bt | all3 / bt |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const w of workloads) {
    const per = (m: string) =>
      [...(perEvent.get(`${w.name}\0${m}`) ?? new Map()).values()].reduce((a, v) => a + v.ns, 0) / LOOPS;
    const [sl, a3, bsl, ba3] = ['sched_lat', 'all3', 'bt_sched_lat', 'bt_all3'].map(per) as [
      number,
      number,
      number,
      number,
    ];
    lines.push(
      `| ${w.name} | ${fmt(sl, 0)} | ${fmt(a3, 0)} | ${fmt(bsl, 0)} | ${fmt(ba3, 0)} | ${fmt(sl / bsl, 2)} | ${fmt(a3 / ba3, 2)} |`,
    );
  }
  lines.push('');
  lines.push('Per event (kernel.bpf_stats_enabled=1 during one run; run_time_ns / run_cnt):', '');
  lines.push('| workload | mode | program | run_cnt | ns/event |', '|---|---|---|---:|---:|');
  for (const [k, progs] of perEvent) {
    const [w, m] = k.split('\0');
    for (const [p, v] of [...progs].sort((a, b) => b[1].cnt - a[1].cnt))
      if (v.cnt > 0) lines.push(`| ${w} | ${m} | ${p} | ${v.cnt} | ${fmt(v.ns / v.cnt, 1)} |`);
  }
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
