/**
 * The dashboard's history: every sample of every mirrored cgroup's views, as
 * interval deltas, in bounded memory (docs/dashboard.md "History").
 *
 * - One global ring of sample times (seq → wall clock, seconds covered).
 * - One series per cgroup *id* (a cgroup removed and made again under the same
 *   name has a new id, so it starts a new series; the old one stays readable
 *   until it ages out).
 * - A series keeps only what moved: a record (seq, column, value) per non-zero
 *   counter delta, per non-zero histogram bucket delta, per gauge change. An
 *   idle cgroup costs no records at all, only its last sample (for the next delta).
 * - Columns (view, metric, bucket) are interned once for all series.
 * - Budget: when the records plus the per-series overhead (last samples, maps,
 *   labels: `seriesBytes`) of all series outgrow `budgetBytes`, ended series go
 *   first (oldest ended first); then the series holding most records lose their
 *   oldest ones (water-filling), and say from which sample on they are whole
 *   (`firstSeq`): busy cgroups get a shorter history, idle ones keep the whole
 *   retention. An ended series with no record left goes at once. At most
 *   `maxSeries` series (ended ones make room first; past it a new cgroup is not
 *   tracked, and /api/v1/info says how many). Columns no record, gauge or
 *   sample refers to any more are collected (`gcColumns`) when the table is full.
 *
 * Pure: no I/O, no timers; the sampler (sampler.ts) feeds it.
 */

import { quantile, type ViewDelta, viewDelta } from '../stats/interval.js';
import { type Histogram, type Metric, metricKey, type ViewSample } from '../stats/keys.js';
import { cpuPct, schedFigures } from '../stats/sched.js';
import { RECORD_BYTES, RecordRing } from './ring.js';
import type { CgroupSnapLike, SnapshotLike } from './types.js';

/** The view name of what the sampler reads from cgroupfs itself (tasks, CPU usage). */
export const CGROUPFS_VIEW = 'cgroupfs';

export interface HistoryOptions {
  /** Sample interval, ms (default 5000). */
  intervalMs?: number;
  /** How long samples are kept, ms (default one hour). */
  retentionMs?: number;
  /** Bytes the records of all series may hold (default 32 MiB: the daemon at 10,000 cgroups stays under 200 MB). */
  budgetBytes?: number;
  /** Most distinct columns (view × metric × bucket) at once; unused ones are collected when it is reached. */
  maxColumns?: number;
  /** Most series (live and ended) kept (default 50,000). */
  maxSeries?: number;
}

/** What the bounds dropped, since start (/api/v1/info `dropped`). */
export interface HistoryDrops {
  /** Records removed by the budget (not by age). */
  budgetRecords: number;
  /** Ended series removed by the budget or the series cap before they aged out. */
  endedSeries: number;
  /** Ended series removed because no record of theirs was left in the retained window. */
  emptyEndedSeries: number;
  /** Cgroups of the last sample not tracked: the series cap was reached with no ended series to evict. */
  untrackedCgroups: number;
  /** Cgroup sightings refused by the series cap, since start. */
  refusedSeries: number;
  /** Columns freed by the collector (their ids reused). */
  freedColumns: number;
  /** Values not recorded because the column table was full even after collecting. */
  refusedColumnValues: number;
}

export type ColumnKind = 'counter' | 'gauge' | 'bucket' | 'sum' | 'cover';

export interface Column {
  id: number;
  view: string;
  kind: ColumnKind;
  /** metricKey of the metric (histogram: of the histogram). */
  mkey: string;
  metric?: { key: string; name: string; scale: number; labels?: Readonly<Record<string, string>> };
  /** Bucket index and its exclusive upper bound (Infinity for the last). */
  bucket?: number;
  bound?: number;
}

/** The figures of `cgview top` for one cgroup, over the last interval. */
export interface Figures {
  tasks?: number;
  cpuPct?: number;
  waitPerSec?: number;
  waitsPerSec?: number;
  p50Ns?: number;
  p99Ns?: number;
  selfPct?: number;
}

/** The metrics a view prints, in order, without values: interned, shared by every cgroup that prints the same. */
interface Shape {
  id: number;
  metrics: Array<Omit<Metric, 'value' | 'hist'> & { bounds?: number[] }>;
}

interface PrevView {
  /** The last read's values, packed (see pack()), and the shape to read them with: a few hundred bytes, not the sample's objects. */
  packed: Float64Array;
  shape: Shape;
  at: number;
  seq: number;
  /** The sample equalled the one before it. */
  quiet: boolean;
}

export interface Series {
  key: string;
  id: string;
  hierarchy: string;
  path: string;
  tree: string | undefined;
  level: number;
  labels: Record<string, string>;
  /** First sample whose records are whole (the first sighting is the baseline). */
  firstSeq: number;
  /** Last sample that saw the cgroup. */
  lastSeq: number;
  ended: boolean;
  /** The budget cut this series' oldest records at least once. */
  truncated: boolean;
  ring: RecordRing | null;
  prev: Map<string, PrevView>;
  /** Gauge values as of just before the oldest record kept. */
  gaugeBase: Map<number, number>;
  lastGauge: Map<number, number>;
  figures: Figures;
  figuresSeq: number;
  /** Bumped when what the tree shows of it (path, views, figures) changes: live clients get only those rows. */
  version: number;
}

