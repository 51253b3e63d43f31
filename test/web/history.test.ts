/**
 * The dashboard's history store (src/history/store.ts) on synthetic
 * snapshots: deltas, wrap of the ring, gaps, a cgroup recreated under the
 * same name, the memory budget. Pure, no root.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecordRing } from '../../src/history/ring.js';
import { History, type SeriesHistory } from '../../src/history/store.js';
import type { CgroupSnapLike } from '../../src/history/types.js';
import { classifyView, type ViewSample } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { schedLat } from './fixtures.js';

/** A sched_culprits-like sample: one counter per culprit id. */
function culprits(id: string, byCulprit: Record<string, number>): ViewSample {
  const lines = [`cgroup_id: ${id}`];
  for (const [c, v] of Object.entries(byCulprit)) lines.push(`culprit_${c}_ns_total: ${v}`);
  return classifyView(parseViewOutput(`${lines.join('\n')}\n`));
}

function cg(id: string, path: string, views: Record<string, ViewSample>): CgroupSnapLike {
  return {
    path,
    hierarchy: 'v2',
    id,
    level: path.split('/').length - 1,
    views: new Map(Object.entries(views)),
  };
}

const view = (h: SeriesHistory, v: string) => h.views.find((x) => x.view === v)!;
const counter = (h: SeriesHistory, v: string, key: string) =>
  view(h, v).counters.find((c) => c.key === key)?.values;

describe('RecordRing', () => {
  it('wraps, grows, finds ranges and trims whole samples', () => {
    const r = new RecordRing(4);
    for (let s = 1; s <= 10; s++) {
      r.push(s, 0, s * 10);
      r.push(s, 1, s);
    }
    assert.equal(r.length, 20);
    r.dropBefore(6);
    assert.equal(r.length, 10);
    assert.equal(r.firstSeq(), 6);
    for (let s = 11; s <= 14; s++) r.push(s, 0, s * 10);
    assert.equal(r.lowerBound(11), 10);
    assert.equal(r.seqAt(r.lowerBound(8)), 8);
    assert.equal(r.valAt(r.length - 1), 140);
    // 5 records kept, never half a sample: samples 11..14 (4 records) and none of 10's two.
    const from = r.trimTo(5);
    assert.equal(from, 11);
    assert.equal(r.length, 4);
  });
});

