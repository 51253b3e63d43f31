/**
 * `cgview top --batch` and `--json` against known workloads (issue 10): a
 * cgroup with three CPU-bound tasks pinned to one CPU and one with a single
 * task on the other CPU. Every figure is checked against the kernel's own
 * accounting of those tasks over the same run (/proc/PID/schedstat); the
 * host may be busy with other work, so the expected values are computed
 * from that ground truth, not assumed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cgview, type Daemon, type DaemonEnv } from '../daemon.js';
import { CGROUP2, sleep } from '../helpers.js';
import { child, rates, type SchedStat, schedstat, schedTree, shownPath, spinners } from './workload.js';

interface JRow {
  path: string;
  tasks: number | null;
  threads: number | null;
  cpu_pct: number | null;
  sched: {
    wait_per_second: number;
    waits_per_second: number;
    p50_ns: number | null;
    p99_ns: number | null;
    self_pct: number | null;
    histogram: { bounds_ns: number[]; cumulative: number[]; count: number } | null;
  } | null;
  unreadable: Array<{ file: string; error: string }>;
}
interface JFrame {
  time: string;
  interval_seconds: number;
  cgroups: JRow[];
}

let env: DaemonEnv;
let d: Daemon;
let busy: number[];
let solo: number[];
let busyPath: string;
let soloPath: string;
let idlePath: string;

before(async () => {
  ({ env, d } = await schedTree());
  const b = await child(env, 'busy');
  const s = await child(env, 'solo');
  const i = await child(env, 'idle.slice');
  busyPath = shownPath(CGROUP2, b);
  soloPath = shownPath(CGROUP2, s);
  idlePath = shownPath(CGROUP2, i);
  busy = spinners(b, 3, 1);
  solo = spinners(s, 1, 0);
  await sleep(300);
});

after(async () => {
  await d?.stop();
});

/** Runs top as JSON over the tree's cgroup, with the kernel's accounting of the tasks around it. */
async function topJson(
  args: string[],
): Promise<{ frames: JFrame[]; b: ReturnType<typeof rates>; s: ReturnType<typeof rates> }> {
  const b0: SchedStat = schedstat(busy);
  const s0: SchedStat = schedstat(solo);
  const r = await d.cli(['top', env.cgroupRoot, '--json', ...args], { timeoutMs: 30000 });
  const b1 = schedstat(busy);
  const s1 = schedstat(solo);
  assert.equal(r.code, 0, r.stderr);
  const frames = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JFrame);
  return { frames, b: rates(b0, b1), s: rates(s0, s1) };
}

const cgviewAt = (socket: string) => cgview(['top', '--batch', '--iterations', '1', '--socket', socket]);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const near = (got: number, want: number, abs: number, rel: number, what: string) =>
  assert.ok(
    Math.abs(got - want) <= abs + rel * Math.abs(want),
    `${what}: ${got.toFixed(3)}, expected ${want.toFixed(3)} ± ${abs} + ${rel * 100}%`,
  );