/** Bytes a series costs besides its records and what seriesBytes() counts (object, map headers): an estimate. */
const SERIES_OVERHEAD = 1024;
/** Estimated bytes of one Map entry (number → number) and of one label / last-sample entry. */
const ENTRY_BYTES = 48;

/** What a series costs besides its records: the accounting the budget enforces (an estimate, deterministic). */
export function seriesBytes(s: Series): number {
  let b = SERIES_OVERHEAD + (s.gaugeBase.size + s.lastGauge.size) * ENTRY_BYTES;
  for (const [k, pv] of s.prev) b += pv.packed.byteLength + ENTRY_BYTES + k.length * 2;
  for (const [k, v] of Object.entries(s.labels)) b += ENTRY_BYTES + (k.length + v.length) * 2;
  return b + (s.path.length + s.key.length) * 2;
}

/** A freed column slot (nothing refers to it; its id is reused). */
const FREE_COLUMN: Column = Object.freeze({ id: -1, view: '', kind: 'cover', mkey: '' }) as Column;

const hierPathKey = (hierarchy: string, p: string) => `${hierarchy}\0${p}`;

export class History {
  readonly intervalMs: number;
  readonly retentionMs: number;
  readonly budgetBytes: number;
  /** Samples kept: retention / interval. */
  readonly capacity: number;
  readonly maxColumns: number;
  readonly maxSeries: number;
  private times: Float64Array;
  private durs: Float64Array;
  /** Seq of the newest sample; 0 = none yet (seqs start at 1). */
  seq = 0;
  private lastAt: number | undefined;
  readonly series = new Map<string, Series>();
  /** hierarchy + path → key of the live series there. */
  private byPath = new Map<string, string>();
  readonly columns: Column[] = [];
  private colIndex = new Map<string, number>();
  /** Ids of freed columns, for reuse. */
  private freeCols: number[] = [];
  /** Column collection is allowed from this seq on (not again at once when it freed little). */
  private gcFrom = 0;
  /** Ended series, in the order they ended (oldest first). */
  private endedQ = new Map<string, Series>();
  readonly drops: HistoryDrops = {
    budgetRecords: 0,
    endedSeries: 0,
    emptyEndedSeries: 0,
    untrackedCgroups: 0,
    refusedSeries: 0,
    freedColumns: 0,
    refusedColumnValues: 0,
  };
  /** Values not recorded because the column table was full (= drops.refusedColumnValues). */
  get droppedColumns(): number {
    return this.drops.refusedColumnValues;
  }
  /** Finite bucket bounds of each histogram (view + metricKey). */
  private histBounds = new Map<string, number[]>();
  /** Records removed by the budget (not by age), since start (= drops.budgetRecords). */
  get budgetDrops(): number {
    return this.drops.budgetRecords;
  }
  /** Listeners called after each sample. */
  private listeners = new Set<(seq: number) => void>();

  constructor(opts: HistoryOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.retentionMs = opts.retentionMs ?? 3600_000;
    this.budgetBytes = opts.budgetBytes ?? 32 * 1024 * 1024;
    this.maxColumns = opts.maxColumns ?? 65536;
    this.maxSeries = Math.max(1, opts.maxSeries ?? 50_000);
    this.capacity = Math.max(2, Math.ceil(this.retentionMs / this.intervalMs));
    this.times = new Float64Array(this.capacity);
    this.durs = new Float64Array(this.capacity);
  }

