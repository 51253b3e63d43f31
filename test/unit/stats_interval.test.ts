/** Interval math (src/stats): counters, resets, histogram deltas, percentiles, sched figures. Hand-computed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { counterDelta, histDelta, quantile, viewDelta } from '../../src/stats/interval.js';
import { classifyView, type Histogram } from '../../src/stats/keys.js';
import { cpuPct, schedFigures } from '../../src/stats/sched.js';
import { parseViewOutput } from '../../src/views/parse.js';

const h = (bounds: number[], cum: number[], count: number, sum?: number): Histogram => ({
  bounds,
  cum,
  count,
  sum,
});

function sched(id: string, o: { self: number; other: number; buckets: number[]; inf?: number }) {
  const bounds = [256, 512, 1024, 2048];
  let cum = 0;
  const lines = [
    `cgroup_id: ${id}`,
    'queue_self: 0',
    'queue_other: 0',
    'wait_count: 0',
    `wait_ns_total: ${o.self + o.other}`,
    `queue_self_ns_total: ${o.self}`,
    `queue_other_ns_total: ${o.other}`,
  ];
  for (const [i, b] of bounds.entries()) {
    cum += o.buckets[i] ?? 0;
    lines.push(`wait_ns_lt_${b}: ${cum}`);
  }
  lines.push(`wait_ns_lt_inf: ${cum + (o.inf ?? 0)}`);
  return classifyView(parseViewOutput(`${lines.join('\n')}\n`));
}

describe('counterDelta', () => {
  it('is the increase, everything without a previous sample, the new value after a reset', () => {
    assert.deepEqual(counterDelta(10, 25), { delta: 15, reset: false });
    assert.deepEqual(counterDelta(undefined, 25), { delta: 25, reset: false });
    assert.deepEqual(counterDelta(100, 7), { delta: 7, reset: true });
    assert.deepEqual(counterDelta(5, 5), { delta: 0, reset: false });
  });
});

describe('quantile', () => {
  it('interpolates inside the bucket of the rank', () => {
    // 10 observations: 2 in [0,10), 6 in [10,20), 2 in [20,40).
    const x = h([10, 20, 40], [2, 8, 10], 10);
    // p50: rank 5 → 3rd of 6 in [10,20): 10 + 10·3/6 = 15.
    assert.equal(quantile(x, 0.5), 15);
    // p99: rank ceil(9.9) = 10 → 2nd of 2 in [20,40): 20 + 20·2/2 = 40.
    assert.equal(quantile(x, 0.99), 40);
    // p10: rank 1 → 1st of 2 in [0,10): 5.
    assert.equal(quantile(x, 0.1), 5);
    // p20: rank 2 → exactly the end of the first bucket.
    assert.equal(quantile(x, 0.2), 10);
  });

  it('gives the last bound for ranks in the open bucket, undefined when empty', () => {
    assert.equal(quantile(h([10, 20], [1, 1], 4), 0.9), 20);
    assert.equal(quantile(h([10, 20], [0, 0], 0), 0.5), undefined);
    assert.equal(quantile(h([10], [1], 1), 0), undefined);
  });

  it('skips empty buckets', () => {
    // 4 observations all in [20,40).
    assert.equal(quantile(h([10, 20, 40], [0, 0, 4], 4), 0.5), 30);
  });
});

describe('histDelta', () => {
  it('subtracts bucket by bucket', () => {
    const d = histDelta(h([10, 20], [1, 3], 4, 50), h([10, 20], [2, 7], 9, 120));
    assert.deepEqual(d, h([10, 20], [1, 4], 5, 70));
  });

  it('counts the current histogram whole after a reset or with other bounds', () => {
    const cur = h([10, 20], [1, 1], 2, 30);
    assert.deepEqual(histDelta(h([10, 20], [5, 9], 9, 300), cur), cur);
    assert.deepEqual(histDelta(h([10, 30], [0, 0], 0, 0), cur), cur);
    assert.deepEqual(histDelta(undefined, cur), cur);
  });

  it('percentiles of the interval, not of the whole life', () => {
    // Long ago: 100 waits < 256 ns. This interval: 4 waits in [1024, 2048).
    const a = sched('9', { self: 0, other: 0, buckets: [100] });
    const b = sched('9', { self: 4000, other: 2000, buckets: [100, 0, 0, 4] });
    const d = viewDelta(a, b, 2);
    const f = schedFigures(d)!;
    // p50: rank 2 of 4 in [1024,2048): 1024 + 1024·2/4 = 1536; p99: rank 4 → 2048.
    assert.equal(f.p50Ns, 1536);
    assert.equal(f.p99Ns, 2048);
    // 6000 ns of wait over 2 s; 4 waits over 2 s; self 4000 of 6000.
    assert.equal(f.waitPerSec, 3e-6);
    assert.equal(f.waitsPerSec, 2);
    assert.ok(Math.abs(f.selfPct! - 66.666) < 0.01);
  });
});

describe('viewDelta', () => {
  it('rates per second of the interval', () => {
    const a = sched('9', { self: 1e9, other: 0, buckets: [1] });
    const b = sched('9', { self: 3e9, other: 1e9, buckets: [1, 2] });
    const d = viewDelta(a, b, 4);
    assert.equal(d.first, false);
    assert.equal(d.reset, false);
    const self = d.metrics.find((m) => m.metric.name === 'queue_self_seconds_total')!;
    assert.equal(self.delta, 2e9);
    assert.equal(self.rate, 5e8);
    // 3e9 ns of wait in 4 s: 0.75 waiting tasks on average.
    assert.equal(schedFigures(d)!.waitPerSec, 0.75);
  });

  it('treats a recreated cgroup (another id) as new: everything since its creation', () => {
    const a = sched('9', { self: 5e9, other: 5e9, buckets: [10] });
    const b = sched('10', { self: 1e9, other: 0, buckets: [2] });
    const d = viewDelta(a, b, 1);
    assert.equal(d.first, true);
    assert.equal(d.reset, false);
    assert.equal(schedFigures(d)!.waitPerSec, 1);
    assert.equal(schedFigures(d)!.waitsPerSec, 2);
  });

  it('counts a counter reset (same id, lower value) whole and says so', () => {
    const a = sched('9', { self: 5e9, other: 5e9, buckets: [10] });
    const b = sched('9', { self: 1e9, other: 0, buckets: [2] });
    const d = viewDelta(a, b, 1);
    assert.equal(d.first, false);
    assert.equal(d.reset, true);
    assert.equal(d.metrics.find((m) => m.metric.name === 'queue_self_seconds_total')!.delta, 1e9);
    assert.equal(schedFigures(d)!.waitsPerSec, 2);
  });

  it('has no sched figures without wait time or without the histogram', () => {
    const a = sched('9', { self: 0, other: 0, buckets: [] });
    const f = schedFigures(viewDelta(a, a, 1))!;
    assert.deepEqual(f, { waitPerSec: 0, waitsPerSec: 0 });
    assert.equal(schedFigures(viewDelta(undefined, classifyView(new Map([['x_total', '1']])), 1)), undefined);
  });
});

describe('cpuPct', () => {
  it('is percent of one CPU', () => {
    assert.equal(cpuPct(2_000_000, 2), 100);
    assert.equal(cpuPct(500_000, 1), 50);
    assert.equal(cpuPct(1, 0), 0);
  });
});
