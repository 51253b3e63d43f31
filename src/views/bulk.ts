/**
 * The fast read path: every cgroup's sample of a view in one go, for the
 * exporter and the other readers of many cgroups at once (issue 9 item 6).
 *
 * Reading the view files costs 20-36 µs per cgroup from Node. For
 * `sched_lat` and `sched_lat_tree` the data is in the collector's maps, so a
 * helper object (bpf/sched_lat_bulk.bpf.c) walks the whole hierarchy in one
 * read() of a cgroup iterator and copies each cgroup's `struct sl_stats`
 * into an array, which one BPF_MAP_LOOKUP_BATCH brings to user space. The
 * collector is untouched (no cost on the scheduler path), and the lookup is
 * the sched_lat view's own (bpf/sched_lat_view.h cg_lookup), so the values
 * are the ones the view file would print at that instant.
 *
 * `read()` gives, per cgroup id (decimal string, as printed in `cgroup_id`),
 * the same ViewSample (src/stats/keys.ts) that
 * `classifyView(parseViewOutput(<the view file>))` gives for that cgroup:
 * the converter is derived once from classifyView on the view's own key
 * layout (`schedLatLines`), so names, kinds, scales and order match by
 * construction (test/views/bulk.test.ts checks both against the files).
 *
 * `sched_lat_tree` is computed in user space from the same walk: the
 * records come in pre-order with their parent's id, so each cgroup's
 * subtree sum is one pass from the end (sums exact up to 2^64, maxima max),
 * as the view sums the descendants' stats in BPF.
 *
 * `info` has its own helper object (bpf/info_bulk.bpf.c: id, level, name,
 * hierarchy id) and needs no collector.
 *
 * Which cgroups: every cgroup of the hierarchy (all of cgroup v2, or of the
 * v1 hierarchy with that id), whether or not a view is pinned on it; the
 * caller picks the ones it exports. An id may be reused by another
 * hierarchy, so a reader is per hierarchy. User views: null (read their
 * files). The samples of one read share their histogram `bounds` (frozen),
 * sched_lat's empty `text` Map, and the cgroups without any wait one frozen
 * `metrics` array: not to be written to.
 *
 * A reader holds the collector's maps (its helper object reuses them) until
 * the collector stops (Collectors.onStop), its next read() sees it
 * restarted, or close().
 */
import fs from 'node:fs';
import path from 'node:path';
import { cgroup2Root, cgroupMounts, hierarchyIdOf, mountOf } from '../cgroup/hierarchy.js';
import { CgviewError } from '../errors.js';
import { CGV_BULK_HDR, INFO_BULK_REC, SL_BULK_REC, SL_HIST_BUCKETS, SL_STATS } from '../kernel/abi.js';
import { bpfBuildDir } from '../kernel/features.js';
import { BpfObject, type Fd, type Link, openDir } from '../kernel/index.js';
import { classifyView, type Histogram, type Metric, type ViewSample } from '../stats/keys.js';
import { collectorInstance } from './collectors.js';

/** What a bulk reader needs of the collectors (Collectors implements it). */
export interface BulkCollectors {
  /** The running instance's shared maps, without starting it (see Collectors.sharedMaps). */
  sharedMaps(instance: string): Readonly<Record<string, Fd>> | undefined;
  /** Called when an instance stops (Collectors.onStop): its readers let go of its maps at once. */
  onStop?(fn: (instance: string) => void): void;
}

export interface BulkReader {
  readonly view: string;
  readonly hierarchyId: number;
  /**
   * One sample per cgroup of the hierarchy, by cgroup id. Empty when the
   * view's collector does not run in this daemon (then no cgroup has the
   * view pinned). Throws E_SYSCALL / E_LOAD / E_VERIFIER (the helper object),
   * E_NOT_FOUND when opts.root is gone.
   */
  read(): Map<string, ViewSample>;
  /** Unloads the helper object. read() loads it again. */
  close(): void;
  /** How many samples the last read() handed out again unchanged (same object as the read before). */
  readonly reused: number;
}

/** Collector maps the helper object reads (reused by name, as the views do). */
const SHARED = ['sl_cgrp', 'sl_cg_v1'];
/** First size of the output array; it grows to 1.25 x the cgroups seen (next power of two). */
const FIRST_CAPACITY = 1024;
/** The most cgroups one reader follows (the output array then holds 1M * 384 bytes). */
const MAX_CAPACITY = 1 << 20;

