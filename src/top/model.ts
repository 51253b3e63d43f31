/**
 * The figures of one refresh: each cgroup's interval (this snapshot against
 * the one before) turned into a row. Pure: the math is src/stats' (rates,
 * resets, histogram deltas, percentiles, the sched figures); here only which
 * view feeds which column.
 *
 * - The *sched view* of a cgroup is its file `sched_lat` when that has the
 *   sched_lat shape (the `wait_ns` histogram and the queue_self/queue_other
 *   counters), else the first file (by name) that has it: a sched_lat pinned
 *   under another name still fills the sched columns.
 * - Every other view's counters (and histogram counts) become *generic
 *   columns* `<file>:<metric>` (the key conventions' converted name, without
 *   `_total`), shown as rates per second; labelled series (indexed keys such
 *   as sched_culprits' culprit_<id>_…) and gauges go to the detail pane and
 *   JSON only, so that a view with many labels does not make many columns.
 */

import { counterDelta, type MetricDelta, type ViewDelta, viewDelta } from '../stats/interval.js';
import type { Histogram, Metric, ViewSample } from '../stats/keys.js';
import { cpuPct, type SchedFigures, schedFigures } from '../stats/sched.js';
import type { CgroupSample, ReadError, Snapshot } from './source.js';

export interface SchedRow {
  /** The view file the figures come from. */
  view: string;
  fig: SchedFigures;
  /** The interval's wait histogram (ns). */
  hist: Histogram | undefined;
  /** Since the cgroup's creation (the view's own counters), ns and counts. */
  totals: {
    waitNs?: number;
    waits?: number;
    selfNs?: number;
    otherNs?: number;
    selfMaxNs?: number;
    otherMaxNs?: number;
  };
  /** No previous sample of this view (a new or recreated cgroup): the interval is its life so far. */
  first: boolean;
}

/** One series of a view other than the sched view (or a labelled/gauge one of any view). */
export interface Series {
  view: string;
  /** Converted name without `_total` (`run_seconds`), with labels as `{culprit="123"}`. */
  name: string;
  kind: 'counter' | 'gauge' | 'histogram';
  /** Counter/histogram: per second, in base units (ns → s); gauge: the value in base units. */
  value: number;
  labels?: Readonly<Record<string, string>>;
  /** A column of the table (unlabelled counter or histogram). */
  column: boolean;
}

export interface Row {
  key: string;
  parent: string | undefined;
  path: string;
  depth: number;
  tree: string;
  hierarchy: string;
  cgroupId: string | undefined;
  tasks: number | undefined;
  threads: number | undefined;
  cpuPct: number | undefined;
  sched: SchedRow | undefined;
  series: Series[];
  /** Generic column id (`view:name`) → rate. */
  columns: Map<string, number>;
  errors: ReadError[];
}

export interface Frame {
  at: number;
  seconds: number;
  rows: Row[];
  /** Generic column ids in the order first seen. */
  columns: string[];
  missing: ReadError[];
}

/** A view with sched_lat's shape: the `wait_ns` histogram and the queue_self/queue_other counters. */
export function isSchedShaped(v: ViewSample): boolean {
  let h = false;
  let self = false;
  let other = false;
  for (const m of v.metrics) {
    if (m.labels) continue;
    if (m.kind === 'histogram' && m.key === 'wait_ns') h = true;
    else if (m.kind === 'counter' && m.key === 'queue_self_ns_total') self = true;
    else if (m.kind === 'counter' && m.key === 'queue_other_ns_total') other = true;
  }
  return h && self && other;
}

/** The file name of a cgroup's sched view (see the module comment), or undefined. */
export function schedViewOf(views: ReadonlyMap<string, ViewSample>): string | undefined {
  const s = views.get('sched_lat');
  if (s && isSchedShaped(s)) return 'sched_lat';
  for (const name of [...views.keys()].sort()) if (isSchedShaped(views.get(name)!)) return name;
  return undefined;
}

const stripTotal = (n: string): string => (n.endsWith('_total') ? n.slice(0, -6) : n);

function seriesName(d: MetricDelta): string {
  const base = stripTotal(d.metric.name);
  const l = d.metric.labels;
  if (!l) return base;
  const keys = Object.keys(l).sort();
  return `${base}{${keys.map((k) => `${k}="${l[k]}"`).join(',')}}`;
}

function schedRow(view: string, d: ViewDelta, cur: ViewSample): SchedRow | undefined {
  const fig = schedFigures(d);
  if (!fig) return undefined;
  const byKey = new Map(d.metrics.map((m) => [m.metric.key, m]));
  const hist = byKey.get('wait_ns')?.hist;
  const totals: SchedRow['totals'] = {};
  const byCur = new Map<string, Metric>();
  for (const m of cur.metrics) if (!m.labels) byCur.set(m.key, m);
  const val = (k: string) => byCur.get(k)?.value;
  const h = byCur.get('wait_ns');
  if (h?.hist) {
    totals.waits = h.hist.count;
    if (h.hist.sum !== undefined) totals.waitNs = h.hist.sum;
  }
  const set = (k: keyof SchedRow['totals'], v: number | undefined) => {
    if (v !== undefined) totals[k] = v;
  };
  set('selfNs', val('queue_self_ns_total'));
  set('otherNs', val('queue_other_ns_total'));
  set('selfMaxNs', val('queue_self_max_ns'));
  set('otherMaxNs', val('queue_other_max_ns'));
  return { view, fig, hist, totals, first: d.first };
}