  onSample(f: (seq: number) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Oldest seq still kept. */
  get oldestSeq(): number {
    return Math.max(1, this.seq - this.capacity + 1);
  }
  timeOf(seq: number): number {
    return this.times[seq % this.capacity]!;
  }
  /** Seconds sample `seq` covers (since the sample before it; 0 for the first). */
  durOf(seq: number): number {
    return this.durs[seq % this.capacity]!;
  }

  private column(view: string, kind: ColumnKind, mkey: string, extra: Partial<Column> = {}): number {
    const k = `${view}\0${kind}\0${mkey}\0${extra.bucket ?? ''}`;
    let id = this.colIndex.get(k);
    if (id !== undefined) return id;
    if (
      this.columns.length - this.freeCols.length >= this.maxColumns &&
      this.collecting &&
      this.seq >= this.gcFrom
    )
      this.gcColumns();
    if (this.freeCols.length > 0) id = this.freeCols.pop()!;
    else if (this.columns.length < this.maxColumns) id = this.columns.length;
    else {
      this.drops.refusedColumnValues++;
      return -1;
    }
    this.columns[id] = { id, view, kind, mkey, ...extra };
    this.colIndex.set(k, id);
    return id;
  }

  /** Column ids are only held by the store's own structures while ingesting (query holds some across calls). */
  private collecting = false;

  /**
   * Frees the columns nothing refers to (no record in any ring, no gauge value
   * kept): e.g. `culprit_<id>` columns of culprits long gone. Counter and
   * histogram columns of a view's shape are made again when queried. Also drops
   * sample shapes no series uses and bounds of histograms with no column left.
   */
  gcColumns(): number {
    const used = new Uint8Array(this.columns.length);
    const shapes = new Set<Shape>();
    const hists = new Set<string>();
    for (const s of this.series.values()) {
      const r = s.ring;
      if (r) for (let k = 0; k < r.length; k++) used[r.colAt(k)] = 1;
      for (const c of s.gaugeBase.keys()) used[c] = 1;
      for (const c of s.lastGauge.keys()) used[c] = 1;
      for (const [v, pv] of s.prev) {
        shapes.add(pv.shape);
        for (const m of pv.shape.metrics) if (m.bounds) hists.add(`${v}\0${metricKey(m as Metric)}`);
      }
    }
    let freed = 0;
    for (let id = 0; id < this.columns.length; id++) {
      const c = this.columns[id]!;
      if (c === FREE_COLUMN) continue;
      if (used[id]) {
        if (c.kind === 'bucket') hists.add(`${c.view}\0${c.mkey}`);
        continue;
      }
      this.colIndex.delete(`${c.view}\0${c.kind}\0${c.mkey}\0${c.bucket ?? ''}`);
      this.columns[id] = FREE_COLUMN;
      this.freeCols.push(id);
      freed++;
    }
    for (const [sig, sh] of this.shapes) if (!shapes.has(sh)) this.shapes.delete(sig);
    for (const k of this.histBounds.keys()) if (!hists.has(k)) this.histBounds.delete(k);
    this.drops.freedColumns += freed;
    // Little to free: not again before a minute of samples (every new column would scan everything).
    if (freed < this.maxColumns / 8) this.gcFrom = this.seq + 12;
    return freed;
  }

  private coverColumn(view: string): number {
    return this.column(view, 'cover', '__cover');
  }

  /** Takes one snapshot in: returns its seq. */
  ingest(snap: SnapshotLike): number {
    const seq = ++this.seq;
    const slot = seq % this.capacity;
    this.times[slot] = snap.at;
    this.durs[slot] = this.lastAt === undefined ? 0 : Math.max(0, (snap.at - this.lastAt) / 1000);
    this.lastAt = snap.at;
    const seen = new Map<string, CgroupSnapLike>();
    for (const c of snap.cgroups) {
      const key = `${c.hierarchy}:${c.id}`;
      // The same cgroup in a second tree: the first one read wins.
      if (!seen.has(key)) seen.set(key, c);
    }
    // Gone ones end first: under the series cap, their room goes to the new ones of this sample.
    for (const s of this.series.values())
      if (!s.ended && !seen.has(s.key)) {
        this.end(s);
        const pk = hierPathKey(s.hierarchy, s.path);
        if (this.byPath.get(pk) === s.key) this.byPath.delete(pk);
      }
    this.drops.untrackedCgroups = 0;
    this.collecting = true;
    try {
      for (const [key, c] of seen) this.ingestCgroup(seq, snap.at, key, c);
    } finally {
      this.collecting = false;
    }
    this.expire();
    this.enforceBudget();
    for (const f of this.listeners) f(seq);
    return seq;
  }

  private end(s: Series): void {
    if (s.ended) return;
    s.ended = true;
    this.endedQ.set(s.key, s);
  }

  private remove(s: Series): void {
    this.series.delete(s.key);
    this.endedQ.delete(s.key);
    const pk = hierPathKey(s.hierarchy, s.path);
    if (this.byPath.get(pk) === s.key) this.byPath.delete(pk);
  }

  /** Removes the series that ended first; false when none has. */
  private evictOldestEnded(): boolean {
    for (const s of this.endedQ.values()) {
      this.remove(s);
      this.drops.endedSeries++;
      return true;
    }
    return false;
  }

  private ingestCgroup(seq: number, at: number, key: string, c: CgroupSnapLike): void {
    let s = this.series.get(key);
    if (!s && this.series.size >= this.maxSeries && !this.evictOldestEnded()) {
      // The cap: no room, and every series is live. Not tracked (counted, /api/v1/info).
      this.drops.untrackedCgroups++;
      this.drops.refusedSeries++;
      return;
    }
    if (!s || s.path !== c.path || s.ended) {
      const pk = hierPathKey(c.hierarchy, c.path);
      const before = this.byPath.get(pk);
      if (before !== undefined && before !== key) {
        // Recreated under the same name: the old series ends, this one starts.
        const old = this.series.get(before);
        if (old) this.end(old);
      }
      if (s && s.path !== c.path) {
        const op = hierPathKey(s.hierarchy, s.path);
        if (this.byPath.get(op) === key) this.byPath.delete(op);
      }
      this.byPath.set(pk, key);
    }
    if (!s) {
      s = {
        key,
        id: c.id,
        hierarchy: c.hierarchy,
        path: c.path,
        tree: c.tree,
        level: c.level,
        labels: c.labels ?? {},
        firstSeq: seq + 1,
        lastSeq: seq,
        ended: false,
        truncated: false,
        ring: null,
        prev: new Map(),
        gaugeBase: new Map(),
        lastGauge: new Map(),
        figures: {},
        figuresSeq: 0,
        version: 1,
      };
      this.series.set(key, s);
    }
    if (s.ended) {
      s.ended = false;
      this.endedQ.delete(s.key);
    }
    if (s.path !== c.path) s.version++;
    s.path = c.path; // a rename keeps the id
    s.lastSeq = seq;
    for (const [view, sample] of c.views) {
      const prev = s.prev.get(view);
      // Same values as the last read, however long ago: every interval in between was zero (counters only grow).
      const quiet = prev !== undefined && samePacked(prev.packed, sample);
      if (prev && quiet && prev.quiet) {
        // Idle and idle the interval before (its figures are already the zero ones): nothing to compute.
        prev.at = at;
        prev.seq = seq;
        continue;
      }
      if (!prev) s.version++;
      s.prev.set(view, { packed: pack(sample), shape: this.shapeOf(sample), at, seq, quiet });
      const seconds = prev ? Math.max(1e-9, (at - prev.at) / 1000) : 0;
      const vd = viewDelta(prev ? unpack(prev, sample.id) : undefined, sample, seconds || 1);
      if (!prev || vd.first) {
        // Baseline: deltas since the cgroup's creation are no interval; gauges are values.
        for (const md of vd.metrics) if (md.metric.kind === 'gauge') this.gaugeBaseline(s, view, md.metric);
        // A count of tasks is a value: the tree shows it from the first read.
        if (view === CGROUPFS_VIEW) {
          const t = sample.metrics.find((m) => m.key === 'tasks');
          if (t && s.figures.tasks !== t.value) {
            s.figures.tasks = t.value;
            s.version++;
          }
        }
        continue;
      }
      const covers = seq - prev.seq;
      // Reads skipped in between: the values cover them all (no record at all when nothing moved).
      if (covers > 1 && !quiet) this.put(s, seq, this.coverColumn(view), covers);
      this.record(s, seq, view, vd);
      this.figure(s, seq, view, vd);
    }
  }

  private shapes = new Map<string, Shape>();

  /** The interned shape of a sample (built only for reads that moved: idle ones keep theirs). */
  private shapeOf(v: ViewSample): Shape {
    let sig = '';
    for (const m of v.metrics)
      sig += `${metricKey(m)}\0${m.kind}\0${m.hist ? m.hist.bounds.join(',') : ''}\n`;
    let sh = this.shapes.get(sig);
    if (!sh) {
      sh = {
        id: this.shapes.size,
        metrics: v.metrics.map((m) => ({
          key: m.key,
          name: m.name,
          kind: m.kind,
          scale: m.scale,
          ...(m.labels ? { labels: m.labels } : {}),
          ...(m.hist ? { bounds: m.hist.bounds.slice() } : {}),
        })),
      };
      this.shapes.set(sig, sh);
    }
    return sh;
  }

  private put(s: Series, seq: number, col: number, val: number): void {
    if (col < 0) return;
    if (!s.ring) s.ring = new RecordRing(16);
    s.ring.push(seq, col, val);
  }

  private gauge(s: Series, seq: number, view: string, m: Metric): void {
    const col = this.column(view, 'gauge', metricKey(m), { metric: meta(m) });
    if (col < 0 || s.lastGauge.get(col) === m.value) return;
    s.lastGauge.set(col, m.value);
    this.put(s, seq, col, m.value);
  }

  /** A gauge's value at a series' first sighting: known, but no record (an idle cgroup costs none). */
  private gaugeBaseline(s: Series, view: string, m: Metric): void {
    const col = this.column(view, 'gauge', metricKey(m), { metric: meta(m) });
    if (col < 0) return;
    s.lastGauge.set(col, m.value);
    if (!s.ring || s.ring.length === 0) s.gaugeBase.set(col, m.value);
    else this.put(s, seq0(s), col, m.value);
  }

  private record(s: Series, seq: number, view: string, vd: ViewDelta): void {
    for (const md of vd.metrics) {
      const m = md.metric;
      if (m.kind === 'gauge') this.gauge(s, seq, view, m);
      else if (m.kind === 'counter') {
        if (md.delta !== 0)
          this.put(s, seq, this.column(view, 'counter', metricKey(m), { metric: meta(m) }), md.delta);
      } else if (md.hist) {
        const mk = metricKey(m);
        const h = md.hist;
        const hk = `${view}\0${mk}`;
        if (this.histBounds.get(hk)?.length !== h.bounds.length) this.histBounds.set(hk, h.bounds.slice());
        let below = 0;
        for (let i = 0; i <= h.bounds.length; i++) {
          const cum = i < h.bounds.length ? h.cum[i]! : h.count;
          const n = cum - below;
          below = cum;
          if (n !== 0)
            this.put(
              s,
              seq,
              this.column(view, 'bucket', mk, { metric: meta(m), bucket: i, bound: h.bounds[i] ?? Infinity }),
              n,
            );
        }
        if (h.sum !== undefined && h.sum !== 0)
          this.put(s, seq, this.column(view, 'sum', mk, { metric: meta(m) }), h.sum);
      }
    }
  }

  private figure(s: Series, seq: number, view: string, vd: ViewDelta): void {
    // Figures a view gives stay until that view says otherwise (cgroupfs is not read every time).
    s.figuresSeq = seq;
    const f = s.figures;
    const before = figuresKey(f);
    this.figureInto(f, view, vd);
    if (figuresKey(f) !== before) s.version++;
  }

  private figureInto(f: Figures, view: string, vd: ViewDelta): void {
    if (view === 'sched_lat') {
      const sf = schedFigures(vd);
      if (!sf) return;
      f.waitPerSec = sf.waitPerSec;
      f.waitsPerSec = sf.waitsPerSec;
      setOpt(f, 'p50Ns', sf.p50Ns);
      setOpt(f, 'p99Ns', sf.p99Ns);
      setOpt(f, 'selfPct', sf.selfPct);
    } else if (view === CGROUPFS_VIEW) {
      for (const md of vd.metrics) {
        if (md.metric.key === 'tasks') f.tasks = md.metric.value;
        if (md.metric.key === 'usage_ns_total') f.cpuPct = cpuPct(md.delta / 1000, vd.seconds);
      }
    } else if (view === 'cpu') {
      const run = vd.metrics.find((md) => md.metric.key === 'run_ns_total');
      if (run) f.cpuPct = cpuPct(run.delta / 1000, vd.seconds);
    }
  }

  private expire(): void {
    const oldest = this.oldestSeq;
    for (const s of this.series.values()) {
      if (s.ring) {
        s.ring.dropBefore(oldest, (col, val) => {
          if (this.columns[col]?.kind === 'gauge') s.gaugeBase.set(col, val);
        });
        if (s.ring.length === 0 && s.ended) s.ring = null;
      }
      if (s.firstSeq < oldest) s.firstSeq = oldest;
      if (s.ended && s.lastSeq < oldest) this.remove(s);
      else if (s.ended && !s.ring) {
        // Ended with nothing recorded in the retained window: nothing to show but zeros, so it goes now.
        this.remove(s);
        this.drops.emptyEndedSeries++;
      }
    }
    // Shapes (one per distinct set of printed keys, e.g. per set of culprits) would grow without bound.
    if (this.shapes.size > 4096 + this.series.size / 4 && this.seq >= this.gcFrom) this.gcColumns();
  }

  /** Bytes of all records (typed arrays, by capacity). */
  recordBytes(): number {
    let b = 0;
    for (const s of this.series.values()) if (s.ring) b += s.ring.bytes;
    return b;
  }

  /** Bytes the series cost besides their records (seriesBytes, summed). */
  overheadBytes(): number {
    let b = 0;
    for (const s of this.series.values()) b += seriesBytes(s);
    return b;
  }

  /** What the budget counts: records and series overhead. */
  budgetedBytes(): number {
    return this.recordBytes() + this.overheadBytes();
  }

  /** What the history holds: records and an estimate of the rest. */
  memory(): {
    recordBytes: number;
    records: number;
    series: number;
    endedSeries: number;
    maxSeries: number;
    overheadBytes: number;
    columns: number;
    maxColumns: number;
    estimateBytes: number;
    budgetBytes: number;
  } {
    let records = 0;
    for (const s of this.series.values()) if (s.ring) records += s.ring.length;
    const recordBytes = this.recordBytes();
    const overheadBytes = this.overheadBytes();
    const columns = this.columns.length - this.freeCols.length;
    return {
      recordBytes,
      records,
      series: this.series.size,
      endedSeries: this.endedQ.size,
      maxSeries: this.maxSeries,
      overheadBytes,
      columns,
      maxColumns: this.maxColumns,
      estimateBytes: recordBytes + overheadBytes + this.capacity * 16 + columns * 160,
      budgetBytes: this.budgetBytes,
    };
  }

  /**
   * The policy: past the budget, every series is cut to at most T records
   * (its oldest go first), T the largest count that brings all records to
   * 70% of the budget, so that it is not hit again at the next sample.
   */
  private enforceBudget(): void {
    let total = this.budgetedBytes();
    if (total <= this.budgetBytes) return;
    const goal = this.budgetBytes * 0.7;
    // Ended series first, those that ended first first: they are what nobody watches live.
    while (total > goal && this.endedQ.size > 0) {
      const s = this.endedQ.values().next().value!;
      total -= seriesBytes(s) + (s.ring ? s.ring.bytes : 0);
      this.remove(s);
      this.drops.endedSeries++;
    }
    if (total <= this.budgetBytes) return;
    const overhead = this.overheadBytes();
    const rings = [...this.series.values()].filter((s) => s.ring && s.ring.length > 0);
    // Records get 70% of what the series leave of the budget (hysteresis: not hit again at the next sample).
    const target = Math.max(0, Math.floor(((this.budgetBytes - overhead) * 0.7) / (RECORD_BYTES * 1.25)));
    const counts = rings.map((s) => s.ring!.length);
    let lo = 0;
    let hi = Math.max(0, ...counts);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      let sum = 0;
      for (const c of counts) sum += Math.min(c, mid);
      if (sum <= target) lo = mid;
      else hi = mid - 1;
    }
    for (const s of rings) {
      const ring = s.ring!;
      if (ring.length <= lo) continue;
      const before = ring.length;
      const from = ring.trimTo(lo, (col, val) => {
        if (this.columns[col]?.kind === 'gauge') s.gaugeBase.set(col, val);
      });
      this.drops.budgetRecords += before - ring.length;
      s.truncated = true;
      if (from !== undefined && from > s.firstSeq) s.firstSeq = from;
      else if (ring.length === 0) s.firstSeq = this.seq + 1;
    }
  }