// --- the view's layout ----------------------------------------------------------------

/** Histogram lines the sched_lat views print: wait_ns_lt_2^8 .. wait_ns_lt_2^39 (bpf/sched_lat_view.h). */
const PRINT_MIN_LOG2 = 8;

/** Exact u64 percentile as the views compute it (bpf/sched_lat_view.h percentile). */
function percentile(hist: readonly bigint[], total: bigint, pct: bigint): bigint {
  if (total === 0n) return 0n;
  const target = (total * pct + 99n) / 100n;
  let cum = 0n;
  for (let i = 0; i < hist.length; i++) {
    const n = hist[i]!;
    if (cum + n >= target && n) {
      const lo = i ? 1n << BigInt(i) : 0n;
      const width = i ? 1n << BigInt(i) : 2n;
      if (i === hist.length - 1) return lo;
      return lo + (width * (target - cum)) / n;
    }
    cum += n;
  }
  return 0n;
}

/**
 * The `key: value` lines a sched_lat view prints for these stats, in order
 * (bpf/sched_lat_view.h print_stats), as parseViewOutput gives them. Exact
 * (bigint). The reference the fast converter is derived from and tested
 * against; not on the hot path.
 */
export function schedLatLines(id: bigint | string, st: SlStatsBig): Map<string, string> {
  const m = new Map<string, string>();
  m.set('cgroup_id', String(id));
  m.set('queue_self', String(st.selfMaxNs));
  m.set('queue_other', String(st.otherMaxNs));
  m.set('wait_count', String(st.waitCount));
  m.set('wait_ns_total', String(st.waitNsTotal));
  m.set('queue_self_ns_total', String(st.selfNsTotal));
  m.set('queue_other_ns_total', String(st.otherNsTotal));
  m.set('queue_self_max_ns', String(st.selfMaxNs));
  m.set('queue_other_max_ns', String(st.otherMaxNs));
  let cum = 0n;
  for (let i = 0; i < st.hist.length; i++) {
    cum += st.hist[i]!;
    if (i + 1 >= PRINT_MIN_LOG2 && i < st.hist.length - 1)
      m.set(`wait_ns_lt_${1n << BigInt(i + 1)}`, String(cum));
  }
  m.set('wait_ns_lt_inf', String(cum));
  m.set('p50_ns', String(percentile(st.hist, cum, 50n)));
  m.set('p90_ns', String(percentile(st.hist, cum, 90n)));
  m.set('p99_ns', String(percentile(st.hist, cum, 99n)));
  return m;
}

/** struct sl_stats with exact values (tests and the reference lines). */
export interface SlStatsBig {
  waitCount: bigint;
  waitNsTotal: bigint;
  selfNsTotal: bigint;
  otherNsTotal: bigint;
  selfMaxNs: bigint;
  otherMaxNs: bigint;
  hist: bigint[];
}

/** Decodes a struct sl_stats at `off` exactly (tests). */
export function decodeSlStatsBig(b: Buffer, off = 0): SlStatsBig {
  const S = SL_STATS;
  const u = (o: number) => b.readBigUInt64LE(off + o);
  const hist: bigint[] = [];
  for (let i = 0; i < SL_HIST_BUCKETS; i++) hist.push(u(S.hist.off + 8 * i));
  return {
    waitCount: u(S.waitCount.off),
    waitNsTotal: u(S.waitNsTotal.off),
    selfNsTotal: u(S.selfNsTotal.off),
    otherNsTotal: u(S.otherNsTotal.off),
    selfMaxNs: u(S.selfMaxNs.off),
    otherMaxNs: u(S.otherMaxNs.off),
    hist,
  };
}

/**
 * Field index (in u64 words of struct sl_stats) of each counter or gauge
 * key the view prints; histogram lines come from `hist`.
 */
const KEY_WORD: Readonly<Record<string, number>> = {
  wait_count: SL_STATS.waitCount.off / 8,
  wait_ns_total: SL_STATS.waitNsTotal.off / 8,
  queue_self_ns_total: SL_STATS.selfNsTotal.off / 8,
  queue_other_ns_total: SL_STATS.otherNsTotal.off / 8,
  queue_self_max_ns: SL_STATS.selfMaxNs.off / 8,
  queue_other_max_ns: SL_STATS.otherMaxNs.off / 8,
  queue_self: SL_STATS.selfMaxNs.off / 8,
  queue_other: SL_STATS.otherMaxNs.off / 8,
};
const WORDS = SL_STATS.size / 8;
const HIST_WORD = SL_STATS.hist.off / 8;

