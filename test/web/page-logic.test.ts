/**
 * The page's pure parts: heat-map binning, the tree model (parents, filter,
 * sort) at 10,000 rows, units, PromQL. No browser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fmtNs, fmtPct, fmtRate } from '../../web/src/format.js';
import { binHeatmap, heatColour } from '../../web/src/heatmap.js';
import { matchers, quantileQuery, rateQuery } from '../../web/src/promql.js';
import { TreeModel, type TreePayload } from '../../web/src/tree.js';

describe('binHeatmap', () => {
  it('puts each sample in the columns of its time, rows from the lowest to the highest non-empty bucket', () => {
    // Three 1 s samples over [0, 3000] ms in 3 columns; buckets 0..4.
    const t = [1000, 2000, 3000];
    const dt = [1, 1, 1];
    const counts = [
      [0, 0, 5, 0, 0],
      [0, 1, 0, 0, 2],
      [0, 0, 0, 0, 0],
    ];
    const b = binHeatmap(t, dt, counts, 0, 3000, 3);
    assert.equal(b.lo, 1);
    assert.equal(b.hi, 4);
    assert.equal(b.total, 8);
    assert.equal(b.max, 5);
    const cell = (bucket: number, x: number) => b.grid[(bucket - b.lo) * b.width + x];
    assert.equal(cell(2, 0), 5);
    assert.equal(cell(1, 1), 1);
    assert.equal(cell(4, 1), 2);
    assert.equal(cell(2, 1), 0);
    assert.equal(cell(4, 2), 0);
  });

  it('a sample wider than a column fills every column it covers; samples sharing a column add up', () => {
    const wide = binHeatmap([10_000], [10], [[3]], 0, 10_000, 5);
    assert.deepEqual([...wide.grid], [3, 3, 3, 3, 3]);
    const narrow = binHeatmap([100, 200, 300], [0.1, 0.1, 0.1], [[1], [2], [4]], 0, 10_000, 5);
    assert.equal(narrow.grid[0], 7);
    assert.equal(narrow.total, 7);
  });

  it('skips samples without data and outside the range; empty gives no rows', () => {
    const b = binHeatmap([1000, 2000, 9000], [1, null, 1], [[1], [50], null], 0, 3000, 3);
    assert.equal(b.total, 1);
    const e = binHeatmap([1000], [1], [[0, 0]], 0, 3000, 3);
    assert.equal(e.hi, -1);
    assert.equal(e.grid.length, 0);
  });

  it('colours run from light to dark (and the other way on dark backgrounds)', () => {
    const sum = (c: number[]) => c[0]! + c[1]! + c[2]!;
    assert.ok(sum(heatColour(0, false)) > sum(heatColour(1, false)));
    assert.ok(sum(heatColour(0, true)) < sum(heatColour(1, true)));
  });
});

function payload(paths: string[], wait: number[]): TreePayload {
  const n = paths.length;
  return {
    seq: 1,
    key: paths.map((_, i) => `v2:${i + 1}`),
    id: paths.map((_, i) => String(i + 1)),
    h: paths.map(() => 0),
    path: paths,
    level: paths.map((p) => (p === '/' ? 0 : p.split('/').length - 1)),
    tasks: Array(n).fill(1),
    cpu: Array(n).fill(null),
    wait,
    waits: Array(n).fill(null),
    p50: Array(n).fill(null),
    p99: Array(n).fill(null),
    self: Array(n).fill(null),
    vs: Array(n).fill(0),
    hierarchies: ['v2'],
    viewSets: [['sched_lat']],
  };
}

describe('TreeModel', () => {
  it('links parents by path (the nearest mirrored ancestor), sorts siblings, filters with ancestors', () => {
    const m = new TreeModel();
    m.apply(payload(['/', '/a', '/a/x', '/a/y', '/b', '/c/deep'], [0, 1, 0.5, 3, 2, 0]), true);
    const all = new Set([...m.rows.keys()]);
    const vis = m.visible(all, 'wait', true, '');
    assert.deepEqual(
      vis.map((v) => `${v.depth}${v.row.path}`),
      ['0/', '1/b', '1/a', '2/a/y', '2/a/x', '1/c/deep'],
    );
    // Collapsed: /a's children hidden.
    const some = new Set(['v2:1']);
    assert.deepEqual(
      m.visible(some, 'name', false, '').map((v) => v.row.path),
      ['/', '/a', '/b', '/c/deep'],
    );
    // Filter: matches and their ancestors, whatever is collapsed.
    assert.deepEqual(
      m.visible(new Set(), 'name', false, 'Y').map((v) => v.row.path),
      ['/', '/a', '/a/y'],
    );
  });

  it('updates rows in place and drops the removed ones', () => {
    const m = new TreeModel();
    m.apply(payload(['/', '/a'], [0, 1]), true);
    const upd = payload(['/a'], [5]);
    upd.key = ['v2:2'];
    m.apply(upd, false, ['v2:1']);
    assert.deepEqual([...m.rows.keys()], ['v2:2']);
    assert.equal(m.rows.get('v2:2')!.wait, 5);
    assert.equal(m.roots.length, 1);
  });

  it('10,000 rows: link, sort and filter stay well under a frame budget of work', () => {
    const paths = ['/'];
    for (let i = 0; i < 100; i++) {
      paths.push(`/s${i}`);
      for (let j = 0; j < 99; j++) paths.push(`/s${i}/c${j}`);
    }
    const m = new TreeModel();
    m.apply(
      payload(
        paths,
        paths.map((_, i) => i % 7),
      ),
      true,
    );
    const all = new Set(m.rows.keys());
    assert.equal(m.visible(all, 'wait', true, '').length, paths.length);
    assert.equal(m.visible(all, 'name', false, 's42/c9').length, 1 + 1 + 10); // /, /s42, c9 and c90..c98
  });
});

describe('units and PromQL', () => {
  it('prints durations with units', () => {
    assert.equal(fmtNs(850), '850 ns');
    assert.equal(fmtNs(12_300), '12.3 µs');
    assert.equal(fmtNs(4_560_000), '4.56 ms');
    assert.equal(fmtNs(1.2e9), '1.20 s');
    assert.equal(fmtNs(null), '–');
    assert.equal(fmtPct(55.55), '56%');
    assert.equal(fmtRate(2.004, ''), '2.00');
  });

  it('names the exporter metrics and the real cgroup path, escaped', () => {
    const m = matchers('/system.slice/a"b.service', 'v2');
    assert.equal(m, '{cgroup="/system.slice/a\\"b.service",hierarchy="v2"}');
    assert.equal(
      rateQuery('sched_lat', 'wait_seconds_sum', m),
      `rate(cgview_sched_lat_wait_seconds_sum${m}[1m])`,
    );
    assert.equal(
      quantileQuery('sched_lat', 'wait_seconds', 0.99, m),
      `histogram_quantile(0.99, sum by (le) (rate(cgview_sched_lat_wait_seconds_bucket${m}[1m])))`,
    );
  });
});