describe('History', () => {
  it('keeps counter deltas and histogram buckets per interval; the first sighting is the baseline', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 10_000 });
    let at = 1_000_000;
    h.ingest({
      at,
      cgroups: [cg('7', '/a', { sched_lat: schedLat('7', { self: 100, other: 0, buckets: [1] }) })],
    });
    at += 1000;
    h.ingest({
      at,
      cgroups: [
        cg('7', '/a', { sched_lat: schedLat('7', { self: 600, other: 300, buckets: [1, 2, 0, 3] }) }),
      ],
    });
    at += 2000;
    h.ingest({
      at,
      cgroups: [
        cg('7', '/a', { sched_lat: schedLat('7', { self: 600, other: 300, buckets: [1, 2, 0, 3] }) }),
      ],
    });
    const s = h.find({ path: '/a' })!;
    const q = h.query(s);
    assert.deepEqual(q.seq, [1, 2, 3]);
    assert.deepEqual(q.dt, [0, 1, 2]);
    assert.deepEqual(view(q, 'sched_lat').dt, [null, 1, 2]);
    assert.deepEqual(counter(q, 'sched_lat', 'queue_self_ns_total'), [null, 500, 0]);
    assert.deepEqual(counter(q, 'sched_lat', 'queue_other_ns_total'), [null, 300, 0]);
    const w = view(q, 'sched_lat').histograms.find((x) => x.key === 'wait_ns')!;
    assert.equal(w.bounds.length, 33);
    assert.equal(w.bounds[0], 256);
    assert.equal(w.bounds[32], null);
    assert.deepEqual(w.counts[1]!.slice(0, 5), [0, 2, 0, 3, 0]);
    assert.equal(w.count[1], 5);
    assert.equal(w.sum[1], 800);
    assert.equal(w.count[2], 0);
    assert.equal(w.counts[0], null);
    // p50 of 2 in [256,512) and 3 in [1024,2048): rank 3 is the first of [1024,2048).
    assert.ok(w.p50[1]! >= 1024 && w.p50[1]! <= 2048, String(w.p50[1]));
    // Gauges: a value per sample, carried forward.
    const g = view(q, 'sched_lat').gauges.find((x) => x.key === 'queue_self_max_ns')!;
    assert.deepEqual(g.values, [null, 0, 0]);
    // The tree's figures: the last interval (nothing happened in it).
    assert.equal(s.figures.waitPerSec, 0);
  });

  it('an idle cgroup costs no records; a busy one a few per sample', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 60_000 });
    for (let i = 0; i < 50; i++) {
      h.ingest({
        at: i * 1000,
        cgroups: [
          cg('1', '/idle', { sched_lat: schedLat('1', { self: 5, other: 5, buckets: [2] }) }),
          cg('2', '/busy', { sched_lat: schedLat('2', { self: i * 1000, other: i * 10, buckets: [i, i] }) }),
        ],
      });
    }
    assert.equal(h.find({ path: '/idle' })!.ring, null);
    const busy = h.find({ path: '/busy' })!.ring!;
    // 49 intervals × (self, other, two buckets, sum): 5 records each.
    assert.equal(busy.length, 49 * 5);
  });

  it('wraps: only the retention is kept, and queries clamp to it', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 5000 });
    for (let i = 0; i < 20; i++)
      h.ingest({
        at: i * 1000,
        cgroups: [cg('3', '/w', { sched_lat: schedLat('3', { self: i * i, other: 0, buckets: [i] }) })],
      });
    assert.equal(h.capacity, 5);
    assert.equal(h.oldestSeq, 16);
    const q = h.query(h.find({ path: '/w' })!);
    assert.deepEqual(q.seq, [16, 17, 18, 19, 20]);
    assert.deepEqual(q.t, [15000, 16000, 17000, 18000, 19000]);
    // self = i², so the delta at sample i+1 (value i) is i² - (i-1)² = 2i - 1.
    assert.deepEqual(counter(q, 'sched_lat', 'queue_self_ns_total'), [29, 31, 33, 35, 37]);
    assert.ok(h.find({ path: '/w' })!.ring!.length <= 5 * 3);
    const part = h.query(h.find({ path: '/w' })!, { from: 18 });
    assert.deepEqual(part.seq, [18, 19, 20]);
  });

  it('a gap (the cgroup not read for some samples) is no data there, and the next value covers it', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 60_000 });
    const s = (n: number) => ({ sched_lat: schedLat('4', { self: n, other: 0, buckets: [n / 100] }) });
    h.ingest({ at: 0, cgroups: [cg('4', '/g', s(0))] });
    h.ingest({ at: 1000, cgroups: [cg('4', '/g', s(100))] });
    h.ingest({ at: 2000, cgroups: [] }); // not read (a failed read looks the same)
    h.ingest({ at: 3000, cgroups: [] });
    h.ingest({ at: 4000, cgroups: [cg('4', '/g', s(400))] });
    const q = h.query(h.find({ path: '/g' })!);
    assert.deepEqual(view(q, 'sched_lat').dt, [null, 1, null, null, 3]);
    assert.deepEqual(counter(q, 'sched_lat', 'queue_self_ns_total'), [null, 100, null, null, 300]);
    // A gap over which nothing moved is zeros (counters only grow), and costs no record.
    const before = h.find({ path: '/g' })!.ring!.length;
    h.ingest({ at: 5000, cgroups: [] });
    h.ingest({ at: 6000, cgroups: [cg('4', '/g', s(400))] });
    assert.equal(h.find({ path: '/g' })!.ring!.length, before);
    const q2 = h.query(h.find({ path: '/g' })!, { from: 6 });
    assert.deepEqual(counter(q2, 'sched_lat', 'queue_self_ns_total'), [0, 0]);
  });

  it('a cgroup recreated under the same name starts a new series; the old one stays until it ages out', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 4000 });
    h.ingest({
      at: 0,
      cgroups: [cg('10', '/r', { sched_lat: schedLat('10', { self: 0, other: 0, buckets: [] }) })],
    });
    h.ingest({
      at: 1000,
      cgroups: [cg('10', '/r', { sched_lat: schedLat('10', { self: 1000, other: 0, buckets: [1] }) })],
    });
    // Same name, new id, counters from zero again.
    h.ingest({
      at: 2000,
      cgroups: [cg('11', '/r', { sched_lat: schedLat('11', { self: 50, other: 0, buckets: [1] }) })],
    });
    h.ingest({
      at: 3000,
      cgroups: [cg('11', '/r', { sched_lat: schedLat('11', { self: 80, other: 0, buckets: [2] }) })],
    });
    const cur = h.find({ path: '/r' })!;
    assert.equal(cur.id, '11');
    const q = h.query(cur);
    // Nothing of the old cgroup leaks in, and the new one's whole-life counts are no interval.
    assert.deepEqual(counter(q, 'sched_lat', 'queue_self_ns_total'), [null, null, null, 30]);
    const old = h.find({ key: 'v2:10' })!;
    assert.equal(old.ended, true);
    assert.deepEqual(counter(h.query(old), 'sched_lat', 'queue_self_ns_total'), [null, 1000, null, null]);
    assert.deepEqual(
      h.rows().map((r) => r.id),
      ['11'],
    );
    for (let i = 4; i < 9; i++)
      h.ingest({
        at: i * 1000,
        cgroups: [cg('11', '/r', { sched_lat: schedLat('11', { self: 80, other: 0, buckets: [2] }) })],
      });
    assert.equal(h.find({ key: 'v2:10' }), undefined);
  });

  it('a removed cgroup leaves the tree at once', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 60_000 });
    h.ingest({ at: 0, cgroups: [cg('20', '/x', {}), cg('21', '/y', {})] });
    h.ingest({ at: 1000, cgroups: [cg('21', '/y', {})] });
    assert.deepEqual(
      h.rows().map((r) => r.path),
      ['/y'],
    );
  });

  it('stays within its budget at 10,000 cgroups: the busiest lose their oldest samples, idle ones keep theirs', () => {
    const n = 10_000;
    const busy = 200;
    // Idle cgroups print the same every time (one sample object each, so that the test is quick).
    const idle = new Map<number, CgroupSnapLike>();
    for (let c = busy + 1; c < n; c++) {
      const id = String(1000 + c);
      idle.set(c, cg(id, `/c${c}`, { sched_lat: schedLat(id, { self: 0, other: 0, buckets: [] }) }));
    }
    const sample = (i: number): CgroupSnapLike[] => {
      const cgroups: CgroupSnapLike[] = [];
      for (let c = 0; c < n; c++) {
        const id = String(1000 + c);
        // Busy cgroups move every sample; one "rare" cgroup moves every 30 samples; the rest never.
        const v = c < busy ? i : Math.floor(i / 30);
        cgroups.push(
          idle.get(c) ??
            cg(id, `/c${c}`, {
              sched_lat: schedLat(id, { self: v * 1000, other: v * 7, buckets: [v, v, v, v] }),
            }),
        );
      }
      return cgroups;
    };
    // The budget counts the series' own cost too: 2 MiB of records on top of what 10,000 series cost.
    const probe = new History({ intervalMs: 1000, retentionMs: 720_000 });
    for (let i = 0; i < 2; i++) probe.ingest({ at: i * 1000, cgroups: sample(i) });
    const overhead = probe.overheadBytes();
    assert.equal(probe.memory().overheadBytes, overhead);
    const budget = overhead + 2 * 1024 * 1024;
    const h = new History({ intervalMs: 1000, retentionMs: 720_000, budgetBytes: budget });
    let peak = 0;
    for (let i = 0; i < 120; i++) {
      h.ingest({ at: i * 1000, cgroups: sample(i) });
      peak = Math.max(peak, h.budgetedBytes());
    }
    assert.ok(peak <= budget, `records peaked at ${peak} bytes, budget ${budget}`);
    assert.ok(h.budgetDrops > 0);
    const hot = h.find({ path: '/c0' })!;
    assert.equal(hot.truncated, true);
    assert.ok(hot.firstSeq > 2, `busy series cut (from ${hot.firstSeq})`);
    const rare = h.find({ path: `/c${busy}` })!;
    assert.equal(rare.truncated, false);
    assert.equal(rare.firstSeq, 2);
    const q = h.query(hot);
    const self = counter(q, 'sched_lat', 'queue_self_ns_total')!;
    // Before the cut: no data (null), never a made-up zero.
    assert.equal(self[0], null);
    assert.equal(self[self.length - 1], 1000);
  });

  it('churn: ended series without records go at once; the cap evicts the oldest ended first, then refuses', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 3600_000, maxSeries: 150 });
    let at = 0;
    const tick = () => {
      at += 1000;
      return at;
    };
    let next = 10_000;
    // 5 rounds of 100 idle cgroups made and removed (the review's case: 511 series kept for the hour).
    for (let r = 0; r < 5; r++) {
      const round: CgroupSnapLike[] = [];
      for (let i = 0; i < 100; i++) {
        const id = String(next++);
        round.push(cg(id, `/churn${i}`, { sched_lat: schedLat(id, { self: 0, other: 0, buckets: [] }) }));
      }
      h.ingest({ at: tick(), cgroups: round });
      h.ingest({ at: tick(), cgroups: round });
      h.ingest({ at: tick(), cgroups: [] });
      assert.equal(h.series.size, 0, `round ${r}: ${h.series.size} series left`);
    }
    assert.equal(h.drops.emptyEndedSeries, 500);
    // Busy cgroups (records kept): each lives two samples; 100 fresh ones per sample.
    const ids: string[] = [];
    for (let k = 0; k < 10; k++) {
      const cgroups: CgroupSnapLike[] = [];
      for (let i = 0; i < 100; i++) {
        const id = String(20_000 + k * 100 + i);
        if (k === 0) ids.push(id);
        cgroups.push(
          cg(id, `/busy${k}_${i}`, { sched_lat: schedLat(id, { self: 0, other: 0, buckets: [] }) }),
        );
      }
      h.ingest({ at: tick(), cgroups });
      for (const c of cgroups)
        c.views.set('sched_lat', schedLat(c.id, { self: 500, other: 0, buckets: [1] }));
      h.ingest({ at: tick(), cgroups });
      assert.ok(h.series.size <= 150, `sample ${k}: ${h.series.size} series, cap 150`);
    }
    // The first ones ended first and were evicted first; the last ended are still readable.
    assert.equal(h.find({ key: `v2:${ids[0]}` }), undefined);
    assert.equal(h.find({ key: 'v2:20899' })?.ended, true);
    assert.ok(h.drops.endedSeries >= 800, `evicted ${h.drops.endedSeries}`);
    assert.equal(h.drops.untrackedCgroups, 0);
    // 200 live cgroups with a cap of 150: 150 tracked, 50 not, and it says so.
    const live: CgroupSnapLike[] = [];
    for (let i = 0; i < 200; i++) live.push(cg(String(30_000 + i), `/live${i}`, {}));
    h.ingest({ at: tick(), cgroups: live });
    assert.equal(h.rows().length, 150);
    assert.equal(h.drops.untrackedCgroups, 50);
    assert.equal(h.memory().series, 150);
  });

  it('the budget counts what a series costs besides its records, and takes ended series first', () => {
    const budget = 512 * 1024;
    const h = new History({ intervalMs: 1000, retentionMs: 3600_000, budgetBytes: budget });
    let at = 0;
    const tick = () => {
      at += 1000;
      return at;
    };
    const self = new Map<string, number>();
    const busyOf = (id: string, v: number) =>
      cg(id, `/k${id}`, { sched_lat: schedLat(id, { self: v * 100, other: v, buckets: [v, v] }) });
    // Ten long-lived busy cgroups, and 50 fresh busy ones a sample that live 3 samples each.
    let peak = 0;
    for (let k = 0; k < 200; k++) {
      const cgroups: CgroupSnapLike[] = [];
      for (let i = 0; i < 10; i++) cgroups.push(busyOf(String(i), k));
      for (const g of [k, k - 1, k - 2])
        if (g >= 0)
          for (let i = 0; i < 50; i++) {
            const id = String(1000 + g * 50 + i);
            const v = (self.get(id) ?? 0) + 1;
            self.set(id, v);
            cgroups.push(busyOf(id, v));
          }
      h.ingest({ at: tick(), cgroups });
      const m = h.memory();
      assert.equal(m.recordBytes + m.overheadBytes, h.budgetedBytes());
      peak = Math.max(peak, h.budgetedBytes());
    }
    assert.ok(peak <= budget, `series + records peaked at ${peak} B, budget ${budget}`);
    assert.ok(h.drops.endedSeries > 0);
    // Ended series went, not the live ones' history: the long-lived ones are whole.
    const keep = h.find({ path: '/k0' })!;
    assert.equal(keep.truncated, false);
    assert.equal(keep.firstSeq, 2);
    const q = counter(h.query(keep), 'sched_lat', 'queue_self_ns_total')!;
    assert.equal(q.length, 200);
    assert.equal(q[0], null);
    assert.ok(q.slice(1).every((v) => v === 100));
  });

  it('columns nothing refers to any more are collected: new culprits are recorded after maxColumns', () => {
    const h = new History({ intervalMs: 1000, retentionMs: 10_000, maxColumns: 64 });
    let at = 0;
    const tick = () => {
      at += 1000;
      return at;
    };
    // Every other sample the cgroup's culprits are new ones (short-lived processes' cgroups): 4 new columns.
    for (let k = 0; k < 200; k++) {
      const by: Record<string, number> = {};
      for (let i = 0; i < 4; i++) by[String(k * 4 + i)] = 0;
      h.ingest({ at: tick(), cgroups: [cg('5', '/c', { sched_culprits: culprits('5', by) })] });
      // The same culprits again, moved: one record each.
      for (const c of Object.keys(by)) by[c] = 1000 + k;
      h.ingest({ at: tick(), cgroups: [cg('5', '/c', { sched_culprits: culprits('5', by) })] });
      assert.ok(h.memory().columns <= 64);
    }
    assert.equal(h.drops.refusedColumnValues, 0, 'a value went unrecorded');
    assert.ok(h.drops.freedColumns > 600, `freed ${h.drops.freedColumns}`);
    // The newest culprit's increase is there.
    const last = h.query(h.find({ path: '/c' })!);
    const vals = view(last, 'sched_culprits').counters.find((c) => c.labels?.culprit === '796')?.values;
    assert.ok(vals, 'culprit 796 recorded');
    assert.equal(vals[vals.length - 1], 1199);
  });
});