/** One step of the converter: a metric of the template and where its value comes from. */
type Step =
  | { kind: 'scalar'; tpl: Metric; word: number }
  | { kind: 'hist'; tpl: Metric; sumWord: number | undefined; bounds: number[] };

/**
 * The converter from struct sl_stats words to ViewSample, derived from
 * classifyView on the view's own lines (with all-zero stats): the metrics,
 * their order, names, kinds and scales are classifyView's. Throws if the
 * conventions name a key this reader cannot source (a layout change).
 */
function buildSteps(): Step[] {
  const zero: SlStatsBig = {
    waitCount: 0n,
    waitNsTotal: 0n,
    selfNsTotal: 0n,
    otherNsTotal: 0n,
    selfMaxNs: 0n,
    otherMaxNs: 0n,
    hist: new Array<bigint>(SL_HIST_BUCKETS).fill(0n),
  };
  const lines = schedLatLines(0n, zero);
  const tpl = classifyView(lines);
  if (tpl.text.size) throw new Error(`bulk: sched_lat has text lines ${[...tpl.text.keys()].join(',')}`);
  return tpl.metrics.map((m): Step => {
    if (m.kind === 'histogram') {
      if (m.key !== 'wait_ns' || !m.hist) throw new Error(`bulk: unexpected histogram ${m.key}`);
      const sumWord = m.hist.sum === undefined ? undefined : KEY_WORD.wait_ns_total;
      // Shared by every sample (frozen: a consumer that writes to it throws, none does).
      const bounds = Object.freeze(m.hist.bounds.slice()) as number[];
      // The bounds must be the printed 2^(PRINT_MIN_LOG2) .. 2^(buckets-1).
      bounds.forEach((b, i) => {
        if (b !== 2 ** (PRINT_MIN_LOG2 + i)) throw new Error(`bulk: histogram bound ${b} at ${i}`);
      });
      return { kind: 'hist', tpl: m, sumWord, bounds };
    }
    const word = KEY_WORD[m.key];
    if (word === undefined || m.labels) throw new Error(`bulk: no source for sched_lat key ${m.key}`);
    return { kind: 'scalar', tpl: m, word };
  });
}

let stepsCache: Step[] | undefined;
function steps(): Step[] {
  stepsCache ??= buildSteps();
  return stepsCache;
}

/** sched_lat prints no text line: every sample shares this empty Map (not to be written to). */
const NO_TEXT: Map<string, string> = new Map();

/** Deep-freezes an object graph (arrays and plain objects). */
function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

let zeroCache: Metric[] | undefined;
/**
 * The metrics of a cgroup without any wait (most cgroups of a big host have
 * none in a given view): one frozen copy shared by all of their samples.
 */
function zeroMetrics(): Metric[] {
  if (!zeroCache) {
    const v = new Float64Array(WORDS);
    v[0] = 1; // not zero, so that sampleOf builds them
    const m = sampleOf('0', v, 0).metrics;
    for (const x of m) {
      x.value = 0;
      if (x.hist) {
        x.hist.cum.fill(0);
        x.hist.count = 0;
        x.hist.sum = x.hist.sum === undefined ? undefined : 0;
      }
    }
    zeroCache = deepFreeze(m);
  }
  return zeroCache;
}

/**
 * The ViewSample of one cgroup from its stats words (`v[base .. base+WORDS)`,
 * doubles): what classifyView(schedLatLines(id, stats)) gives.
 */
