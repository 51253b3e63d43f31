/**
 * Unit tests of top's model: which view feeds which column, the interval
 * figures of hand-made samples (rates, a counter reset, a cgroup recreated
 * under the same name, histogram-delta percentiles), and the JSON and batch
 * renderings of a frame.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyView } from '../../src/stats/keys.js';
import { batchText, frameJson, unreadableLine } from '../../src/top/app.js';
import { frame, schedViewOf } from '../../src/top/model.js';
import type { CgroupSample, Snapshot, Target } from '../../src/top/source.js';

const target: Target = {
  tree: { dir: '/sys/fs/bpf/t', cgroup: '/sys/fs/cgroup/unified/x' },
  start: '/sys/fs/bpf/t',
  hierarchy: 'v2',
  mount: '/sys/fs/cgroup/unified',
  cpuacct: false,
};

/** A sched_lat output: buckets 256…1024 ns, totals in ns. */
function schedLat(
  id: number,
  o: { waitNs: number; self: number; other: number; cum: [number, number, number]; count: number },
): string {
  return [
    `cgroup_id: ${id}`,
    'queue_self: 0',
    'queue_other: 0',
    `wait_count: ${o.count}`,
    `wait_ns_total: ${o.waitNs}`,
    `queue_self_ns_total: ${o.self}`,
    `queue_other_ns_total: ${o.other}`,
    'queue_self_max_ns: 900',
    'queue_other_max_ns: 800',
    `wait_ns_lt_256: ${o.cum[0]}`,
    `wait_ns_lt_512: ${o.cum[1]}`,
    `wait_ns_lt_1024: ${o.cum[2]}`,
    `wait_ns_lt_inf: ${o.count}`,
    'p50_ns: 1',
    'p99_ns: 2',
  ].join('\n');
}

function view(text: string) {
  return classifyView(
    new Map(text.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])),
  );
}

function cg(key: string, views: Record<string, string>, o: Partial<CgroupSample> = {}): CgroupSample {
  return {
    key: `/sys/fs/bpf/t/${key}`,
    parent: '/sys/fs/bpf/t',
    target,
    cgroup: `/sys/fs/cgroup/unified/x/${key}`,
    path: `/x/${key}`,
    depth: 1,
    procs: 1,
    threads: 2,
    views: new Map(Object.entries(views).map(([k, v]) => [k, view(v)])),
    errors: [],
    ...o,
  };
}

const snap = (s: number, cgroups: CgroupSample[]): Snapshot => ({
  monoNs: BigInt(s * 1e9),
  at: s * 1000,
  cgroups,
  missing: [],
});