  /** The live series at a path, or a series by key ('v2:1234'). */
  find(ref: { key?: string; hierarchy?: string; path?: string }): Series | undefined {
    if (ref.key) return this.series.get(ref.key);
    if (ref.path !== undefined) {
      const k = this.byPath.get(hierPathKey(ref.hierarchy ?? 'v2', ref.path));
      return k === undefined ? undefined : this.series.get(k);
    }
    return undefined;
  }

  /** The series of one cgroup over [from, to] (seqs, clamped to what is kept), dense per sample. */
  query(s: Series, range: { from?: number; to?: number } = {}): SeriesHistory {
    const lo = Math.max(this.oldestSeq, range.from ?? 1);
    const hi = Math.min(this.seq, range.to ?? this.seq);
    const n = Math.max(0, hi - lo + 1);
    const seqs: number[] = [];
    const t: number[] = [];
    const dt: number[] = [];
    for (let q = lo; q <= hi; q++) {
      seqs.push(q);
      t.push(this.timeOf(q));
      dt.push(round(this.durOf(q)));
    }
    // Per view: which samples hold data, and the seconds each value covers.
    const views = new Map<string, ViewHistoryBuild>();
    const viewOf = (v: string): ViewHistoryBuild => {
      let b = views.get(v);
      if (!b) {
        b = { view: v, present: new Uint8Array(n), cover: new Float64Array(n), cols: new Map() };
        views.set(v, b);
      }
      return b;
    };
    for (const v of s.prev.keys()) viewOf(v);
    const live = (q: number) => q >= s.firstSeq && q <= s.lastSeq;
    // Samples where a view was read: its own records or, for every view it has, any sample the series was live
    // and not covered by a later read (a cover record marks the reads in between as missing).
    for (const b of views.values()) for (let q = lo; q <= hi; q++) if (live(q)) b.present[q - lo] = 1;
    const ring = s.ring;
    const gauges = new Map<number, number>(s.gaugeBase);
    if (ring) {
      for (let k = 0; k < ring.length; k++) {
        const q = ring.seqAt(k);
        if (q > hi) break;
        const col = this.columns[ring.colAt(k)]!;
        const val = ring.valAt(k);
        if (q < lo) {
          if (col.kind === 'gauge') gauges.set(col.id, val);
          continue;
        }
        const b = viewOf(col.view);
        const i = q - lo;
        if (col.kind === 'cover') {
          // This read's deltas cover `val` samples: the ones before it had no read.
          let sec = 0;
          for (let j = 0; j < val; j++) {
            if (j > 0 && i - j >= 0) b.present[i - j] = 0;
            sec += this.durOf(q - j);
          }
          b.cover[i] = sec;
          continue;
        }
        let c = b.cols.get(col.id);
        if (!c) {
          c = { vals: new Float64Array(n), set: new Uint8Array(n) };
          b.cols.set(col.id, c);
        }
        c.vals[i] = val;
        c.set[i] = 1;
      }
    }
    // Every metric the views print, with or without records in the range (an idle counter is zeros).
    for (const [v, pv] of s.prev) {
      const b = viewOf(v);
      const ensure = (id: number) => {
        if (id >= 0 && !b.cols.has(id)) b.cols.set(id, { vals: new Float64Array(n), set: new Uint8Array(n) });
      };
      for (const m of pv.shape.metrics) {
        const mk = metricKey(m as Metric);
        const mm = meta(m as Metric);
        if (m.kind === 'counter') ensure(this.column(v, 'counter', mk, { metric: mm }));
        else if (m.kind === 'histogram' && m.bounds) {
          ensure(this.column(v, 'sum', mk, { metric: mm }));
          ensure(this.column(v, 'bucket', mk, { metric: mm, bucket: 0, bound: m.bounds[0] ?? Infinity }));
          const hk = `${v}\0${mk}`;
          if (!this.histBounds.has(hk)) this.histBounds.set(hk, m.bounds.slice());
        }
      }
    }
    // Gauges known from before the range but unchanged in it.
    for (const id of gauges.keys()) {
      const col = this.columns[id];
      if (!col) continue;
      const b = viewOf(col.view);
      if (!b.cols.has(id)) b.cols.set(id, { vals: new Float64Array(n), set: new Uint8Array(n) });
    }
    const out: ViewHistory[] = [];
    for (const b of views.values()) {
      const vdt: Array<number | null> = [];
      for (let i = 0; i < n; i++) vdt.push(b.present[i] ? round(b.cover[i] || this.durOf(lo + i)) : null);
      const counters: ColumnHistory[] = [];
      const gaugesOut: ColumnHistory[] = [];
      const hists = new Map<string, HistBuild>();
      for (const [id, c] of b.cols) {
        const col = this.columns[id]!;
        const arr = c.vals;
        if (col.kind === 'counter') {
          counters.push({ ...col.metric!, values: masked(arr, b.present) });
        } else if (col.kind === 'gauge') {
          // Carry the last value forward: a gauge is recorded when it changes.
          const vals: Array<number | null> = [];
          let cur = gauges.get(id);
          for (let i = 0; i < n; i++) {
            if (c.set[i]) cur = arr[i]!;
            vals.push(b.present[i] ? (cur ?? null) : null);
          }
          gaugesOut.push({ ...col.metric!, values: vals });
        } else if (col.kind === 'bucket' || col.kind === 'sum') {
          let h = hists.get(col.mkey);
          if (!h) {
            h = { view: col.view, mkey: col.mkey, meta: col.metric!, buckets: new Map(), sum: undefined };
            hists.set(col.mkey, h);
          }
          if (col.kind === 'sum') h.sum = arr;
          else h.buckets.set(col.bucket!, { bound: col.bound!, arr });
        }
      }
      const histograms: HistHistory[] = [];
      for (const h of hists.values()) histograms.push(this.histOut(h, b.present, n));
      out.push({ view: b.view, dt: vdt, counters, gauges: gaugesOut, histograms });
    }
    out.sort((x, y) => (x.view < y.view ? -1 : x.view > y.view ? 1 : 0));
    return {
      key: s.key,
      id: s.id,
      hierarchy: s.hierarchy,
      path: s.path,
      level: s.level,
      labels: s.labels,
      ended: s.ended,
      truncated: s.truncated,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      seq: seqs,
      t,
      dt,
      views: out,
    };
  }