function sampleOf(id: string, v: Float64Array, base: number): ViewSample {
  let zero = true;
  for (let w = 0; w < WORDS && zero; w++) zero = v[base + w] === 0;
  if (zero) return { id, metrics: zeroMetrics(), text: NO_TEXT };
  const metrics: Metric[] = [];
  for (const s of steps()) {
    const t = s.tpl;
    if (s.kind === 'scalar') {
      metrics.push({ key: t.key, name: t.name, kind: t.kind, scale: t.scale, value: v[base + s.word]! });
      continue;
    }
    // cum[i] = waits < 2^(PRINT_MIN_LOG2+i): buckets 0 .. PRINT_MIN_LOG2+i-1.
    const cum: number[] = new Array(s.bounds.length);
    let c = 0;
    for (let i = 0; i < PRINT_MIN_LOG2 - 1; i++) c += v[base + HIST_WORD + i]!;
    for (let i = 0; i < s.bounds.length; i++) {
      c += v[base + HIST_WORD + PRINT_MIN_LOG2 - 1 + i]!;
      cum[i] = c;
    }
    c += v[base + HIST_WORD + SL_HIST_BUCKETS - 1]!;
    const hist: Histogram = {
      bounds: s.bounds,
      cum,
      count: c,
      sum: s.sumWord === undefined ? undefined : v[base + s.sumWord]!,
    };
    metrics.push({ key: t.key, name: t.name, kind: t.kind, scale: t.scale, value: c, hist });
  }
  return { id, metrics, text: NO_TEXT };
}

/*
 * Exactness: the histogram's cumulative counts are sums of doubles; they
 * equal the printed (u64) ones while they stay below 2^53 waits (always, in
 * practice). Counter values above 2^53 are correctly rounded, as Number() of
 * the printed decimal is.
 */

// --- decoding a walk -------------------------------------------------------------------

const TWO32 = 4294967296;
const MAX_WORDS = [SL_STATS.selfMaxNs.off / 8, SL_STATS.otherMaxNs.off / 8];

/** Ids above 2^53 do not occur (kernfs ids count up from 1); refused rather than rounded. */
function checkIds(u: Uint32Array, n: number): void {
  const R = SL_BULK_REC.size / 4;
  for (let i = 0; i < n; i++) {
    const o = i * R;
    if (u[o + SL_BULK_REC.id.off / 4 + 1]! >= 1 << 21 || u[o + SL_BULK_REC.parentId.off / 4 + 1]! >= 1 << 21)
      throw new CgviewError('E_NOT_SUPPORTED', 'bulk read: a cgroup id above 2^53');
  }
}

/** A walk lists each cgroup once (bpf/bulk.h cgv_bulk_slot): anything else is a broken helper object. */
function twice(id: string): CgviewError {
  return new CgviewError('E_SYSCALL', `bulk read: cgroup ${id} twice in one walk`);
}

/**
 * Samples kept from one read to the next: a cgroup whose bytes (its record,
 * or for sched_lat_tree its subtree's summed words) are the same as at the
 * last read gets the SAME frozen ViewSample object again, so decoding
 * happens only for the cgroups that moved, and a consumer can tell an idle
 * cgroup by identity (===). Not to be written to (frozen).
 */
export class Reuse {
  #prev = Buffer.alloc(0);
  #prevIdx = new Map<string, number>();
  #prevS: ViewSample[] = [];
  #cur = Buffer.alloc(0);
  #curIdx = new Map<string, number>();
  #curS: ViewSample[] = [];
  #size = 0;
  #w = 0;
  /** Samples handed out again at the last read (tests, bench). */
  reused = 0;

