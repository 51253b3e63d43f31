/**
 * The conversion and the formats on a made-up snapshot (no kernel): names,
 * labels, buckets, the text formats against promtool, OpenMetrics' rules, a
 * decode of the protobuf exposition, native buckets, content negotiation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportViewName, toFamilies, unlabelPath, utf8 } from '../../src/export/families.js';
import { negotiate, wantsGzip } from '../../src/export/negotiate.js';
import { DEFAULT_BUCKETS_S, defaultExportOptions, parseExportConfig } from '../../src/export/options.js';
import { nativeOf, renderProtobuf } from '../../src/export/protobuf.js';
import type { CgroupSnap, Snapshot } from '../../src/export/snapshot.js';
import { parseLines } from '../../src/export/snapshot.js';
import { goFloat, renderText } from '../../src/export/text.js';
import { classifyView } from '../../src/stats/keys.js';
import { promtoolCheckMetrics } from '../prometheus.js';
import { parseExposition, pick } from './util.js';

/** sched_lat as the view prints it: 2^8 … 2^39 ns buckets. */
function schedLat(id: number, waits: number[]): string {
  const bounds = Array.from({ length: 32 }, (_, i) => 2 ** (8 + i));
  const lines = [
    `cgroup_id: ${id}`,
    `queue_self: ${Math.max(0, ...waits)}`,
    'queue_other: 0',
    `wait_count: ${waits.length}`,
    `wait_ns_total: ${waits.reduce((a, b) => a + b, 0)}`,
    `queue_self_ns_total: ${waits.reduce((a, b) => a + b, 0)}`,
    'queue_other_ns_total: 0',
    `queue_self_max_ns: ${Math.max(0, ...waits)}`,
    'queue_other_max_ns: 0',
    ...bounds.map((b) => `wait_ns_lt_${b}: ${waits.filter((w) => w < b).length}`),
    `wait_ns_lt_inf: ${waits.length}`,
    'p50_ns: 0',
    'p90_ns: 0',
    'p99_ns: 0',
  ];
  return `${lines.join('\n')}\n`;
}

function cg(
  path: string,
  id: number,
  views: Record<string, string>,
  labels: Record<string, string> = {},
): CgroupSnap {
  return {
    tree: '/sys/fs/bpf/t',
    rel: path.slice(1),
    path,
    hierarchy: 'v2',
    id: String(id),
    level: path === '/' ? 0 : path.split('/').length - 1,
    labels,
    views: new Map(Object.entries(views).map(([v, text]) => [v, classifyView(parseLines(text)!)])),
  };
}

const FIXTURE = [
  'cgroup_id: 7',
  'name: not a number',
  'events_total: 12',
  'busy_ns_total: 1500000000',
  'depth: 3',
  'last_ns: 2000',
  'size_lt_10: 1',
  'size_lt_100: 3',
  'size_lt_inf: 4',
  'size_total: 250',
  'culprit_5_ns_total: 1000000000',
  'culprit_rest_ns_total: 3000000000',
  'p99_ns: 77',
].join('\n');

function snapshot(): Snapshot {
  return {
    at: Date.now(),
    monoNs: 0n,
    stats: { ms: 0, files: 0, bulk: 0, readErrors: 0 },
    cgroups: [
      cg('/', 1, { info: 'cgroup_id: 1\nlevel: 0\nname: \nhierarchy_id: 0\n' }),
      cg(
        '/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-x.scope',
        5,
        {
          info: 'cgroup_id: 5\nlevel: 3\nname: x\nhierarchy_id: 0\n',
          sched_lat: schedLat(5, [500, 3000, 2e6, 5e9]),
        },
        { unit: 'cri-containerd-x.scope', pod_uid: '1-2', qos_class: 'Guaranteed', container_id: 'x' },
      ),
      cg('/odd"name\\with\nnewline', 6, { sched_lat: schedLat(6, []) }),
      cg('/fixture', 7, { test_export: FIXTURE }),
    ],
  };
}

