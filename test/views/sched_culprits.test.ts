/**
 * The `sched_culprits` view on the real kernel (issue 12, docs/cpu-views.md),
 * driven through `cgview daemon` and `cgview pin`, beside `sched_lat` pinned
 * on the same cgroups:
 *
 *   1. the constructed ground truth: on one CPU, a victim cgroup with one
 *      CPU-bound task, culprit A with two, culprit B with one. Round robin of
 *      equal tasks: of the victim's wait behind A and B, A's share is 2/3 and
 *      B's 1/3 (each within 5 points); the sum over all culprit lines equals
 *      the victim's queue_other (sched_lat) within 2%;
 *   2. bounded memory: behind ten culprit cgroups, at most SC_TOPK (8) lines,
 *      the rest in culprit_rest_ns_total, the sum still queue_other;
 *   3. a new heavy culprit takes the slot of the lightest one; every line
 *      printed before only grows (the evicted one's time moves to rest);
 *   4. `cgview cat` shows each culprit's cgroup path (by cgroup, by view
 *      file, --json);
 *   5. cgroup v1 (a tree on the cpu hierarchy, where each cgroup is a task
 *      group: A and B get equal time whatever their number of tasks):
 *      victim, A and B with one task each: A 1/2, B 1/2; sum = queue_other;
 *   6. unpinning the view stops its collector (links and maps unpinned),
 *      sched_lat's stays.
 *
 * Tasks are pinned to CPU 0. Foreign load on that CPU (other tests) adds
 * culprits of its own: shares are compared between the test's cgroups, and
 * the sum includes every culprit line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cgroupMountOf } from '../../src/cli/culprits.js';
import { classifyView } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { Daemon, type DaemonEnv, daemonEnv, liveDaemonLogs } from '../daemon.js';
import { CGROUP_V1_CPU, inode, onCleanup, removeTree, waitFor } from '../helpers.js';
import { delta, kill, pct, privateDirOf, readCounters, runFor, spinners, within } from './cpu_tasks.js';

const CPU = 0;
const TOPK = 8;

let env: DaemonEnv;
let d: Daemon;

async function mkCgroup(rel: string): Promise<string> {
  const cg = path.join(env.cgroupRoot, rel);
  fs.mkdirSync(cg);
  for (const v of ['sched_lat', 'sched_culprits']) {
    const file = path.join(env.bpffs, rel, v);
    try {
      await waitFor(() => fs.existsSync(file), 5000, file);
    } catch (e) {
      (e as Error).message += `\n${liveDaemonLogs()}`;
      throw e;
    }
  }
  return cg;
}

interface Reading {
  text: string;
  culprits: Map<string, bigint>;
  queueOther: bigint;
}

function read(rel: string): Reading {
  const text = fs.readFileSync(path.join(env.bpffs, rel, 'sched_culprits'), 'latin1');
  const c = readCounters(path.join(env.bpffs, rel, 'sched_culprits'));
  const sl = readCounters(path.join(env.bpffs, rel, 'sched_lat'));
  c.delete('cgroup_id');
  return { text, culprits: c, queueOther: sl.get('queue_other_ns_total')! };
}

const mountOf = (c: string) => cgroupMountOf(path.join(env.cgroupRoot, c))!;
const key = (cg: string) => `culprit_${inode(cg)}_ns_total`;
const sum = (m: Map<string, bigint>) => [...m.values()].reduce((a, b) => a + b, 0n);

/** The printed order: culprit lines by time, largest first, then culprit_rest_ns_total last. */
function checkFormat(r: Reading): void {
  const lines = r.text.split('\n').slice(0, -1);
  assert.match(lines[0]!, /^cgroup_id: \d+$/);
  assert.match(lines[lines.length - 1]!, /^culprit_rest_ns_total: \d+$/);
  const mid = lines.slice(1, -1);
  assert.ok(mid.length <= TOPK, `at most ${TOPK} culprit lines:\n${r.text}`);
  let prev: bigint | null = null;
  for (const l of mid) {
    const m = /^culprit_(\d+)_ns_total: (\d+)$/.exec(l);
    assert.ok(m, `a culprit line: ${l}`);
    const v = BigInt(m[2]!);
    assert.ok(prev === null || v <= prev, `sorted by time, largest first:\n${r.text}`);
    prev = v;
  }
}