  begin(n: number, size: number): void {
    if (size !== this.#size) {
      this.#prevIdx.clear();
      this.#prevS = [];
    }
    this.#size = size;
    if (this.#cur.length < n * size) this.#cur = Buffer.alloc(Math.max(n * size, this.#prev.length));
    this.#curIdx = new Map();
    this.#curS = [];
    this.#w = 0;
    this.reused = 0;
  }

  /** The kept sample of `id` if its bytes `src[off .. off+size)` are unchanged; the bytes are kept for the next read. */
  get(id: string, src: Uint8Array, off: number): ViewSample | undefined {
    const size = this.#size;
    const at = this.#w * size;
    this.#cur.set(src.subarray(off, off + size), at);
    const j = this.#prevIdx.get(id);
    if (j === undefined) return undefined;
    if (this.#cur.compare(this.#prev, j * size, j * size + size, at, at + size) !== 0) return undefined;
    this.reused++;
    return this.#prevS[j];
  }

  /** The sample of the record just given to get() (call once per get()). */
  put(id: string, s: ViewSample): ViewSample {
    this.#curIdx.set(id, this.#w);
    this.#curS[this.#w++] = s;
    return s;
  }

  end(): void {
    [this.#prev, this.#cur] = [this.#cur, this.#prev];
    this.#prevIdx = this.#curIdx;
    this.#prevS = this.#curS;
    this.#curIdx = new Map();
    this.#curS = [];
  }
}

/** A sample as the reuse keeps it: frozen, so that no holder changes what the next read hands out. */
function frozen(s: ViewSample): ViewSample {
  for (const m of s.metrics) {
    if (Object.isFrozen(m)) continue;
    if (m.hist) {
      Object.freeze(m.hist.cum);
      Object.freeze(m.hist);
    }
    Object.freeze(m);
  }
  Object.freeze(s.metrics);
  return Object.freeze(s);
}

/** Buffers a reader reuses from one read to the next. */
export interface Scratch {
  /** Tree sums: each stats word as u32 halves, so that sums stay exact past 2^53 (each half below 2^53). */
  hi: Float64Array;
  lo: Float64Array;
  parent: Int32Array;
  v: Float64Array;
}

function scratch(n: number, have: Scratch | undefined): Scratch {
  if (have && have.parent.length >= n) return have;
  return {
    hi: new Float64Array(n * WORDS),
    lo: new Float64Array(n * WORDS),
    parent: new Int32Array(n),
    v: new Float64Array(WORDS),
  };
}

/**
 * The samples of the first `n` records of a walk (`buf`, struct
 * sl_bulk_rec[]); for sched_lat_tree each cgroup's subtree: counts, totals
 * and buckets summed, maxima max, as the view does in BPF (bpf/sched_lat_tree.bpf.c).
 */
export function decodeWalk(
  buf: Buffer,
  n: number,
  tree: boolean,
  sc: Scratch | undefined = undefined,
  reuse: Reuse | undefined = undefined,
): Map<string, ViewSample> {
  sc = scratch(tree ? n : 0, sc);
  const R = SL_BULK_REC.size / 4;
  // u64 words at 8-byte offsets, read as little-endian u32 halves.
  const u = new Uint32Array(buf.buffer, buf.byteOffset, (n * SL_BULK_REC.size) / 4);
  checkIds(u, n);
  const idAt = SL_BULK_REC.id.off / 4;
  const stAt = SL_BULK_REC.st.off / 4;
  const out = new Map<string, ViewSample>();
  const v = sc.v;
  const vb = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (!tree) {
    reuse?.begin(n, SL_BULK_REC.size);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, n * SL_BULK_REC.size);
    for (let i = 0; i < n; i++) {
      const st = i * R + stAt;
      if (reuse) {
        const id = String(u[i * R + idAt + 1]! * TWO32 + u[i * R + idAt]!);
        if (out.has(id)) throw twice(id);
        const kept = reuse.get(id, bytes, i * SL_BULK_REC.size);
        if (kept) {
          out.set(id, reuse.put(id, kept));
          continue;
        }
        for (let w = 0; w < WORDS; w++) v[w] = u[st + 2 * w + 1]! * TWO32 + u[st + 2 * w]!;
        out.set(id, reuse.put(id, frozen(sampleOf(id, v, 0))));
        continue;
      }
      // One rounding of the exact value: the same double as Number() of the printed decimal.
      for (let w = 0; w < WORDS; w++) v[w] = u[st + 2 * w + 1]! * TWO32 + u[st + 2 * w]!;
      const id = String(u[i * R + idAt + 1]! * TWO32 + u[i * R + idAt]!);
      if (out.has(id)) throw twice(id);
      out.set(id, sampleOf(id, v, 0));
    }
    reuse?.end();
    return out;
  }
  const { hi, lo, parent } = sc;
  const parentAt = SL_BULK_REC.parentId.off / 4;
  const index = new Map<number, number>();
  const ids: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * R;
    const id = u[o + idAt + 1]! * TWO32 + u[o + idAt]!;
    ids[i] = id;
    if (index.has(id)) throw twice(String(id));
    index.set(id, i);
    // Pre-order: a parent of the walk comes before its children; the root's is outside it.
    parent[i] = index.get(u[o + parentAt + 1]! * TWO32 + u[o + parentAt]!) ?? -1;
    const st = o + stAt;
    const d = i * WORDS;
    for (let w = 0; w < WORDS; w++) {
      lo[d + w] = u[st + 2 * w]!;
      hi[d + w] = u[st + 2 * w + 1]!;
    }
  }
  // From the end of the pre-order: a cgroup's descendants are all added in before it is added to its parent.
  for (let i = n - 1; i >= 0; i--) {
    const p = parent[i]!;
    if (p < 0) continue;
    const a = i * WORDS;
    const b = p * WORDS;
    for (let k = 0; k < WORDS; k++) {
      hi[b + k]! += hi[a + k]!;
      lo[b + k]! += lo[a + k]!;
    }
    for (const k of MAX_WORDS) {
      // The sum above was wrong for the maxima: the larger of the two instead.
      hi[b + k]! -= hi[a + k]!;
      lo[b + k]! -= lo[a + k]!;
      if (hi[a + k]! * TWO32 + lo[a + k]! > hi[b + k]! * TWO32 + lo[b + k]!) {
        hi[b + k] = hi[a + k]!;
        lo[b + k] = lo[a + k]!;
      }
    }
  }
  reuse?.begin(n, WORDS * 8);
  for (let i = 0; i < n; i++) {
    const d = i * WORDS;
    for (let w = 0; w < WORDS; w++) v[w] = hi[d + w]! * TWO32 + lo[d + w]!;
    const id = String(ids[i]);
    if (!reuse) {
      out.set(id, sampleOf(id, v, 0));
      continue;
    }
    const kept = reuse.get(id, vb, 0);
    out.set(id, reuse.put(id, kept ?? frozen(sampleOf(id, v, 0))));
  }
  reuse?.end();
  return out;
}

// --- info -----------------------------------------------------------------------------

/** classifyView's NUMBER (src/stats/keys.ts): a name that reads as a number is a gauge there. */
const NUMBER = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;

/**
 * The info samples of a walk (struct info_bulk_rec[]): what
 * classifyView(parseViewOutput(<info file>)) gives. The name is decoded as
 * latin1 (bytes kept), with the spaces after the colon dropped as the parser
 * drops them; a name the parser refuses (a '\r' or '\n' in it) leaves the
 * cgroup out (its file does not parse either); a name that reads as a number
 * goes through classifyView itself.
 */
export function decodeInfo(buf: Buffer, n: number, reuse?: Reuse): Map<string, ViewSample> {
  const I = INFO_BULK_REC;
  const out = new Map<string, ViewSample>();
  reuse?.begin(n, I.size);
  try {
    for (let i = 0; i < n; i++) {
      const o = i * I.size;
      const hi = buf.readUInt32LE(o + I.id.off + 4);
      if (hi >= 1 << 21) throw new CgviewError('E_NOT_SUPPORTED', 'bulk read: a cgroup id above 2^53');
      const id = String(hi * TWO32 + buf.readUInt32LE(o + I.id.off));
      if (out.has(id)) throw twice(id);
      const kept = reuse?.get(id, buf, o);
      if (kept) {
        out.set(id, reuse!.put(id, kept));
        continue;
      }
      const s = infoRecord(buf, o, id);
      if (!s) continue;
      out.set(id, reuse ? reuse.put(id, frozen(s)) : s);
    }
  } finally {
    reuse?.end();
  }
  return out;
}

/** One info record's sample (null: a name the parser refuses). */
function infoRecord(buf: Buffer, o: number, id: string): ViewSample | null {
  const I = INFO_BULK_REC;
  const level = buf.readInt32LE(o + I.level.off);
  const hid = buf.readInt32LE(o + I.hierarchyId.off);
  const start = o + I.name.off;
  let end = buf.indexOf(0, start);
  if (end < 0 || end > start + I.name.size) end = start + I.name.size;
  const raw = buf.toString('latin1', start, end);
  if (raw.includes('\n') || raw.includes('\r')) return null;
  const name = raw.replace(/^ +/, '');
  if (NUMBER.test(name)) {
    const lines = new Map([
      ['cgroup_id', id],
      ['level', String(level)],
      ['name', name],
      ['hierarchy_id', String(hid)],
    ]);
    return classifyView(lines);
  }
  return {
    id,
    metrics: [
      { key: 'level', name: 'level', kind: 'gauge', scale: 1, value: level },
      { key: 'hierarchy_id', name: 'hierarchy_id', kind: 'gauge', scale: 1, value: hid },
    ],
    text: new Map([['name', name]]),
  };
}

// --- the reader ---------------------------------------------------------------------------

/** The root directory of a hierarchy: cgroup v2's mount, or the v1 mount with that hierarchy id. */
function hierarchyRoot(hierarchyId: number): string {
  const mounts = cgroupMounts();
  if (hierarchyId === 0) return cgroup2Root(mounts);
  for (const m of mounts) {
    if (m.version !== 1) continue;
    try {
      if (hierarchyIdOf(m) === hierarchyId) return m.path;
    } catch {
      // a name-only hierarchy this process is not in: not the one
    }
  }
  throw new CgviewError('E_NOT_FOUND', `no mounted cgroup hierarchy with id ${hierarchyId}`);
}

/** What differs between the bulk objects. */
interface BulkSpec {
  object: string;
  program: string;
  recSize: number;
  /** The collector whose maps the object reuses (by name), if any. */
  collector?: { name: string; maps: readonly string[] };
  decode(
    buf: Buffer,
    n: number,
    scratch: { value: Scratch | undefined },
    reuse: Reuse,
  ): Map<string, ViewSample>;
}

const SPECS: Readonly<Record<string, BulkSpec>> = {
  sched_lat: {
    object: 'sched_lat_bulk.bpf.o',
    program: 'sched_lat_bulk',
    recSize: SL_BULK_REC.size,
    collector: { name: 'sched_lat', maps: SHARED },
    decode: (buf, n, _sc, reuse) => decodeWalk(buf, n, false, undefined, reuse),
  },
  sched_lat_tree: {
    object: 'sched_lat_bulk.bpf.o',
    program: 'sched_lat_bulk',
    recSize: SL_BULK_REC.size,
    collector: { name: 'sched_lat', maps: SHARED },
    decode: (buf, n, sc, reuse) => {
      sc.value = scratch(n, sc.value);
      return decodeWalk(buf, n, true, sc.value, reuse);
    },
  },
  info: {
    object: 'info_bulk.bpf.o',
    program: 'info_bulk',
    recSize: INFO_BULK_REC.size,
    decode: (buf, n, _sc, reuse) => decodeInfo(buf, n, reuse),
  },
};

class IterBulk implements BulkReader {
  #obj: BpfObject | undefined;
  #link: Link | undefined;
  #maps: Readonly<Record<string, Fd>> | undefined;
  #capacity = FIRST_CAPACITY;
  #values = Buffer.alloc(0);
  #keys = Buffer.alloc(0);
  readonly #scratch: { value: Scratch | undefined } = { value: undefined };
  /** Samples kept from the last read (see Reuse): an unchanged cgroup's is handed out again. */
  #reuse = new Reuse();
  /** Samples of the last read handed out again (unchanged cgroups). */
  get reused(): number {
    return this.#reuse.reused;
  }
  readonly #instance: string | undefined;
  /** The collector instance whose maps the helper object reuses, if any. */
  get instance(): string | undefined {
    return this.#instance;
  }