  private histOut(h: HistBuild, present: Uint8Array, n: number): HistHistory {
    // Bucket bounds of the histogram: every bucket this histogram has a column for, in order.
    const finite = this.histBounds.get(`${h.view}\0${h.mkey}`) ?? [];
    const nb = finite.length + 1;
    const counts: Array<number[] | null> = [];
    const count: Array<number | null> = [];
    const sum: Array<number | null> = [];
    const p50: Array<number | null> = [];
    const p90: Array<number | null> = [];
    const p99: Array<number | null> = [];
    for (let i = 0; i < n; i++) {
      if (!present[i]) {
        counts.push(null);
        count.push(null);
        sum.push(null);
        p50.push(null);
        p90.push(null);
        p99.push(null);
        continue;
      }
      const row: number[] = [];
      let total = 0;
      for (let j = 0; j < nb; j++) {
        const v = h.buckets.get(j)?.arr[i] ?? 0;
        row.push(v);
        total += v;
      }
      counts.push(row);
      count.push(total);
      sum.push(h.sum ? h.sum[i]! : null);
      if (total > 0) {
        const cum: number[] = [];
        let c = 0;
        for (let j = 0; j < finite.length; j++) {
          c += row[j] ?? 0;
          cum.push(c);
        }
        const hist: Histogram = { bounds: finite, cum, count: total, sum: h.sum ? h.sum[i] : undefined };
        p50.push(round(quantile(hist, 0.5) ?? null));
        p90.push(round(quantile(hist, 0.9) ?? null));
        p99.push(round(quantile(hist, 0.99) ?? null));
      } else {
        p50.push(null);
        p90.push(null);
        p99.push(null);
      }
    }
    return {
      ...h.meta,
      bounds: [...finite, null],
      counts,
      count,
      sum,
      p50,
      p90,
      p99,
    };
  }

