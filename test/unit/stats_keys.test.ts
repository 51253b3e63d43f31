/** classifyView: the key conventions of docs/views.md, without a kernel. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyView, metricKey } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';

const view = (text: string) => classifyView(parseViewOutput(text));
const byName = (text: string) => new Map(view(text).metrics.map((m) => [metricKey(m), m]));

/** sched_lat as it prints (shortened histogram: the rules do not depend on its length). */
const SCHED = `cgroup_id: 77
queue_self: 500
queue_other: 40
wait_count: 6
wait_ns_total: 3000
queue_self_ns_total: 2500
queue_other_ns_total: 500
queue_self_max_ns: 500
queue_other_max_ns: 40
wait_ns_lt_256: 1
wait_ns_lt_512: 4
wait_ns_lt_1024: 6
wait_ns_lt_inf: 6
p50_ns: 384
p90_ns: 896
p99_ns: 1000
`;

describe('classifyView', () => {
  it('reads sched_lat into the fixed metric names', () => {
    const s = view(SCHED);
    assert.equal(s.id, '77');
    assert.deepEqual(
      s.metrics.map((m) => [m.name, m.kind, m.scale, m.value]),
      [
        ['queue_self_seconds_total', 'counter', 1e-9, 2500],
        ['queue_other_seconds_total', 'counter', 1e-9, 500],
        ['queue_self_max_seconds', 'gauge', 1e-9, 500],
        ['queue_other_max_seconds', 'gauge', 1e-9, 40],
        ['wait_seconds', 'histogram', 1e-9, 6],
      ],
    );
    const h = s.metrics[4]!.hist!;
    assert.deepEqual(h, { bounds: [256, 512, 1024], cum: [1, 4, 6], count: 6, sum: 3000 });
    assert.equal(s.metrics[4]!.key, 'wait_ns');
    assert.equal(s.text.size, 0);
  });

  it('keeps text apart and makes other numbers gauges', () => {
    const s = view('cgroup_id: 5\nlevel: 2\nname: a.b\nhierarchy_id: 0\nratio: 0.5\nneg: -3\n');
    assert.deepEqual(
      s.metrics.map((m) => [m.name, m.kind, m.value]),
      [
        ['level', 'gauge', 2],
        ['hierarchy_id', 'gauge', 0],
        ['ratio', 'gauge', 0.5],
        ['neg', 'gauge', -3],
      ],
    );
    assert.deepEqual([...s.text], [['name', 'a.b']]);
  });

  it('converts plain counters and ns gauges', () => {
    const m = byName('cgroup_id: 1\nswitches_total: 9\nrun_ns_total: 20\nlast_ns: 7\n');
    assert.equal(m.get('switches_total')!.kind, 'counter');
    assert.equal(m.get('run_seconds_total')!.scale, 1e-9);
    assert.equal(m.get('last_seconds')!.kind, 'gauge');
  });

  it('reads indexed keys as one metric with a label', () => {
    const m = byName(
      'cgroup_id: 1\nculprit_42_ns_total: 10\nculprit_7_ns_total: 3\nculprit_rest_ns_total: 1\n',
    );
    assert.deepEqual(
      [...m.keys()],
      [
        'culprit_seconds_total{culprit=42}',
        'culprit_seconds_total{culprit=7}',
        'culprit_seconds_total{culprit=rest}',
      ],
    );
    assert.equal(m.get('culprit_seconds_total{culprit=7}')!.value, 3);
    assert.equal(m.get('culprit_seconds_total{culprit=7}')!.kind, 'counter');
  });

  it('renames an indexed label the exporter sets itself', () => {
    const m = byName('cgroup_id: 1\ncgroup_3_foo: 1\nle_2_x_total: 4\nunit_1_y: 2\n');
    assert.deepEqual(
      [...m.keys()],
      ['cgroup_foo{view_cgroup=3}', 'le_x_total{view_le=2}', 'unit_y{view_unit=1}'],
    );
  });

  it('takes a histogram without a unit, its sum and count lines', () => {
    const m = byName(
      'cgroup_id: 1\nsize_lt_10: 1\nsize_lt_100: 3\nsize_lt_inf: 4\nsize_sum: 500\nsize_count: 4\n',
    );
    assert.deepEqual([...m.keys()], ['size']);
    assert.deepEqual(m.get('size')!.hist, { bounds: [10, 100], cum: [1, 3], count: 4, sum: 500 });
    assert.equal(m.get('size')!.scale, 1);
  });

  it('reads a broken histogram as gauges, never throws', () => {
    // Bounds going down, and a cumulative count going down: both not histograms.
    const m = byName(
      'cgroup_id: 1\na_lt_10: 1\na_lt_5: 2\na_lt_inf: 2\nb_lt_10: 3\nb_lt_20: 2\nb_lt_inf: 3\n',
    );
    assert.deepEqual([...m.keys()].sort(), [
      'a_lt_10',
      'a_lt_5',
      'a_lt_inf',
      'b_lt_10',
      'b_lt_20',
      'b_lt_inf',
    ]);
    for (const x of m.values()) assert.equal(x.kind, 'gauge');
    // No _lt_inf line: not a histogram either.
    assert.equal(byName('cgroup_id: 1\nc_lt_10: 1\n').get('c_lt_10')!.kind, 'gauge');
  });

  it('skips percentiles and the RFC lines, and has no id when none is printed', () => {
    const s = view('p50_ns: 3\np99: 4\nqueue_self: 1\nqueue_other: 2\nwait_count: 3\n');
    assert.equal(s.id, undefined);
    assert.deepEqual(s.metrics, []);
  });

  it('reads empty output (a removed cgroup) as nothing', () => {
    assert.deepEqual(view(''), { id: undefined, metrics: [], text: new Map() });
  });
});