  constructor(
    readonly collectors: BulkCollectors,
    readonly view: string,
    readonly hierarchyId: number,
    readonly bpfDir: string,
    readonly spec: BulkSpec,
    readonly root: string | undefined,
  ) {
    this.#instance = spec.collector ? collectorInstance(spec.collector.name, hierarchyId) : undefined;
  }

  #load(maps: Readonly<Record<string, Fd>> | undefined): void {
    this.close();
    const reuseMaps: Record<string, Fd> = {};
    for (const m of this.spec.collector?.maps ?? []) {
      const fd = maps?.[m];
      if (!fd) throw new CgviewError('E_NOT_FOUND', `collector ${this.#instance} has no map ${m}`);
      reuseMaps[m] = fd;
    }
    const obj = BpfObject.load(path.join(this.bpfDir, this.spec.object), {
      programs: [this.spec.program],
      section: 'iter/cgroup',
      reuseMaps,
      maxEntries: { bulk_out: this.#capacity },
    });
    try {
      const dir = openDir(this.root ?? hierarchyRoot(this.hierarchyId));
      try {
        this.#link = obj.program(this.spec.program).cgroupIter({ fd: dir }, 'descendants_pre');
      } finally {
        dir.close();
      }
    } catch (e) {
      obj.close();
      throw e;
    }
    this.#obj = obj;
    this.#maps = maps;
  }