  /** Current figures of every live cgroup (or of those `pick` says). */
  rows(pick?: (s: Series) => boolean): TreeRow[] {
    const out: TreeRow[] = [];
    for (const s of this.series.values()) {
      if (s.ended || (pick && !pick(s))) continue;
      out.push({
        key: s.key,
        id: s.id,
        hierarchy: s.hierarchy,
        path: s.path,
        level: s.level,
        figures: s.figures,
        views: [...s.prev.keys()],
      });
    }
    return out;
  }
}

interface ViewHistoryBuild {
  view: string;
  present: Uint8Array;
  cover: Float64Array;
  cols: Map<number, { vals: Float64Array; set: Uint8Array }>;
}
interface HistBuild {
  view: string;
  mkey: string;
  meta: NonNullable<Column['metric']>;
  buckets: Map<number, { bound: number; arr: Float64Array }>;
  sum: Float64Array | undefined;
}

export interface ColumnHistory {
  key: string;
  name: string;
  scale: number;
  labels?: Readonly<Record<string, string>>;
  /** Counter: the increase in each sample (view units); gauge: the value; null: no data. */
  values: Array<number | null>;
}
export interface HistHistory {
  key: string;
  name: string;
  scale: number;
  labels?: Readonly<Record<string, string>>;
  /** Exclusive upper bound of each bucket (view units); null for the last, open one. */
  bounds: Array<number | null>;
  /** Per sample: the count in each bucket (not cumulative); null: no data. */
  counts: Array<number[] | null>;
  count: Array<number | null>;
  sum: Array<number | null>;
  p50: Array<number | null>;
  p90: Array<number | null>;
  p99: Array<number | null>;
}
export interface ViewHistory {
  view: string;
  /** Seconds each sample's values cover; null: not read then (no data). */
  dt: Array<number | null>;
  counters: ColumnHistory[];
  gauges: ColumnHistory[];
  histograms: HistHistory[];
}
export interface SeriesHistory {
  key: string;
  id: string;
  hierarchy: string;
  path: string;
  level: number;
  labels: Record<string, string>;
  ended: boolean;
  truncated: boolean;
  firstSeq: number;
  lastSeq: number;
  seq: number[];
  /** Wall clock of each sample, ms. */
  t: number[];
  /** Seconds since the sample before. */
  dt: number[];
  views: ViewHistory[];
}
export interface TreeRow {
  key: string;
  id: string;
  hierarchy: string;
  path: string;
  level: number;
  figures: Figures;
  views: string[];
}