/** The delta of a sample against itself: nothing happened (no parse, no subtraction of histograms). */
function zeroDelta(v: ViewSample, seconds: number): ViewDelta {
  return {
    seconds,
    first: false,
    reset: false,
    metrics: v.metrics.map((metric): MetricDelta => {
      if (metric.kind === 'gauge') return { metric, delta: metric.value, rate: metric.value, reset: false };
      if (metric.kind === 'counter' || !metric.hist) return { metric, delta: 0, rate: 0, reset: false };
      const h = metric.hist;
      return {
        metric,
        delta: 0,
        rate: 0,
        reset: false,
        hist: {
          bounds: h.bounds,
          cum: h.cum.map(() => 0),
          count: 0,
          sum: h.sum === undefined ? undefined : 0,
        },
      };
    }),
  };
}

/** The cgroup id its views print (the first view that prints one). */
function idOf(c: CgroupSample): string | undefined {
  for (const v of c.views.values()) if (v.id !== undefined) return v.id;
  return undefined;
}

/** The rows of an interval: `cur` against `prev` (undefined: no previous refresh, every row is `first`). */
export function frame(prev: Snapshot | undefined, cur: Snapshot): Frame {
  const seconds = prev ? Number(cur.monoNs - prev.monoNs) / 1e9 : 0;
  const before = new Map<string, CgroupSample>();
  if (prev) for (const c of prev.cgroups) before.set(c.key, c);
  const columns: string[] = [];
  const seenCol = new Set<string>();
  const rows: Row[] = [];
  for (const c of cur.cgroups) {
    const p = before.get(c.key);
    // The same sample object: the sampler kept an idle subtree as it was; its row is all zeros, made once.
    if (p === c && seconds > 0) {
      let z = zeroRows.get(c);
      if (!z) {
        z = rowOf(c, c, seconds);
        zeroRows.set(c, z);
      }
      for (const id of z.columns.keys())
        if (!seenCol.has(id)) {
          seenCol.add(id);
          columns.push(id);
        }
      rows.push(z);
      continue;
    }
    const row = rowOf(c, p, seconds);
    for (const id of row.columns.keys())
      if (!seenCol.has(id)) {
        seenCol.add(id);
        columns.push(id);
      }
    rows.push(row);
  }
  return { at: cur.at, seconds, rows, columns, missing: cur.missing };
}

/** Rows of samples that did not change, by sample (they are all zeros whatever the interval). */
const zeroRows = new WeakMap<CgroupSample, Row>();

function rowOf(c: CgroupSample, p: CgroupSample | undefined, seconds: number): Row {
  const sv = schedViewOf(c.views);
  // The cgroup's id as its views print it; another id than last time means it was recreated.
  const cgroupId = idOf(c);
  const pid = p && idOf(p);
  const recreated = p !== undefined && pid !== undefined && cgroupId !== undefined && pid !== cgroupId;
  const row: Row = {
    key: c.key,
    parent: c.parent,
    path: c.path,
    depth: c.depth,
    tree: c.target.tree.dir,
    hierarchy: c.target.hierarchy,
    cgroupId,
    tasks: c.procs,
    threads: c.threads,
    cpuPct: undefined,
    sched: undefined,
    series: [],
    columns: new Map(),
    errors: c.errors,
  };
  if (c.cpuUsec !== undefined && seconds > 0) {
    const d = counterDelta(recreated ? undefined : p?.cpuUsec, c.cpuUsec);
    // No previous value: a cgroup born in the interval; its whole usage is the interval's.
    row.cpuPct = cpuPct(d.delta, seconds);
  }
  if (seconds > 0) {
    for (const [name, v] of c.views) {
      const pv = recreated ? undefined : p?.views.get(name);
      // The same sample object: the view printed the same text as last time; every delta is zero.
      const d = pv === v ? zeroDelta(v, seconds) : viewDelta(pv, v, seconds);
      if (name === sv) {
        row.sched = schedRow(name, d, v);
        continue;
      }
      for (const m of d.metrics) {
        const s: Series = {
          view: name,
          name: seriesName(m),
          kind: m.metric.kind,
          value:
            m.metric.kind === 'gauge'
              ? m.metric.value * m.metric.scale
              : m.rate * (m.metric.kind === 'histogram' ? 1 : m.metric.scale),
          column: m.metric.kind !== 'gauge' && !m.metric.labels,
          ...(m.metric.labels ? { labels: m.metric.labels } : {}),
        };
        row.series.push(s);
        if (s.column) row.columns.set(`${name}:${s.name}`, s.value);
      }
    }
  }
  return row;
}