describe('conversion', () => {
  const text = renderText(toFamilies(snapshot(), defaultExportOptions()).families, false);
  const samples = parseExposition(text);

  it('sched_lat: the fixed names, in seconds, with the default buckets', () => {
    const w = { cgroup: '/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-x.scope' };
    const b = pick(samples, 'cgview_sched_lat_wait_seconds_bucket', w);
    assert.deepEqual(
      b.map((s) => s.labels['le']),
      [...DEFAULT_BUCKETS_S.map(goFloat), '+Inf'],
    );
    assert.equal(b[0]!.labels['le'], '1.024e-06');
    // waits 500 ns, 3 µs, 2 ms, 5 s: < 1.024 µs: 1; < 4.1 µs: 2; < 4.2 ms: 3; < 4.29 s: 3; +Inf: 4.
    assert.deepEqual(
      b.map((s) => s.value),
      [1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4],
    );
    assert.equal(pick(samples, 'cgview_sched_lat_wait_seconds_count', w)[0]!.value, 4);
    assert.ok(Math.abs(pick(samples, 'cgview_sched_lat_wait_seconds_sum', w)[0]!.value - 5.0020035) < 1e-9);
    assert.equal(pick(samples, 'cgview_sched_lat_queue_self_seconds_total', w)[0]!.value, 5.0020035);
    assert.equal(pick(samples, 'cgview_sched_lat_queue_other_seconds_total', w)[0]!.value, 0);
    assert.equal(pick(samples, 'cgview_sched_lat_queue_self_max_seconds', w)[0]!.value, 5);
    assert.equal(pick(samples, 'cgview_sched_lat_queue_other_max_seconds', w)[0]!.value, 0);
    // The RFC lines, percentiles and the histogram's own lines are not metrics of their own.
    for (const n of [
      'queue_self',
      'queue_other',
      'wait_count',
      'p50',
      'p99_seconds',
      'wait_seconds_total',
      'wait_count_total',
    ])
      assert.equal(pick(samples, `cgview_sched_lat_${n}`, {}).length, 0, n);
  });

  it('info: cgview_cgroup_info with id, level and the workload labels', () => {
    const i = pick(samples, 'cgview_cgroup_info', { cgroup_id: '5' });
    assert.equal(i.length, 1);
    assert.deepEqual(i[0]!.labels, {
      cgroup: '/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-x.scope',
      hierarchy: 'v2',
      unit: 'cri-containerd-x.scope',
      container_id: 'x',
      pod_uid: '1-2',
      qos_class: 'Guaranteed',
      cgroup_id: '5',
      level: '3',
    });
    assert.equal(i[0]!.value, 1);
    assert.deepEqual(pick(samples, 'cgview_cgroup_info', { cgroup: '/' })[0]!.labels['level'], '0');
  });

  it('a view following the conventions: counters, ns → s, gauges, histograms, indexed keys, text left out', () => {
    const w = { cgroup: '/fixture' };
    const one = (n: string, extra: Record<string, string> = {}) => {
      const s = pick(samples, n, { ...w, ...extra });
      assert.equal(s.length, 1, `${n} ${JSON.stringify(extra)}: ${s.length}`);
      return s[0]!.value;
    };
    assert.equal(one('cgview_test_export_events_total'), 12);
    assert.equal(one('cgview_test_export_busy_seconds_total'), 1.5);
    assert.equal(one('cgview_test_export_depth'), 3);
    assert.equal(one('cgview_test_export_last_seconds'), 2e-6);
    // A histogram not in seconds keeps every bound; its sum is size_total.
    assert.deepEqual(
      pick(samples, 'cgview_test_export_size_bucket', w).map((s) => [s.labels['le'], s.value]),
      [
        ['10', 1],
        ['100', 3],
        ['+Inf', 4],
      ],
    );
    assert.equal(one('cgview_test_export_size_sum'), 250);
    assert.equal(one('cgview_test_export_size_count'), 4);
    assert.equal(one('cgview_test_export_culprit_seconds_total', { culprit: '5' }), 1);
    // The culprit's path, from the snapshot (cgroup id 5 is the container).
    assert.equal(
      pick(samples, 'cgview_test_export_culprit_seconds_total', { culprit: '5' })[0]!.labels['culprit_path'],
      '/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-x.scope',
    );
    assert.equal(one('cgview_test_export_culprit_seconds_total', { culprit: 'rest' }), 3);
    assert.equal(samples.filter((s) => s.name.includes('name') || s.name.includes('p99')).length, 0);
  });

  it('label values are escaped', () => {
    assert.match(text, /cgroup="\/odd\\"name\\\\with\\nnewline"/);
    assert.equal(
      pick(samples, 'cgview_sched_lat_wait_seconds_count', { cgroup: '/odd"name\\with\nnewline' }).length,
      1,
    );
  });

  it('promtool check metrics finds nothing in the text format', () => {
    const r = promtoolCheckMetrics(text);
    assert.equal(r.output, '');
    assert.equal(r.code, 0);
  });

  it('OpenMetrics: families without _total, # UNIT, info type, # EOF last', () => {
    const om = renderText(toFamilies(snapshot(), defaultExportOptions()).families, true);
    assert.ok(om.endsWith('# EOF\n'));
    assert.equal(om.indexOf('# EOF'), om.length - 6);
    assert.match(
      om,
      /^# TYPE cgview_sched_lat_queue_self_seconds counter\n# UNIT cgview_sched_lat_queue_self_seconds seconds\ncgview_sched_lat_queue_self_seconds_total\{/m,
    );
    assert.match(
      om,
      /^# TYPE cgview_sched_lat_wait_seconds histogram\n# UNIT cgview_sched_lat_wait_seconds seconds\n/m,
    );
    assert.match(om, /^# TYPE cgview_cgroup info\ncgview_cgroup_info\{/m);
    assert.match(om, /^# TYPE cgview_test_export_depth gauge\ncgview_test_export_depth\{/m);
    // promtool reads only the 0.0.4 format: its one finding is that OpenMetrics counters' samples
    // (named with _total, their family without) have no help of their own.
    const r = promtoolCheckMetrics(
      om
        .replace(/^# TYPE (\S+) info$/gm, '# TYPE $1_info gauge')
        .replace(/^# HELP cgview_cgroup /m, '# HELP cgview_cgroup_info '),
    );
    const findings = r.output.split('\n').filter((l) => l !== '');
    for (const f of findings) assert.match(f, /^\S+_total no help text$/);
  });

  it('buckets: a chosen set, or all of them', () => {
    const o = parseExportConfig('{"buckets": [0.000001, 0.001, 1]}');
    let s = parseExposition(renderText(toFamilies(snapshot(), o).families, false));
    assert.deepEqual(
      pick(s, 'cgview_sched_lat_wait_seconds_bucket', { cgroup: '/odd"name\\with\nnewline' }).map(
        (x) => x.labels['le'],
      ),
      ['1.024e-06', '0.001048576', '1.073741824', '+Inf'],
    );
    s = parseExposition(
      renderText(toFamilies(snapshot(), parseExportConfig('{"buckets": "all"}')).families, false),
    );
    assert.equal(
      pick(s, 'cgview_sched_lat_wait_seconds_bucket', { cgroup: '/odd"name\\with\nnewline' }).length,
      33,
    );
  });
});

// --- protobuf --------------------------------------------------------------------------------

type Msg = Map<number, Array<number | Buffer>>;

function decode(buf: Buffer): Msg {
  const out: Msg = new Map();
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const t = varint();
    const f = Math.floor(t / 8);
    const w = t & 7;
    let v: number | Buffer;
    if (w === 0) v = varint();
    else if (w === 1) {
      v = buf.readDoubleLE(i);
      i += 8;
    } else if (w === 2) {
      const n = varint();
      v = buf.subarray(i, i + n);
      i += n;
    } else throw new Error(`wire type ${w}`);
    out.set(f, [...(out.get(f) ?? []), v]);
  }
  return out;
}

function delimited(buf: Buffer): Msg[] {
  const out: Msg[] = [];
  let i = 0;
  while (i < buf.length) {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      n += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) break;
    }
    out.push(decode(buf.subarray(i, i + n)));
    i += n;
  }
  return out;
}

const unzig = (v: number) => (v % 2 === 0 ? v / 2 : -(v + 1) / 2);

describe('protobuf exposition', () => {
  const conv = toFamilies(snapshot(), defaultExportOptions());
  const fams = delimited(renderProtobuf(conv.families));

  it('one MetricFamily per family, names and types as in the text format', () => {
    const names = fams.map((f) => (f.get(1)![0] as Buffer).toString());
    assert.deepEqual(
      names,
      conv.families.filter((f) => f.series.length > 0).map((f) => f.name),
    );
    const typeOf = (n: string) => fams[names.indexOf(n)]!.get(3)![0];
    assert.equal(typeOf('cgview_sched_lat_wait_seconds'), 4);
    assert.equal(typeOf('cgview_sched_lat_queue_self_seconds_total'), 0);
    assert.equal(typeOf('cgview_cgroup_info'), 1);
  });

  it('histograms: classic buckets and a native schema-0 histogram of every view bucket', () => {
    const names = fams.map((f) => (f.get(1)![0] as Buffer).toString());
    const f = fams[names.indexOf('cgview_sched_lat_wait_seconds')]!;
    const metrics = f.get(4)!.map((m) => decode(m as Buffer));
    const withLabel = metrics.find((m) =>
      m.get(1)!.some((l) => (decode(l as Buffer).get(2)![0] as Buffer).toString().includes('cri-containerd')),
    )!;
    const h = decode(withLabel.get(7)![0] as Buffer);
    assert.equal(h.get(1)![0], 4); // sample_count
    assert.ok(Math.abs((h.get(2)![0] as number) - 5.0020035) < 1e-9); // sample_sum
    assert.equal(h.get(3)!.length, 12); // classic buckets (+Inf implied)
    assert.equal(unzig(h.get(5)![0] as number), 0); // schema
    assert.equal(h.get(6)![0], 256e-9); // zero threshold: the first view bound
    assert.equal(h.get(7)![0], 0); // zero count: waits < 256 ns
    const span = decode(h.get(12)![0] as Buffer);
    // 500 ns is in [256, 512) ns = 2^8: native index 8-29 = -21.
    assert.equal(unzig(span.get(1)![0] as number), -21);

    // Decode the packed deltas by hand.
    const packed = h.get(13)![0] as Buffer;
    const counts: number[] = [];
    let prev = 0;
    for (let i = 0; i < packed.length; ) {
      let v = 0;
      let mul = 1;
      for (;;) {
        const b = packed[i++]!;
        v += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) break;
      }
      prev += unzig(v);
      counts.push(prev);
    }
    assert.equal(span.get(2)![0], counts.length);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      4,
    );
    // 500 ns → -21, 3 µs ([2048, 4096) = 2^11) → -18, 2 ms (2^20) → -9, 5 s (2^32) → 3.
    const at = (idx: number) => counts[idx + 21] ?? 0;
    assert.deepEqual([at(-21), at(-18), at(-9), at(3)], [1, 1, 1, 1]);
  });

  it('nativeOf refuses bounds that are not consecutive powers of two', () => {
    const s = toFamilies(snapshot(), defaultExportOptions()).families.find(
      (f) => f.name === 'cgview_test_export_size',
    )!;
    assert.equal(nativeOf(s.series[0]!), null);
  });
});

