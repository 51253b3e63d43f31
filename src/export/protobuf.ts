/**
 * The protobuf exposition: varint-delimited io.prometheus.client.MetricFamily
 * messages (prometheus/client_model metrics.proto), hand-encoded. Histograms
 * carry classic buckets and, where the view's bounds are consecutive powers of
 * two, a native histogram of schema 0 (docs/metrics.md "Native histograms").
 */
import { type Family, type Series, toBase } from './families.js';
import { joinPieces, type Piece } from './pieces.js';
import { type Block, blockEnd, keptBlock } from './text.js';

/** A growable protobuf writer. */
class W {
  buf: Buffer;
  pos = 0;
  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reset(): this {
    this.pos = 0;
    return this;
  }
  need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  varint(v: number): void {
    this.need(10);
    // Numbers up to 2^53 exactly: 7 bits at a time with division beyond 2^31.
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  uint(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }
  /** sint32/sint64 (zigzag). */
  sint(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    this.need(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  string(field: number, s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.tag(field, 2);
    this.varint(n);
    this.need(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }
  /** A nested message written by `sub` into `tmp`: tag, length, bytes. */
  message(field: number, tmp: W): void {
    this.tag(field, 2);
    this.varint(tmp.pos);
    this.need(tmp.pos);
    tmp.buf.copy(this.buf, this.pos, 0, tmp.pos);
    this.pos += tmp.pos;
  }
}

// MetricType
const COUNTER = 0;
const GAUGE = 1;
const HISTOGRAM = 4;

/** A native histogram of schema 0 from a series' full view histogram, or null when its bounds do not allow one. */
export interface Native {
  zeroThreshold: number;
  zeroCount: number;
  /** Index of the first positive bucket and the counts (not cumulative) from there on. */
  offset: number;
  counts: number[];
}

/**
 * Schema 0: bucket i holds (2^(i-1), 2^i]. A view bucket [2^k, 2^(k+1)) in
 * view units is (2^(k+1)·scale/2, 2^(k+1)·scale] in the metric's unit up to
 * the factor s = scale / 2^round(log2 scale) (for ns → s: 2^30·1e-9 ≈ 1.074):
 * it becomes native bucket k+1+round(log2 scale), i.e. bounds 7.4 % low for
 * nanosecond views. The first view bucket [0, b0) is the zero bucket
 * (threshold b0 in the metric's unit), observations beyond the last bound go
 * to the next native bucket up.
 */
export function nativeOf(s: Series): Native | null {
  const h = s.hist?.all;
  if (!h || h.bounds.length < 2) return null;
  const e0 = Math.log2(h.bounds[0]!);
  if (!Number.isInteger(e0)) return null;
  for (let i = 1; i < h.bounds.length; i++) if (h.bounds[i] !== h.bounds[i - 1]! * 2) return null;
  const shift = Math.round(Math.log2(s.hist!.scale));
  const counts: number[] = [];
  let prev = 0;
  let zero = 0;
  const total = s.hist!.count;
  for (let i = 0; i <= h.bounds.length; i++) {
    const cum = Math.min(total, Math.max(prev, i < h.bounds.length ? h.cum[i]! : total));
    if (i === 0) zero = cum;
    else counts.push(cum - prev);
    prev = cum;
  }
  // counts[j] is view bucket [bounds[j], bounds[j+1]) (the last: [bounds[last], ∞)): upper 2^(e0+j+1).
  let first = counts.findIndex((c) => c > 0);
  let last = counts.length - 1;
  while (last >= 0 && counts[last] === 0) last--;
  if (first < 0) first = last = -1;
  return {
    zeroThreshold: toBase(h.bounds[0]!, s.hist!.scale),
    zeroCount: zero,
    offset: first < 0 ? 0 : e0 + first + 1 + shift,
    counts: first < 0 ? [] : counts.slice(first, last + 1),
  };
}

/** Encodes families as delimited MetricFamily messages. */
export function renderProtobuf(families: readonly Family[]): Buffer {
  return joinPieces(renderProtobufPieces(families));
}

/** The kept block starting with a series (see text.ts): a block of the same Series objects is the same piece. */
const pblocks = new WeakMap<Series, Block>();

/** The Metric message of one series, in `met`. */
function metricOf(f: Family, s: Series, met: W, sub: W, item: W): void {
  met.reset();
  for (const [k, v] of s.pairs) {
    item.reset();
    item.string(1, k);
    item.string(2, v);
    met.message(1, item);
  }
  sub.reset();
  if (f.kind === 'histogram') {
    histogram(sub, item, s);
    met.message(7, sub);
  } else {
    sub.double(1, s.value);
    met.message(f.kind === 'counter' ? 3 : 2, sub);
  }
}

/**
 * Delimited MetricFamily messages as pieces: per family its length prefix
 * and header fields, then its Metric fields in blocks of BLOCK series (a
 * repeated field is the concatenation of its entries, so a family's message
 * may be cut anywhere between them); a block of the same Series objects as
 * the last render's at that place is the last render's piece.
 */
export function renderProtobufPieces(families: readonly Family[]): Piece[] {
  const out: Piece[] = [];
  const head = new W(256);
  const pre = new W(16);
  const blk = new W(1 << 16);
  const met = new W(1024);
  const sub = new W(1024);
  const item = new W(64);
  for (const f of families) {
    if (f.series.length === 0) continue;
    head.reset();
    head.string(1, f.name);
    if (f.help) head.string(2, f.help);
    head.uint(3, f.kind === 'counter' ? COUNTER : f.kind === 'histogram' ? HISTOGRAM : GAUGE);
    const mine: Block[] = [];
    let len = head.pos;
    for (let at = 0; at < f.series.length; ) {
      const end = blockEnd(f.series, at);
      let b = keptBlock(pblocks, f.series, at, end);
      if (!b) {
        blk.reset();
        for (let i = at; i < end; i++) {
          metricOf(f, f.series[i]!, met, sub, item);
          blk.message(4, met);
        }
        b = { series: f.series.slice(at, end), piece: { buf: Buffer.from(blk.buf.subarray(0, blk.pos)) } };
        pblocks.set(f.series[at]!, b);
      }
      mine.push(b);
      len += b.piece.buf.length;
      at = end;
    }
    pre.reset();
    pre.varint(len);
    out.push({ buf: Buffer.concat([pre.buf.subarray(0, pre.pos), head.buf.subarray(0, head.pos)]) });
    for (const b of mine) out.push(b.piece);
  }
  return out;
}

function histogram(w: W, item: W, s: Series): void {
  const h = s.hist!;
  w.uint(1, h.count);
  w.double(2, h.sum ?? 0);
  for (let j = 0; j < h.le.length; j++) {
    item.reset();
    item.uint(1, h.cum[j]!);
    item.double(2, h.le[j]!);
    w.message(3, item);
  }
  const n = nativeOf(s);
  if (!n) return;
  w.sint(5, 0); // schema
  w.double(6, n.zeroThreshold);
  w.uint(7, n.zeroCount);
  if (n.counts.length === 0) return;
  item.reset();
  item.sint(1, n.offset);
  item.uint(2, n.counts.length);
  w.message(12, item);
  // positive_delta: packed sint64, each count minus the one before.
  item.reset();
  let prev = 0;
  for (const c of n.counts) {
    item.varint(c - prev >= 0 ? (c - prev) * 2 : -(c - prev) * 2 - 1);
    prev = c;
  }
  w.message(13, item);
}
