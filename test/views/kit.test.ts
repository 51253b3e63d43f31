/**
 * The view kit's headers (bpf/include/cgview/) on the real kernel, through
 * their fixture bpf/test_kit.bpf.c: a collector (tp_btf/sched_switch,
 * tp_btf/cgroup_rmdir) and a view (iter/cgroup) in one object that use the
 * whole API (CGV_STORAGE, cgv_task_cgroup, cgv_storage_get/lookup/rmdir,
 * cgv_hist_add, cgv_max, cgv_print_*).
 *
 * Ground truth: CPU-bound tasks (sh busy loops) born stopped in a test
 * cgroup, pinned to one CPU. The fixture is attached while they are stopped,
 * so what it counts is what happens after: each task's switch-outs
 * (voluntary + involuntary context switches in /proc/PID/status) and on-CPU
 * time (/proc/PID/schedstat, first field) grow from that moment. After they
 * ran and were stopped again:
 *   switches_total = sum of the tasks' context-switch deltas (exact),
 *   run_ns_total   = sum of their run-time deltas within 2%,
 *   the histogram holds switches_total runs summing to run_ns_total, its
 *   lines cumulative, run_max_ns between the mean run and the total,
 *   percentiles inside their buckets; and classifyView types every line as
 *   the key conventions say. On cgroup v1 (the cpu hierarchy) the same, with
 *   the entry in the id-keyed hash, removed when the cgroup is.
 *
 * Tasks are killed by pid, cgroups removed after the file, also on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hierarchyIdOf, mountOf } from '../../src/cgroup/hierarchy.js';
import { bpfBuildDir } from '../../src/kernel/features.js';
import { BpfObject, type Link, openDir } from '../../src/kernel/index.js';
import { classifyView } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { CGROUP_V1_CPU, CGROUP2, inode, onCleanup, tmpCgroup, waitFor } from '../helpers.js';

const CPU = 1;
const WAIT_MS = 5000;
const OBJECT = path.join(bpfBuildDir(), 'test_kit.bpf.o');

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
    for (let i = 0; i < 200 && procStat(p) && procStat(p)![0] !== 'Z'; i++) execFileSync('sleep', ['0.01']);
  started.clear();
}

async function stopped(pids: number[]): Promise<void> {
  await waitFor(
    () => pids.every((p) => procStat(p)?.[0] === 'T'),
    WAIT_MS,
    `tasks ${pids.join(' ')} stopped`,
  );
}

/** `n` busy loops born in `cg`, pinned to CPU 1, stopped at once. */
async function spinners(cg: string, n: number): Promise<number[]> {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${CPU} sh -c 'kill -STOP $$; while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const pids = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' })
    .trim()
    .split('\n')
    .map(Number);
  for (const p of pids) started.set(p, procStat(p)![19]!);
  await stopped(pids);
  return pids;
}

/** Context switches (voluntary + involuntary) and on-CPU ns of a task. */
function taskFigures(pid: number): { switches: bigint; runNs: bigint } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const n = (k: string) => BigInt(new RegExp(`^${k}:\\s+(\\d+)$`, 'm').exec(status)![1]!);
  const runNs = BigInt(fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(/\s+/)[0]!);
  return { switches: n('voluntary_ctxt_switches') + n('nonvoluntary_ctxt_switches'), runNs };
}

function sum(pids: number[]): { switches: bigint; runNs: bigint } {
  let switches = 0n;
  let runNs = 0n;
  for (const p of pids) {
    const f = taskFigures(p);
    switches += f.switches;
    runNs += f.runNs;
  }
  return { switches, runNs };
}

/** Loads the fixture for a hierarchy and attaches its collector programs. */
function load(hierarchyId: number): { obj: BpfObject; links: Link[] } {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(hierarchyId);
  const obj = BpfObject.load(OBJECT, { rodata: { v1_hierarchy_id: b } });
  const links: Link[] = [];
  try {
    for (const p of ['kit_switch', 'kit_rmdir']) links.push(obj.program(p).attach());
  } catch (e) {
    for (const l of links) l.close();
    obj.close();
    throw e;
  }
  onCleanup(() => {
    for (const l of links) l.close();
    obj.close();
  });
  return { obj, links };
}

function readView(obj: BpfObject, cg: string): Map<string, string> {
  const dir = openDir(cg);
  let link: Link;
  try {
    link = obj.program('kit_view').cgroupIter({ fd: dir });
  } finally {
    dir.close();
  }
  try {
    return parseViewOutput(link.read().toString('latin1'));
  } finally {
    link.close();
  }
}

const big = (m: Map<string, string>, k: string) => {
  const v = m.get(k);
  assert.ok(v !== undefined && /^\d+$/.test(v), `${k}: ${v}`);
  return BigInt(v);
};