/** The figures as the tree shows them (six digits), to tell a change. */
function figuresKey(f: Figures): string {
  return `${round(f.tasks ?? null)}|${round(f.cpuPct ?? null)}|${round(f.waitPerSec ?? null)}|${round(f.waitsPerSec ?? null)}|${round(f.p50Ns ?? null)}|${round(f.p99Ns ?? null)}|${round(f.selfPct ?? null)}`;
}

/**
 * A view sample's values in a row: per metric its value; a histogram's also
 * its sum (-1 when not printed) and its cumulative counts.
 */
function pack(v: ViewSample): Float64Array {
  let n = 0;
  for (const m of v.metrics) n += m.hist ? 2 + m.hist.cum.length : 1;
  // The id is the series' own (its key holds it): not packed.
  const out = new Float64Array(n);
  let k = 0;
  for (const m of v.metrics) {
    out[k++] = m.value;
    if (m.hist) {
      out[k++] = m.hist.sum ?? -1;
      for (const c of m.hist.cum) out[k++] = c;
    }
  }
  return out;
}

/** The previous read back as a sample, in its own shape, for viewDelta. */
function unpack(p: PrevView, id: string | undefined): ViewSample {
  const metrics: Metric[] = [];
  let k = 0;
  for (const m of p.shape.metrics) {
    const { bounds, ...rest } = m;
    const value = p.packed[k++]!;
    if (bounds) {
      const sum = p.packed[k++]!;
      const cum = Array.from(p.packed.subarray(k, k + bounds.length));
      k += bounds.length;
      metrics.push({ ...rest, value, hist: { bounds, cum, count: value, sum: sum < 0 ? undefined : sum } });
    } else metrics.push({ ...rest, value });
  }
  return { id, metrics, text: new Map() };
}