  /** One walk: the number of cgroups seen (records in bulk_out: min(count, capacity)). */
  #walk(): number {
    const hdrMap = this.#obj!.map('bulk_hdr');
    const key = Buffer.alloc(4);
    hdrMap.update(key, Buffer.alloc(CGV_BULK_HDR.size));
    const printed = this.#link!.read();
    if (printed.length) throw new CgviewError('E_SYSCALL', 'bulk read: the helper iterator printed output');
    const hdr = hdrMap.lookup(key)!;
    if (hdr.readBigUInt64LE(CGV_BULK_HDR.done.off) !== 1n)
      throw new CgviewError('E_SYSCALL', 'bulk read: the cgroup walk did not finish in one read');
    return Number(hdr.readBigUInt64LE(CGV_BULK_HDR.count.off));
  }

  read(): Map<string, ViewSample> {
    let maps: Readonly<Record<string, Fd>> | undefined;
    if (this.#instance) {
      maps = this.collectors.sharedMaps(this.#instance);
      if (!maps) {
        this.close();
        return new Map();
      }
    }
    if (!this.#obj || maps !== this.#maps) this.#load(maps);
    let n = this.#walk();
    // The link holds the root cgroup it was made on: one removed (and maybe made
    // again under the same path) walks nothing. Link the directory there now.
    if (n === 0 && this.root !== undefined) {
      this.#load(maps);
      n = this.#walk();
    }
    for (let tries = 0; n > this.#capacity; tries++) {
      if (tries >= 3 || n > MAX_CAPACITY)
        throw new CgviewError('E_NOT_SUPPORTED', `bulk read: ${n} cgroups, more than ${MAX_CAPACITY}`);
      let cap = this.#capacity;
      while (cap < n * 1.25) cap *= 2;
      this.#capacity = Math.min(cap, MAX_CAPACITY);
      this.#load(maps);
      n = this.#walk();
    }
    const R = this.spec.recSize;
    if (this.#values.length < n * R) {
      this.#values = Buffer.alloc(this.#capacity * R);
      this.#keys = Buffer.alloc(this.#capacity * 4);
    }
    const got = this.#obj!.map('bulk_out').lookupArrayBatch(n, this.#keys, this.#values);
    return this.spec.decode(this.#values, got, this.#scratch, this.#reuse);
  }

  close(): void {
    this.#link?.close();
    this.#link = undefined;
    this.#obj?.close();
    this.#obj = undefined;
    this.#maps = undefined;
    this.#scratch.value = undefined;
    // A collector started again counts from zero: nothing of the old one is kept.
    this.#reuse = new Reuse();
  }
}

export interface BulkOptions {
  /**
   * Walk only this cgroup directory and its descendants (e.g. the daemon's
   * --cgroup-root) instead of the whole hierarchy. It must be in the
   * hierarchy `hierarchyId` (E_BAD_INPUT otherwise).
   */
  root?: string;
}

/** Readers by collectors object, then view, hierarchy and root: one helper object each. */
const readers = new WeakMap<BulkCollectors, Map<string, IterBulk>>();

/**
 * A bulk reader for `view` on the hierarchy `hierarchyId` (0: cgroup v2),
 * or null when the view has none (user views: read the files). Nothing is
 * loaded until the first read(). The same arguments give the same reader
 * (its helper object stays loaded between reads, so a scrape pays no load);
 * close() unloads it for every holder, and the next read() loads it again.
 */
export function bulkReader(
  collectors: BulkCollectors,
  view: string,
  hierarchyId = 0,
  opts: BulkOptions = {},
): BulkReader | null {
  const spec = Object.hasOwn(SPECS, view) ? SPECS[view] : undefined;
  if (!spec) return null;
  let byKey = readers.get(collectors);
  if (!byKey) {
    const mine = new Map<string, IterBulk>();
    byKey = mine;
    readers.set(collectors, mine);
    collectors.onStop?.((instance) => {
      for (const r of mine.values()) if (r.instance === instance) r.close();
    });
  }
  // Asked for at every scrape: the checks below run once per reader.
  const key = `${view}\0${hierarchyId}\0${opts.root ?? ''}`;
  const have = byKey.get(key);
  if (have) return have;
  const dir = bpfBuildDir();
  if (!fs.existsSync(path.join(dir, spec.object))) return null;
  if (opts.root !== undefined) {
    const h = hierarchyIdOf(mountOf(opts.root));
    if (h !== hierarchyId)
      throw new CgviewError(
        'E_BAD_INPUT',
        `bulk read: ${opts.root} is in hierarchy ${h}, not ${hierarchyId}`,
      );
  }
  const r = new IterBulk(collectors, view, hierarchyId, dir, spec, opts.root);
  byKey.set(key, r);
  return r;
}

/** Views with a bulk path (docs/sched_lat.md, "Reading every cgroup at once"). */
export const BULK_VIEWS: readonly string[] = Object.keys(SPECS);
