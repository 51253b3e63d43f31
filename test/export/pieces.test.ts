/**
 * Kept pieces (src/export/pieces.ts, text.ts, protobuf.ts, families.ts):
 *
 *   - the gzip body of pieces is ONE gzip member (a raw inflate of its
 *     deflate data ends at the final block exactly) whose bytes are the
 *     joined pieces, and its CRC-32 (combined from the pieces') is right;
 *   - a conversion of samples that did not change (the same objects, as the
 *     bulk reader hands them out) gives the same Series objects and the same
 *     block pieces; one cgroup that moves changes only its own series and
 *     block, and every body (text, OpenMetrics, protobuf, gzip) equals a
 *     fresh render of new objects with the same numbers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { resetBases, toFamilies } from '../../src/export/families.js';
import { defaultExportOptions } from '../../src/export/options.js';
import { crc32Combine, gzipPieces, joinPieces, type Piece } from '../../src/export/pieces.js';
import { renderProtobuf, renderProtobufPieces } from '../../src/export/protobuf.js';
import { type CgroupSnap, parseLines, type Snapshot } from '../../src/export/snapshot.js';
import { BLOCK, renderTextBuffer, renderTextPieces } from '../../src/export/text.js';
import { classifyView, type ViewSample } from '../../src/stats/keys.js';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The body's deflate data, inflated raw: throws unless it ends with a final block; one member then. */
function oneMember(gz: Buffer): Buffer {
  assert.deepEqual([...gz.subarray(0, 3)], [0x1f, 0x8b, 8], 'gzip header');
  const plain = zlib.inflateRawSync(gz.subarray(10, gz.length - 8), { finishFlush: zlib.constants.Z_FINISH });
  assert.equal(gz.readUInt32LE(gz.length - 8), zlib.crc32(plain), 'CRC-32');
  assert.equal(gz.readUInt32LE(gz.length - 4), plain.length % 2 ** 32, 'ISIZE');
  return plain;
}

describe('pieces', () => {
  it('crc32Combine = the CRC-32 of the concatenation', () => {
    const r = rng(3);
    for (let t = 0; t < 50; t++) {
      const a = Buffer.from(Array.from({ length: r() % 3000 }, () => r() & 255));
      const b = Buffer.from(Array.from({ length: r() % 3000 }, () => r() & 255));
      assert.equal(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length), zlib.crc32(Buffer.concat([a, b])));
    }
  });

  it('gzipPieces is one gzip stream of the joined pieces; kept pieces are not compressed again', () => {
    const r = rng(5);
    const pieces: Piece[] = Array.from({ length: 40 }, (_, i) => ({
      buf: Buffer.from(
        i % 7 === 3 ? '' : Array.from({ length: r() % 5000 }, () => `x${r() % 100} `).join(''),
        'utf8',
      ),
    }));
    const gz = gzipPieces(pieces, 1);
    assert.ok(oneMember(gz).equals(joinPieces(pieces)));
    assert.ok(zlib.gunzipSync(gz).equals(joinPieces(pieces)), "node's gunzip agrees");
    const z = pieces.map((p) => p.z);
    pieces[5] = { buf: Buffer.from('changed\n') };
    const gz2 = gzipPieces(pieces, 1);
    assert.ok(oneMember(gz2).equals(joinPieces(pieces)));
    pieces.forEach((p, i) => {
      if (i !== 5 && p.buf.length) assert.equal(p.z, z[i], `piece ${i} kept its deflate output`);
    });
    assert.ok(oneMember(gzipPieces([], 1)).equals(Buffer.alloc(0)), 'an empty body');
  });
});

/** sched_lat as printed, for a cgroup with these waits (ns). */
function schedLat(id: number, waits: number[]): Map<string, string> {
  const bounds = Array.from({ length: 32 }, (_, i) => 2 ** (8 + i));
  const sum = waits.reduce((a, b) => a + b, 0);
  const lines = [
    `cgroup_id: ${id}`,
    `queue_self: ${Math.max(0, ...waits)}`,
    'queue_other: 0',
    `wait_count: ${waits.length}`,
    `wait_ns_total: ${sum}`,
    `queue_self_ns_total: ${sum}`,
    'queue_other_ns_total: 0',
    `queue_self_max_ns: ${Math.max(0, ...waits)}`,
    'queue_other_max_ns: 0',
    ...bounds.map((b) => `wait_ns_lt_${b}: ${waits.filter((w) => w < b).length}`),
    `wait_ns_lt_inf: ${waits.length}`,
    'p50_ns: 0',
    'p90_ns: 0',
    'p99_ns: 0',
  ];
  return parseLines(`${lines.join('\n')}\n`)!;
}