describe('negotiation', () => {
  it('picks the highest q of the formats it has; text otherwise', () => {
    assert.equal(negotiate(undefined), 'text');
    assert.equal(negotiate('text/plain'), 'text');
    assert.equal(negotiate('application/json'), 'text');
    assert.equal(negotiate('application/openmetrics-text; version=1.0.0; charset=utf-8'), 'openmetrics');
    // Prometheus 2.42's header, and with native histograms on.
    assert.equal(
      negotiate(
        'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      ),
      'openmetrics',
    );
    assert.equal(
      negotiate(
        'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
      ),
      'protobuf',
    );
    assert.equal(negotiate('application/vnd.google.protobuf;proto=other.Thing'), 'text');
    assert.equal(negotiate('application/openmetrics-text;version=2.0.0'), 'text');
    assert.equal(negotiate('text/plain;q=0.9, application/openmetrics-text;q=0.8'), 'text');
    assert.equal(negotiate('application/openmetrics-text;q=0'), 'text');
    assert.equal(negotiate(',,;;==,'.repeat(1000)), 'text');
  });

  it('gzip when Accept-Encoding allows it', () => {
    assert.equal(wantsGzip('gzip'), true);
    assert.equal(wantsGzip('deflate, gzip;q=0.5'), true);
    assert.equal(wantsGzip('gzip;q=0'), false);
    assert.equal(wantsGzip('identity'), false);
    assert.equal(wantsGzip(undefined), false);
  });

  it('goFloat prints as Go does', () => {
    assert.equal(goFloat(1.024e-6), '1.024e-06');
    assert.equal(goFloat(0.001048576), '0.001048576');
    assert.equal(goFloat(4.294967296), '4.294967296');
    assert.equal(goFloat(1e6), '1e+06');
    assert.equal(goFloat(999999), '999999');
    assert.equal(goFloat(1e-5), '1e-05');
    assert.equal(goFloat(0.0001), '0.0001');
  });
});

describe('odd view output', () => {
  it('keys that are no metric names are made ones; a name printed twice is one series; broken lines are errors', () => {
    const snap: Snapshot = {
      at: 0,
      monoNs: 0n,
      stats: { ms: 0, files: 0, bulk: 0, readErrors: 0 },
      cgroups: [
        cg('/x', 9, { odd: 'cgroup_id: 9\nalpha.beta-gamma: 1\ndelta_ns: 2000\ndelta_seconds: 5\n' }),
      ],
    };
    const s = parseExposition(renderText(toFamilies(snap, defaultExportOptions()).families, false));
    assert.equal(pick(s, 'cgview_odd_alpha_beta_gamma', {})[0]!.value, 1);
    assert.deepEqual(
      pick(s, 'cgview_odd_delta_seconds', {}).map((x) => x.value),
      [2e-6],
    );
    assert.equal(
      promtoolCheckMetrics(renderText(toFamilies(snap, defaultExportOptions()).families, false)).output,
      '',
    );
    assert.equal(parseLines('a b: 1\n'), null);
    assert.equal(parseLines('1a: 1\n'), null);
    assert.equal(parseLines(': 1\n'), null);
    assert.equal(parseLines('a: 1\na: 2\n'), null);
    assert.deepEqual(
      [...parseLines('a.b-c:  x y\nd:\n')!],
      [
        ['a.b-c', 'x y'],
        ['d', ''],
      ],
    );
  });
});

describe('series kept from one scrape to the next', () => {
  it('an unchanged cgroup reuses its lines; a changed one is rendered anew, in every format', () => {
    const labels = { unit: 'k.scope' };
    const mk = (waits: number[], depth: number) => {
      const c = cg(
        '/k.scope',
        11,
        { sched_lat: schedLat(11, waits), test_export: `cgroup_id: 11\ndepth: ${depth}\n` },
        labels,
      );
      return {
        at: 0,
        monoNs: 0n,
        stats: { ms: 0, files: 0, bulk: 0, readErrors: 0 },
        cgroups: [c],
      } as Snapshot;
    };
    const o = defaultExportOptions();
    const a1 = toFamilies(mk([500, 3000], 1), o).families;
    const t1 = renderText(a1, false);
    const p1 = renderProtobuf(a1);
    const a2 = toFamilies(mk([500, 3000], 1), o).families;
    assert.equal(renderText(a2, false), t1);
    assert.deepEqual(renderProtobuf(a2), p1);
    const hist = (f: typeof a1) => f.find((x) => x.name === 'cgview_sched_lat_wait_seconds')!.series[0]!;
    assert.equal(hist(a2), hist(a1)); // the same object: its lines are kept
    const a3 = toFamilies(mk([500, 3000, 2e6], 2), o).families;
    assert.notEqual(hist(a3), hist(a1));
    const s3 = parseExposition(renderText(a3, false));
    assert.equal(pick(s3, 'cgview_sched_lat_wait_seconds_count', {})[0]!.value, 3);
    assert.equal(pick(s3, 'cgview_test_export_depth', {})[0]!.value, 2);
    const om3 = parseExposition(renderText(a3, true));
    assert.equal(pick(om3, 'cgview_sched_lat_wait_seconds_count', {})[0]!.value, 3);
    const n3 = delimited(renderProtobuf(a3));
    const h = n3.find((f) => (f.get(1)![0] as Buffer).toString() === 'cgview_sched_lat_wait_seconds')!;
    assert.equal(decode(decode(h.get(4)![0] as Buffer).get(7)![0] as Buffer).get(1)![0], 3);
  });
});

describe('cgroup names that are not UTF-8', () => {
  it('utf8() is reversible: no two names read the same; valid names without \\\\ or \\x80…\\xff read as they are', () => {
    const latin1 = (b: number[]) => Buffer.from(b).toString('latin1');
    assert.equal(utf8(latin1([0x62, 0x61, 0x64, 0xff])), 'bad\\xff');
    assert.equal(utf8(latin1([0x62, 0x61, 0x64, 0xfe])), 'bad\\xfe');
    assert.equal(utf8(latin1([0x62, 0x61, 0x64, 0xef, 0xbf, 0xbd])), 'bad\uFFFD');
    assert.equal(utf8('system-systemd\\x2dfsck.slice'), 'system-systemd\\x2dfsck.slice');
    assert.equal(utf8('odd "name\\'), 'odd "name\\');
    assert.equal(utf8('bad\\xff'), 'bad\\\\xff');
    assert.equal(utf8('a\\\\b'), 'a\\\\\\\\b');
    assert.equal(utf8(latin1([0xc3, 0xa4])), 'ä');
    // Random byte strings (biased to backslashes, x, hex digits and high bytes): inverse, and distinct.
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = [
      0x5c, 0x78, 0x66, 0x38, 0x61, 0xc3, 0xa4, 0xff, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0x80, 0xf0, 0x2d,
    ];
    const seen = new Map<string, string>();
    for (let i = 0; i < 20000; i++) {
      const len = rnd() % 7;
      const name = latin1(Array.from({ length: len }, () => alphabet[rnd() % alphabet.length]!));
      const l = utf8(name);
      assert.equal(unlabelPath(l), name, JSON.stringify(name));
      assert.ok(Buffer.from(l, 'utf8').toString('utf8') === l && !l.includes('\uFFFD'));
      const other = seen.get(l);
      assert.ok(other === undefined || other === name);
      seen.set(l, name);
    }
  });
});

describe('name clashes', () => {
  it('a family whose names (any sample name, OpenMetrics base name) meet an earlier one is left out and counted', () => {
    const snap: Snapshot = {
      at: 0,
      monoNs: 0n,
      stats: { ms: 0, files: 0, bulk: 0, readErrors: 0 },
      cgroups: [
        cg('/c', 9, {
          myv: 'cgroup_id: 9\nx: 1\nx_total: 2\nlat_lt_10: 1\nlat_lt_inf: 3\nlat_bucket: 7\n',
          aa: 'cgroup_id: 9\nbb_cc: 4\n',
          aa_bb: 'cgroup_id: 9\ncc: 5\n',
        }),
      ],
    };
    const conv = toFamilies(snap, defaultExportOptions());
    assert.equal(conv.conflicts, 3);
    assert.deepEqual(
      conv.refused.map((r) => [r.name, r.view, r.key, r.cgroup, r.owner]),
      [
        ['cgview_myv_x_total', 'myv', 'x_total', '/c', 'cgview_myv_x'],
        ['cgview_myv_lat_bucket', 'myv', 'lat_bucket', '/c', 'cgview_myv_lat'],
        ['cgview_aa_bb_cc', 'aa_bb', 'cc', '/c', 'cgview_aa_bb_cc'],
      ],
    );
    const om = renderText(conv.families, true);
    const types = [...om.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    assert.equal(new Set(types).size, types.length);
    assert.deepEqual(types, ['cgview_myv_x', 'cgview_myv_lat', 'cgview_aa_bb_cc']);
    const text = renderText(conv.families, false);
    assert.equal(promtoolCheckMetrics(text).output, '');
    // Every sample name belongs to one family only.
    const s = parseExposition(text);
    assert.deepEqual(
      pick(s, 'cgview_myv_lat_bucket', {}).map((x) => x.labels['le']),
      ['10', '+Inf'],
    );
    assert.equal(pick(s, 'cgview_aa_bb_cc', {})[0]!.value, 4);
  });

  it("a user object's view never makes a built-in's or the daemon's names", () => {
    for (const [p, b, want] of [
      ['sched_lat', true, 'sched_lat'],
      ['info', true, 'info'],
      ['sched_lat', false, 'user_sched_lat'],
      ['sched', false, 'user_sched'],
      ['sched_lat_x', false, 'user_sched_lat_x'],
      ['cgroup', false, 'user_cgroup'],
      ['daemon', false, 'user_daemon'],
      ['cpu', false, 'user_cpu'],
      ['info', false, 'user_info'],
      ['test_export', false, 'test_export'],
      ['ctxsw', false, 'ctxsw'],
      ['cpux', false, 'cpux'],
    ] as const)
      assert.equal(exportViewName(p, b), want, `${p} ${b}`);
  });
});