/**
 * The sample prints what `p` holds (an idle cgroup): values, histogram
 * counts and sums (equal counts: no new observation, so equal buckets).
 */
function samePacked(p: Float64Array, v: ViewSample): boolean {
  let k = 0;
  const ms = v.metrics;
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    if (k >= p.length || p[k++] !== m.value) return false;
    if (m.hist) {
      if (k >= p.length || p[k++] !== (m.hist.sum ?? -1)) return false;
      k += m.hist.cum.length;
    }
  }
  return k === p.length;
}

/** The seq a late baseline gauge is recorded at: the series' last. */
function seq0(s: Series): number {
  return s.lastSeq;
}

function meta(m: Metric): NonNullable<Column['metric']> {
  return { key: m.key, name: m.name, scale: m.scale, ...(m.labels ? { labels: m.labels } : {}) };
}

function masked(arr: Float64Array, present: Uint8Array): Array<number | null> {
  const out: Array<number | null> = new Array(arr.length);
  for (let i = 0; i < arr.length; i++) out[i] = present[i] ? arr[i]! : null;
  return out;
}

function setOpt<K extends keyof Figures>(f: Figures, k: K, v: Figures[K] | undefined): void {
  if (v === undefined) delete f[k];
  else f[k] = v;
}

/** Six significant digits: enough for a chart, and a third of the JSON. */
export function round(v: number): number;
export function round(v: number | null): number | null;
export function round(v: number | null): number | null {
  if (v === null || !Number.isFinite(v) || v === 0) return v;
  // Arithmetic, not toPrecision: no string per number (an hour of a busy cgroup rounds thousands).
  const f = 10 ** (5 - Math.floor(Math.log10(Math.abs(v))));
  return f >= 1 ? Math.round(v * f) / f : Math.round(v * f) * (1 / f);
}