describe('top model', () => {
  it('the interval figures: wait/s, waits/s, self %, interval percentiles, CPU %', () => {
    const a = cg(
      'a',
      { sched_lat: schedLat(7, { waitNs: 1e9, self: 6e8, other: 4e8, cum: [10, 10, 10], count: 10 }) },
      { cpuUsec: 1e6 },
    );
    // 2 s later: 3e9 ns more wait (1.5 tasks waiting), 3/4 of it behind self; 100 waits, all in [256, 512).
    const b = cg(
      'a',
      {
        sched_lat: schedLat(7, { waitNs: 4e9, self: 2.85e9, other: 1.15e9, cum: [10, 110, 110], count: 110 }),
      },
      { cpuUsec: 2.5e6 },
    );
    const f = frame(snap(10, [a]), snap(12, [b]));
    const r = f.rows[0]!;
    assert.equal(f.seconds, 2);
    assert.equal(r.sched!.view, 'sched_lat');
    assert.equal(r.sched!.fig.waitPerSec, 1.5);
    assert.equal(r.sched!.fig.waitsPerSec, 50);
    assert.equal(r.sched!.fig.selfPct, 75);
    // Linear inside the bucket [256, 512): the 50th of 100 at 256 + 256 * 0.5.
    assert.equal(r.sched!.fig.p50Ns, 384);
    assert.equal(r.sched!.fig.p99Ns, 256 + 256 * 0.99);
    assert.equal(r.sched!.first, false);
    assert.equal(r.cpuPct, 75);
    assert.deepEqual(r.sched!.totals, {
      waits: 110,
      waitNs: 4e9,
      selfNs: 2.85e9,
      otherNs: 1.15e9,
      selfMaxNs: 900,
      otherMaxNs: 800,
    });
  });

  it('a cgroup recreated under the same name (another id): its figures count from its creation, CPU too', () => {
    const a = cg(
      'a',
      { sched_lat: schedLat(7, { waitNs: 9e9, self: 9e9, other: 0, cum: [0, 0, 99], count: 99 }) },
      { cpuUsec: 9e6 },
    );
    const b = cg(
      'a',
      { sched_lat: schedLat(8, { waitNs: 1e9, self: 0, other: 1e9, cum: [4, 4, 4], count: 4 }) },
      { cpuUsec: 5e5 },
    );
    const r = frame(snap(0, [a]), snap(1, [b])).rows[0]!;
    assert.equal(r.sched!.first, true);
    assert.equal(r.sched!.fig.waitPerSec, 1);
    assert.equal(r.sched!.fig.waitsPerSec, 4);
    assert.equal(r.sched!.fig.selfPct, 0);
    assert.equal(r.cpuPct, 50);
    assert.equal(r.cgroupId, '8');
  });

  it('a counter that went down (same id) is counted whole, not as a negative rate', () => {
    const a = cg('a', {
      sched_lat: schedLat(7, { waitNs: 9e9, self: 9e9, other: 0, cum: [0, 0, 99], count: 99 }),
    });
    const b = cg('a', {
      sched_lat: schedLat(7, { waitNs: 5e8, self: 5e8, other: 0, cum: [1, 1, 1], count: 1 }),
    });
    const r = frame(snap(0, [a]), snap(1, [b])).rows[0]!;
    assert.equal(r.sched!.fig.waitPerSec, 0.5);
    assert.ok(r.sched!.fig.waitsPerSec >= 0);
  });

  it('the same sample object (an idle subtree kept by the sampler): all zeros', () => {
    const a = cg(
      'a',
      { sched_lat: schedLat(7, { waitNs: 9e9, self: 9e9, other: 0, cum: [0, 0, 99], count: 99 }) },
      { cpuUsec: 5 },
    );
    const r = frame(snap(0, [a]), snap(1, [a])).rows[0]!;
    assert.deepEqual(
      [r.cpuPct, r.sched!.fig.waitPerSec, r.sched!.fig.waitsPerSec, r.sched!.fig.p50Ns],
      [0, 0, 0, undefined],
    );
  });

  it('other views become rate columns by the key conventions; labelled series and gauges only in the details', () => {
    const cpu = [
      'cgroup_id: 7',
      'run_ns_total: 1000000000',
      'nvcsw_total: 10',
      'level: 2',
      'culprit_42_ns_total: 5',
    ].join('\n');
    const cpu2 = [
      'cgroup_id: 7',
      'run_ns_total: 1500000000',
      'nvcsw_total: 30',
      'level: 2',
      'culprit_42_ns_total: 2000000005',
    ].join('\n');
    const f = frame(snap(0, [cg('a', { my_view: cpu })]), snap(2, [cg('a', { my_view: cpu2 })]));
    assert.deepEqual(f.columns, ['my_view:run_seconds', 'my_view:nvcsw']);
    const r = f.rows[0]!;
    assert.equal(r.sched, undefined);
    assert.equal(r.columns.get('my_view:run_seconds'), 0.25);
    assert.equal(r.columns.get('my_view:nvcsw'), 10);
    const byName = new Map(r.series.map((s) => [s.name, s]));
    assert.equal(byName.get('level')!.kind, 'gauge');
    assert.equal(byName.get('level')!.value, 2);
    assert.equal(byName.get('culprit_seconds{culprit="42"}')!.value, 1);
    assert.equal(byName.get('culprit_seconds{culprit="42"}')!.column, false);
  });

  it('labels that hold cgroup ids (culprit) are shown as the paths of those cgroups', () => {
    const v = (n: number) =>
      ['cgroup_id: 7', `culprit_8_ns_total: ${n}`, `culprit_99_ns_total: ${n}`].join('\n');
    const a0 = cg('a', { culprits: v(0) });
    const b = cg('b', { info: 'cgroup_id: 8\nlevel: 1' });
    const f = frame(snap(0, [a0, b]), snap(1, [cg('a', { culprits: v(5e8) }), b]));
    const j = frameJson(f, 'path') as { cgroups: Array<{ views: Record<string, Record<string, unknown>> }> };
    assert.deepEqual(j.cgroups[0]!.views['culprits'], {
      'culprit_seconds{culprit="8"}': { kind: 'counter', per_second: 0.5, cgroups: { culprit: '/x/b' } },
      'culprit_seconds{culprit="99"}': { kind: 'counter', per_second: 0.5, cgroups: { culprit: 'id 99' } },
    });
  });

  it('the sched view: the file sched_lat, else the first file with its shape', () => {
    const s = view(schedLat(1, { waitNs: 0, self: 0, other: 0, cum: [0, 0, 0], count: 0 }));
    const info = view('cgroup_id: 1\nlevel: 0\nname: x');
    assert.equal(
      schedViewOf(
        new Map([
          ['info', info],
          ['sched_lat', s],
        ]),
      ),
      'sched_lat',
    );
    assert.equal(
      schedViewOf(
        new Map([
          ['info', info],
          ['lat2', s],
          ['lat1', s],
        ]),
      ),
      'lat1',
    );
    assert.equal(schedViewOf(new Map([['info', info]])), undefined);
  });

  it('JSON and batch renderings; what could not be read is said', () => {
    const a = cg('a', { sched_lat: schedLat(7, { waitNs: 0, self: 0, other: 0, cum: [0, 0, 0], count: 0 }) });
    const b = cg('b.c', {}, { errors: [{ what: 'sched_lat', code: 'EACCES' }], path: '/x/b.c' });
    const f = frame(snap(0, [a, b]), snap(1, [a, { ...b }]));
    const j = frameJson(f, 'wait') as { cgroups: Array<Record<string, unknown>>; interval_seconds: number };
    assert.equal(j.interval_seconds, 1);
    assert.deepEqual(
      j.cgroups.map((c) => c['path']),
      ['/x/a', '/x/b.c'],
    );
    assert.deepEqual(j.cgroups[1]!['unreadable'], [{ file: 'sched_lat', error: 'EACCES' }]);
    assert.equal(unreadableLine(f.rows), '1 cgroup unreadable (marked !): EACCES on sched_lat (1)');
    const t = batchText(f, 'wait', 'host');
    assert.match(
      t,
      /^cgview top {2}host {2}1970-01-01T00:00:01\.000Z {2}interval 1\.00s {2}2 cgroups {2}sort wait\n/,
    );
    assert.match(t, /\n!\/x\/b\.c +1 +2 /);
    assert.ok(t.endsWith('1 cgroup unreadable (marked !): EACCES on sched_lat (1)\n\n'));
  });
});