describe('kept series and blocks', () => {
  const N = 3 * BLOCK + 17;
  const waits: number[][] = Array.from({ length: N }, (_, i) => (i % 3 ? [] : [1000 * i, 5e6]));
  const labels = Array.from({ length: N }, (_, i) => ({ unit: `c${i}.scope` }));
  const info = Array.from({ length: N }, (_, i) =>
    classifyView(
      new Map([
        ['cgroup_id', String(i + 10)],
        ['level', '2'],
        ['name', `c${i}.scope`],
      ]),
    ),
  );
  const snap = (samples: ViewSample[]): Snapshot => ({
    at: Date.now(),
    monoNs: 0n,
    stats: { ms: 0, files: 0, bulk: 0, readErrors: 0 },
    cgroups: samples.map(
      (s, i): CgroupSnap => ({
        tree: '/sys/fs/bpf/t',
        rel: `g/c${i}.scope`,
        path: `/g/c${i}.scope`,
        hierarchy: 'v2',
        id: String(i + 10),
        level: 2,
        labels: labels[i]!,
        views: new Map([
          ['info', info[i]!],
          ['sched_lat', s],
        ]),
      }),
    ),
  });
  const fresh = () => waits.map((w, i) => classifyView(schedLat(i + 10, w)));

  it('the same samples: the same series and pieces; one that moves: only its own, and bodies = a fresh render', () => {
    resetBases();
    const opts = defaultExportOptions();
    const samples = fresh();
    const a = toFamilies(snap(samples), opts).families;
    const ta = renderTextPieces(a, false);
    const pa = renderProtobufPieces(a);
    const b = toFamilies(snap(samples), opts).families;
    for (let f = 0; f < a.length; f++)
      a[f]!.series.forEach((s, i) => {
        assert.equal(b[f]!.series[i], s, `${a[f]!.name} ${i}: same object`);
      });
    const tb = renderTextPieces(b, false);
    assert.equal(tb.length, ta.length);
    tb.forEach((p, i) => {
      assert.ok(p === ta[i] || p.buf.length < 1024, `text piece ${i} kept`);
    });
    renderProtobufPieces(b).forEach((p, i) => {
      assert.ok(p === pa[i] || p.buf.length < 512, `pb piece ${i} kept`);
    });

    // Cgroup BLOCK + 5 waits once more: a new sample object for it alone.
    const moved = BLOCK + 5;
    waits[moved] = [...waits[moved]!, 77777];
    const next = samples.slice();
    next[moved] = classifyView(schedLat(moved + 10, waits[moved]!));
    const c = toFamilies(snap(next), opts).families;
    const hist = c.find((f) => f.name === 'cgview_sched_lat_wait_seconds')!;
    const histB = b.find((f) => f.name === 'cgview_sched_lat_wait_seconds')!;
    hist.series.forEach((s, i) => {
      i === moved ? assert.notEqual(s, histB.series[i]) : assert.equal(s, histB.series[i]);
    });
    const tc = renderTextPieces(c, false);
    const changed = tc.filter((p, i) => p !== tb[i] && p.buf.length >= 1024).length;
    assert.ok(
      changed >= 1 && changed <= 3,
      `${changed} blocks rendered again (the moved cgroup's, per family it changed)`,
    );

    // Every body equals the bodies of new objects with the same numbers, from a conversion with nothing kept.
    const bodies = (fams: typeof c) => [
      renderTextBuffer(fams, false),
      renderTextBuffer(fams, true),
      renderProtobuf(fams),
      oneMember(gzipPieces(renderTextPieces(fams, false))),
      oneMember(gzipPieces(renderProtobufPieces(fams))),
    ];
    const kept = bodies(c);
    resetBases();
    const want = bodies(toFamilies(snap(fresh()), opts).families);
    kept.forEach((k, i) => {
      assert.ok(k.equals(want[i]!), `body ${i} = a fresh render`);
    });
  });
});