describe('the sched_culprits view on the real kernel', { concurrency: false }, () => {
  it('setup: a daemon, sched_lat and sched_culprits pinned --inherit', async () => {
    env = daemonEnv();
    onCleanup(() => removeTree(privateDirOf(env.bpffs)));
    d = await Daemon.start(env);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await d.ok(['pin', 'sched_culprits', env.bpffs, '--inherit']);
    const st = (await d.status()) as unknown as { collectors: Record<string, { running: boolean }> };
    assert.equal(st.collectors['sched_culprits@0']?.running, true);
    checkFormat(read(''));
  });

  it('1. victim (1 task) behind A (2 tasks) and B (1 task) on one CPU: A 2/3, B 1/3; sum = queue_other', async (t) => {
    const v = await mkCgroup('victim');
    const a = await mkCgroup('a');
    const b = await mkCgroup('b');
    const pv = await spinners(v, 1, CPU);
    const pa = await spinners(a, 2, CPU);
    const pb = await spinners(b, 1, CPU);
    const r0 = read('victim');
    await runFor([...pv, ...pa, ...pb], 3000);
    const r1 = read('victim');
    kill([...pv, ...pa, ...pb]);
    checkFormat(r1);
    const dc = delta(r0.culprits, r1.culprits);
    const da = dc.get(key(a)) ?? 0n;
    const db = dc.get(key(b)) ?? 0n;
    const all = sum(dc);
    const qo = r1.queueOther - r0.queueOther;
    const shareA = Number(da) / Number(da + db);
    const info = `A ${da} B ${db} (A share ${(100 * shareA).toFixed(2)}%), all culprit lines ${all}, queue_other ${qo} (${pct(all, qo)})\n${r1.text}`;
    t.diagnostic(info);
    assert.ok(da + db > 300_000_000n, `the victim hardly waited behind A and B: ${info}`);
    assert.ok(Math.abs(shareA - 2 / 3) <= 0.05, `A's share should be 2/3 within 5 points: ${info}`);
    assert.ok(within(all, qo, 2), `the culprits' sum should equal queue_other within 2%: ${info}`);
    assert.ok(!r1.culprits.has(key(v)), 'the victim is never its own culprit');
  });

  it(`2. behind ten culprit cgroups: at most ${TOPK} lines, the rest in culprit_rest_ns_total`, async (t) => {
    const v = await mkCgroup('v10');
    const cs: string[] = [];
    for (let i = 0; i < 10; i++) cs.push(await mkCgroup(`c10_${i}`));
    const pv = await spinners(v, 1, CPU);
    const pc: number[] = [];
    for (const c of cs) pc.push(...(await spinners(c, 1, CPU)));
    const r0 = read('v10');
    await runFor([...pv, ...pc], 3000);
    const r1 = read('v10');
    kill([...pv, ...pc]);
    checkFormat(r1);
    const dc = delta(r0.culprits, r1.culprits);
    const all = sum(dc);
    const qo = r1.queueOther - r0.queueOther;
    const ours = cs.filter((c) => r1.culprits.has(key(c))).length;
    const info = `${ours} of the 10 have a line, rest ${dc.get('culprit_rest_ns_total')}, all ${all}, queue_other ${qo} (${pct(all, qo)})\n${r1.text}`;
    t.diagnostic(info);
    assert.ok(ours <= TOPK, info);
    assert.ok((dc.get('culprit_rest_ns_total') ?? 0n) > 0n, `time behind the others is in rest: ${info}`);
    assert.ok(within(all, qo, 2), `the sum of all lines should equal queue_other within 2%: ${info}`);
  });

  it('3. a new heavy culprit takes the lightest slot; printed lines only grow', async (t) => {
    const v = await mkCgroup('vk');
    const light: string[] = [];
    for (let i = 0; i < TOPK; i++) light.push(await mkCgroup(`light_${i}`));
    const heavy = await mkCgroup('heavy');
    const pv = await spinners(v, 1, CPU);
    const pl: number[] = [];
    for (const c of light) pl.push(...(await spinners(c, 1, CPU)));
    // Phase 1: the table fills up with light culprits (and whatever else ran on the CPU).
    await runFor([...pv, ...pl], 1000);
    kill(pl);
    const r0 = read('vk');
    assert.equal(r0.text.split('\n').length - 3, TOPK, `the table is full:\n${r0.text}`);
    const ph = await spinners(heavy, 2, CPU);
    // Phase 2: only the heavy culprit runs beside the victim.
    await runFor([...pv, ...ph], 2000);
    const r1 = read('vk');
    kill([...pv, ...ph]);
    checkFormat(r1);
    t.diagnostic(`before:\n${r0.text}after:\n${r1.text}`);
    assert.ok(r1.culprits.has(key(heavy)), `the heavy culprit has a line:\n${r1.text}`);
    // Ahead of every light one (foreign load, e.g. the root cgroup's tasks, may be ahead of it).
    const lines = r1.text.split('\n');
    const at = (c: string) => lines.findIndex((l) => l.startsWith(`${key(c)}:`));
    for (const c of light) if (at(c) >= 0) assert.ok(at(heavy) < at(c), `heavy printed before ${key(c)}`);
    for (const [k, x] of r0.culprits) {
      const y = r1.culprits.get(k);
      if (y !== undefined) assert.ok(y >= x, `${k} went down: ${x} -> ${y}`);
    }
    const evicted = [...r0.culprits.keys()].filter((k) => !r1.culprits.has(k));
    assert.ok(evicted.length >= 1, 'an entry was evicted');
    const rest0 = r0.culprits.get('culprit_rest_ns_total')!;
    const rest1 = r1.culprits.get('culprit_rest_ns_total')!;
    const moved = evicted.reduce((s, k) => s + r0.culprits.get(k)!, 0n);
    assert.ok(rest1 >= rest0 + moved, `rest took the evicted time: ${rest0} + ${moved} <= ${rest1}`);
  });

  it("4. cgview cat shows the culprit's path", async () => {
    const v = path.join(env.cgroupRoot, 'victim');
    const rel = (c: string) => `/${path.relative(mountOf(c), path.join(env.cgroupRoot, c))}`;
    const check = (text: string, what: string) => {
      for (const c of ['a', 'b']) {
        const line = text.split('\n').find((l) => l.startsWith(`${key(path.join(env.cgroupRoot, c))}:`));
        assert.ok(line, `${what}: a line for ${c}:\n${text}`);
        assert.match(
          line,
          new RegExp(`^culprit_\\d+_ns_total: \\d+  \\(${rel(c)}\\)$`),
          `${what}: ${c}'s path`,
        );
      }
      assert.match(text, /^culprit_rest_ns_total: \d+$/m, `${what}: rest has no path`);
    };
    check(await d.ok(['cat', v, 'sched_culprits']), 'cat CGROUP VIEW');
    check(await d.ok(['cat', path.join(env.bpffs, 'victim', 'sched_culprits')]), 'cat FILE');
    const j = JSON.parse(await d.ok(['cat', v, 'sched_culprits', '--json'])) as Record<
      string,
      Record<string, string>
    >;
    const o = Object.values(j)[0]!;
    assert.equal(
      o[`culprit_${inode(path.join(env.cgroupRoot, 'a'))}_path`],
      rel('a'),
      '--json: culprit_<id>_path',
    );
    assert.match(o[key(path.join(env.cgroupRoot, 'a'))]!, /^\d+$/, '--json: the counter as printed');
  });

  it('5. cgroup v1 (the cpu hierarchy): victim behind A and B (one task each): 1/2 each; sum = queue_other', async (t) => {
    if (!fs.existsSync(path.join(CGROUP_V1_CPU, 'cgroup.procs'))) {
      t.skip(`no v1 cpu hierarchy at ${CGROUP_V1_CPU}`);
      return;
    }
    const e = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    onCleanup(() => removeTree(privateDirOf(e.bpffs)));
    const dm = await Daemon.start(e);
    const saved = env;
    env = e;
    try {
      await dm.ok(['pin', 'sched_lat', e.bpffs, '--inherit']);
      await dm.ok(['pin', 'sched_culprits', e.bpffs, '--inherit']);
      const v = await mkCgroup('victim');
      const a = await mkCgroup('a');
      const b = await mkCgroup('b');
      const pids = [
        ...(await spinners(v, 1, CPU)),
        ...(await spinners(a, 1, CPU)),
        ...(await spinners(b, 1, CPU)),
      ];
      const r0 = read('victim');
      await runFor(pids, 3000);
      const r1 = read('victim');
      kill(pids);
      checkFormat(r1);
      const dc = delta(r0.culprits, r1.culprits);
      const da = dc.get(key(a)) ?? 0n;
      const db = dc.get(key(b)) ?? 0n;
      const all = sum(dc);
      const qo = r1.queueOther - r0.queueOther;
      const shareA = Number(da) / Number(da + db);
      const info = `A ${da} B ${db} (A share ${(100 * shareA).toFixed(2)}%), all ${all}, queue_other ${qo} (${pct(all, qo)})\n${r1.text}`;
      t.diagnostic(info);
      assert.ok(da + db > 300_000_000n, `the victim hardly waited behind A and B: ${info}`);
      assert.ok(Math.abs(shareA - 1 / 2) <= 0.05, `A's share should be 1/2 within 5 points: ${info}`);
      assert.ok(within(all, qo, 2), `the culprits' sum should equal queue_other within 2%: ${info}`);
    } finally {
      env = saved;
      await dm.stop();
    }
  });

  it('key conventions: every line is the counter culprit_seconds_total, labelled with the culprit (or rest)', () => {
    const text = fs.readFileSync(path.join(env.bpffs, 'victim', 'sched_culprits'), 'latin1');
    const v = classifyView(parseViewOutput(text));
    assert.equal(v.id, String(inode(path.join(env.cgroupRoot, 'victim'))));
    const ids = [...text.matchAll(/^culprit_(\d+|rest)_ns_total: (\d+)$/gm)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
    assert.ok(ids.length >= 3, text);
    assert.deepEqual(
      v.metrics.map((m) => [m.name, m.kind, m.scale, m.labels?.['culprit'], m.value]),
      ids.map(([id, n]) => ['culprit_seconds_total', 'counter', 1e-9, id, n]),
    );
  });

  it("6. the last sched_culprits pin goes: its collector stops, sched_lat's stays", async () => {
    const dir = path.join(privateDirOf(env.bpffs), 'sched_culprits@0');
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      [
        'link_sc_migrate',
        'link_sc_rmdir',
        'link_sc_switch',
        'link_sc_wakeup',
        'link_sc_wakeup_new',
        'sc_cg_v1',
        'sc_cgrp',
        'sc_cpu',
        'sc_task',
      ],
      'pins of the running collector',
    );
    await d.ok(['unpin', path.join(env.bpffs, 'sched_culprits')]);
    assert.ok(!fs.existsSync(dir), `${dir} is gone`);
    const st = (await d.status()) as unknown as { collectors: Record<string, unknown> };
    assert.deepEqual(Object.keys(st.collectors), ['sched_lat@0']);
    assert.ok(
      !fs.existsSync(path.join(env.bpffs, 'victim', 'sched_culprits')),
      'the inherited pins went with it',
    );
  });
});