/** Runs the scenario in `cg` and checks the view against the tasks' own figures. */
async function scenario(cg: string, hierarchyId: number): Promise<{ obj: BpfObject }> {
  const pids = await spinners(cg, 2);
  const { obj } = load(hierarchyId);
  const before = sum(pids);
  for (let round = 0; round < 3; round++) {
    for (const p of pids) process.kill(p, 'SIGCONT');
    await new Promise((r) => setTimeout(r, 300));
    for (const p of pids) process.kill(p, 'SIGSTOP');
    await stopped(pids);
  }
  const after = sum(pids);
  const m = readView(obj, cg);
  const switches = big(m, 'switches_total');
  const runNs = big(m, 'run_ns_total');

  assert.equal(m.get('cgroup_id'), String(inode(cg)));
  assert.equal(m.get('name'), path.basename(cg));
  assert.equal(switches, after.switches - before.switches, "switches_total = the tasks' context switches");
  const truth = after.runNs - before.runNs;
  assert.ok(truth > 100_000_000n, `the tasks ran (${truth} ns)`);
  const diff = runNs > truth ? runNs - truth : truth - runNs;
  assert.ok(diff * 50n <= truth, `run_ns_total ${runNs} within 2% of the tasks' run time ${truth}`);

  // The histogram: cumulative lines from 2^10 to 2^39, then _lt_inf = switches.
  let prev = 0n;
  const bounds: bigint[] = [];
  for (const [k, v] of m) {
    const h = /^run_ns_lt_(\d+)$/.exec(k);
    if (!h) continue;
    bounds.push(BigInt(h[1]!));
    assert.ok(BigInt(v) >= prev, `${k} cumulative`);
    prev = BigInt(v);
  }
  assert.deepEqual(
    bounds,
    Array.from({ length: 30 }, (_, i) => 1n << BigInt(i + 10)),
  );
  assert.equal(big(m, 'run_ns_lt_inf'), switches, 'every run is in the histogram');
  const max = big(m, 'run_max_ns');
  assert.ok(max * switches >= runNs && max <= runNs, `run_max_ns ${max} between the mean and the total`);
  for (const [pct, key] of [
    [50n, 'p50_ns'],
    [99n, 'p99_ns'],
  ] as const) {
    const v = big(m, key);
    const rank = (switches * pct + 99n) / 100n;
    const cum = [...m].filter(([k]) => /^run_ns_lt_/.test(k)).map(([k, x]) => [k, BigInt(x)] as const);
    const j = cum.findIndex(([, c]) => c >= rank);
    const hi = j >= 0 && cum[j]![0] !== 'run_ns_lt_inf' ? bounds[j]! : null;
    const lo = j > 0 ? bounds[j - 1]! : 0n;
    assert.ok(v >= lo && (hi === null || v <= hi), `${key} ${v} in [${lo}, ${hi}]`);
  }
  assert.equal(m.get('minus_one'), '-1');

  // The key conventions type every line.
  const s = classifyView(m);
  const by = new Map(s.metrics.map((x) => [x.name + JSON.stringify(x.labels ?? {}), x]));
  assert.equal(by.get('switches_total{}')?.kind, 'counter');
  assert.equal(by.get('run_max_seconds{}')?.kind, 'gauge');
  const h = by.get('run_seconds{}');
  assert.equal(h?.kind, 'histogram');
  assert.equal(h?.hist?.sum, Number(runNs), 'run_ns_total is the histogram sum');
  assert.equal(h?.hist?.count, Number(switches));
  assert.equal(by.get('slot_seen_total{"slot":"3"}')?.value, Number(switches));
  assert.equal(by.get('slot_seen_total{"slot":"rest"}')?.value, 0);
  assert.equal(by.has('run_seconds_total{}'), false, 'the sum is not a series of its own');
  assert.equal(s.text.get('name'), path.basename(cg));
  killAll();
  return { obj };
}

describe('view kit headers (bpf/test_kit.bpf.c)', { concurrency: false }, () => {
  it("cgroup v2: per-cgroup storage, histogram, max and printing against the tasks' own figures", async () => {
    onCleanup(killAll);
    const cg = tmpCgroup(CGROUP2);
    const { obj } = await scenario(cg, 0);
    // A cgroup without an entry prints zeros (the kit's zero template).
    const idle = tmpCgroup(CGROUP2);
    const m = readView(obj, idle);
    assert.equal(m.get('switches_total'), '0');
    assert.equal(m.get('run_ns_lt_inf'), '0');
  });

  it('cgroup v1 (cpu hierarchy): the entry lives in the id-keyed hash and goes at rmdir', async () => {
    onCleanup(killAll);
    const cg = tmpCgroup(CGROUP_V1_CPU);
    const hid = hierarchyIdOf(mountOf(cg));
    const { obj } = await scenario(cg, hid);
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(inode(cg));
    assert.ok(obj.map('kit_store_v1').lookup(key), 'the v1 entry is in the hash');
    fs.rmdirSync(cg);
    await waitFor(() => obj.map('kit_store_v1').lookup(key) === null, WAIT_MS, 'entry removed at rmdir');
  });
});