describe('top --json --iterations 3 --delay 1', () => {
  it('the busy cgroup ranks first by wait/s (about 2 tasks waiting, self % as the kernel says); the solo one waits little and uses one CPU', async () => {
    const { frames, b, s } = await topJson(['--iterations', '3', '--delay', '1']);
    assert.equal(frames.length, 3);
    for (const f of frames) {
      assert.ok(f.interval_seconds > 0.9 && f.interval_seconds < 2, `interval ${f.interval_seconds}`);
      assert.equal(
        f.cgroups[0]!.path,
        busyPath,
        `first by wait/s: ${f.cgroups.map((c) => c.path).join(' ')}`,
      );
      assert.deepEqual(
        new Set(f.cgroups.map((c) => c.path)),
        new Set([shownPath(CGROUP2, env.cgroupRoot), busyPath, soloPath, idlePath]),
      );
    }
    const row = (f: JFrame, p: string) => f.cgroups.find((c) => c.path === p)!;
    const B = frames.map((f) => row(f, busyPath));
    const S = frames.map((f) => row(f, soloPath));
    for (const r of [...B, ...S]) {
      assert.ok(r.sched, 'sched figures');
      assert.deepEqual(r.unreadable, []);
    }
    assert.deepEqual(
      B.map((r) => [r.tasks, r.threads]),
      [
        [3, 3],
        [3, 3],
        [3, 3],
      ],
    );
    assert.deepEqual(
      S.map((r) => [r.tasks, r.threads]),
      [
        [1, 1],
        [1, 1],
        [1, 1],
      ],
    );

    // Three loops on one CPU: at least two wait at any time (three while another task runs there).
    const bw = mean(B.map((r) => r.sched!.wait_per_second));
    near(bw, b.wait, 0.15, 0.15, 'busy wait/s vs run_delay');
    assert.ok(bw > 1.8, `busy wait/s ${bw}`);
    // Waits end when a task is switched in: timeslices begun per second.
    near(mean(B.map((r) => r.sched!.waits_per_second)), b.waits, 5, 0.25, 'busy waits/s vs timeslices');
    // Behind whom: while our loops run (share f of the CPU) two wait behind their own cgroup; otherwise three behind others.
    const f = Math.min(1, b.cpu);
    const self = (100 * 2 * f) / (2 * f + 3 * (1 - f));
    near(mean(B.map((r) => r.sched!.self_pct!)), self, 12, 0, 'busy self %');
    near(mean(B.map((r) => r.cpu_pct!)), 100 * b.cpu, 8, 0.1, 'busy CPU %');
    // The mean wait (run_delay / timeslices) lies within the interval's percentiles' reach (power-of-two buckets).
    const meanWait = ((b.wait * b.seconds) / (b.waits * b.seconds)) * 1e9;
    for (const [i, r] of B.entries()) {
      assert.ok(r.sched!.p50_ns! <= r.sched!.p99_ns!, 'p50 <= p99');
      assert.ok(
        r.sched!.p99_ns! >= meanWait / 4 && r.sched!.p50_ns! <= meanWait * 4,
        `p50 ${r.sched!.p50_ns} p99 ${r.sched!.p99_ns} mean ${meanWait}`,
      );
      // The interval's histogram holds the interval's waits.
      const h = r.sched!.histogram!;
      assert.ok(
        Math.abs(h.count - r.sched!.waits_per_second * frames[i]!.interval_seconds) < 1e-6 * h.count + 1e-9,
      );
      assert.ok(h.cumulative.every((c, j) => c <= h.count && (j === 0 || c >= h.cumulative[j - 1]!)));
    }

    // One loop alone on the other CPU: it waits only for what else runs there, and uses it whole otherwise.
    near(mean(S.map((r) => r.sched!.wait_per_second)), s.wait, 0.1, 0.25, 'solo wait/s vs run_delay');
    near(mean(S.map((r) => r.cpu_pct!)), 100 * s.cpu, 8, 0.1, 'solo CPU %');
    assert.ok(mean(S.map((r) => r.sched!.wait_per_second)) < bw / 2);
    // The idle cgroup: nothing at all.
    for (const fr of frames) {
      const i = row(fr, idlePath);
      assert.deepEqual(
        [i.tasks, i.cpu_pct, i.sched!.wait_per_second, i.sched!.waits_per_second, i.sched!.p50_ns],
        [0, 0, 0, 0, null],
      );
    }
  });

  it('--batch prints one plain table per interval, the busy cgroup first, real names, no escape codes', async () => {
    const r = await d.cli(['top', env.cgroupRoot, '--batch', '--iterations', '2', '--delay', '0.5'], {
      timeoutMs: 30000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /\x1b/);
    const tables = r.stdout.trimEnd().split('\n\n');
    assert.equal(tables.length, 2);
    for (const t of tables) {
      const lines = t.split('\n');
      assert.match(lines[0]!, /^cgview top .* interval 0\.\d\ds {2}4 cgroups {2}sort wait$/);
      assert.match(lines[1]!, /^CGROUP +TASKS +THR +CPU%\*WAIT\/s WAITS\/s +P50 +P99 SELF%/);
      assert.ok(lines[2]!.startsWith(`${busyPath} `), lines[2]);
      const cells = lines[2]!.slice(busyPath.length).trim().split(/ +/);
      assert.deepEqual(cells.slice(0, 2), ['3', '3']);
      assert.ok(Number(cells[3]) > 1.5, `wait/s ${cells[3]}`);
      assert.ok(
        lines.some((l) => l.startsWith(`${idlePath} `)),
        'idle.slice shown with its dot',
      );
    }
  });

  it('--sort path and the daemon stopped: top reads the files itself', async () => {
    await d.stop();
    const { frames, b } = await topJson(['--iterations', '1', '--delay', '1', '--sort', 'path']);
    assert.deepEqual(
      frames[0]!.cgroups.map((c) => c.path),
      [shownPath(CGROUP2, env.cgroupRoot), busyPath, idlePath, soloPath],
    );
    const r = frames[0]!.cgroups.find((c) => c.path === busyPath)!;
    near(r.sched!.wait_per_second, b.wait, 0.2, 0.2, 'busy wait/s with the daemon stopped');
  });

  it('without an argument and without an index of trees beside the socket: says so and what to do', async () => {
    const r = await d.cli(['top', '--batch', '--iterations', '1'], { env: {} });
    assert.equal(r.code, 0, r.stderr); // the test's index exists: every tree in it
    const none = await cgviewAt('/nonexistent-cgvt/cgview.sock');
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^cgview: no index of trees at \/nonexistent-cgvt\/roots\.json\n {2}hint: the daemon writes it/,
    );
  });

  it('--depth 0 shows only the cgroup named, --depth 1 its children too', async () => {
    for (const [depth, n] of [
      ['0', 1],
      ['1', 4],
    ] as const) {
      const r = await d.cli([
        'top',
        env.cgroupRoot,
        '--json',
        '--iterations',
        '1',
        '--delay',
        '0.2',
        '--depth',
        depth,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as JFrame).cgroups.length, n);
    }
  });

  it('refuses bad options with exit status 2', async () => {
    for (const a of [
      ['--delay', '0'],
      ['--depth', '-1'],
      ['--iterations', 'x'],
      ['--sort', 'nosuch'],
    ]) {
      const r = await d.cli(['top', env.cgroupRoot, '--batch', ...a]);
      assert.equal(r.code, 2, `${a.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(a[0]!));
    }
  });
});
