/**
 * The key conventions (docs/views.md, "Key conventions"): how a view's
 * `key: value` lines become typed quantities, with no per-view code, for
 * `cat --json`, `/metrics`, `top` and the dashboard alike. Pure.
 *
 * - `cgroup_id` is the identity of the sample, not a quantity.
 * - `<name>_total` is a monotonic counter; `<name>_ns_total` one in
 *   nanoseconds, named `<name>_seconds_total` in base units.
 * - `<name>_ns` is a gauge in nanoseconds (`<name>_seconds`).
 * - A histogram `<h>` is the lines `<h>_lt_<B>` (B a decimal bound, growing;
 *   the value counts observations < B, cumulatively) ended by `<h>_lt_inf`
 *   (all observations). Its sum is `<h>_total` (or `<h>_sum`) when printed,
 *   its count `<h>_lt_inf`; `<stem>_count` for `<h>` = `<stem>_ns` (or
 *   `<stem>`) is that count again. Lines a histogram uses are not quantities
 *   of their own.
 * - `p<digits>` and `p<digits>_ns` are percentiles the view computed over
 *   its whole life: not quantities (the histogram carries them).
 * - `<family>_<N>_<rest>` with N decimal digits or `rest` is an indexed key:
 *   the quantity `<family>_<rest>` (by the rules above) with the label
 *   `<family>="<N>"` (`view_<family>` when the exporter sets a label of that
 *   name itself: RESERVED_LABELS). A family `culprit` or `…cgroup` (one word,
 *   `[a-z][a-z0-9]*`) holds cgroup ids.
 * - Any other key with a decimal number is a gauge; other values are text.
 * - The RFC's `queue_self`, `queue_other` (maxima without a unit suffix,
 *   printed again as `queue_…_max_ns`) and `wait_count` are skipped.
 */

export interface Histogram {
  /** Finite upper bounds (exclusive), growing, in the view's unit (ns for `_ns` histograms). */
  bounds: number[];
  /** cum[i]: observations < bounds[i]; as long as bounds. */
  cum: number[];
  /** All observations (the `_lt_inf` line). */
  count: number;
  /** Sum of the observations in the view's unit, when the view prints it. */
  sum: number | undefined;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface Metric {
  /** The printed key; for a histogram its base (`wait_ns`). */
  key: string;
  /** The name in base units without the `cgview_<view>_` prefix: `wait_seconds`, `queue_self_seconds_total`. */
  name: string;
  kind: MetricKind;
  /** Factor from the view's unit to base units: 1e-9 for nanoseconds, else 1. */
  scale: number;
  /** Counter or gauge: the printed value (view units); histogram: its count. */
  value: number;
  hist?: Histogram;
  /** Indexed keys: `{ culprit: '1234' }`. */
  labels?: Readonly<Record<string, string>>;
}

export interface ViewSample {
  /** `cgroup_id` as printed; undefined if the view does not print it. */
  id: string | undefined;
  metrics: Metric[];
  /** Lines whose value is not a number (the `info` view's `name`). */
  text: Map<string, string>;
}

/** Keys of the fixed RFC lines that the conventions cannot name (see the module comment). */
export const LEGACY_KEYS: ReadonlySet<string> = new Set(['queue_self', 'queue_other', 'wait_count']);

/** Families whose index is a cgroup id (cat, top and the exporter show its path): `culprit`, and names ending in `cgroup` (`wakercgroup`). */
export function isCgroupFamily(family: string): boolean {
  return family === 'culprit' || (family.endsWith('cgroup') && family !== 'cgroup');
}

/**
 * Label names the exporter sets itself (and Prometheus reserves): an
 * indexed key's family with one of these names is labelled `view_<family>`
 * instead, so that no series has a label twice.
 */
export const RESERVED_LABELS: ReadonlySet<string> = new Set([
  'cgroup',
  'hierarchy',
  'unit',
  'container_id',
  'container_runtime',
  'pod_uid',
  'qos_class',
  'cgroup_id',
  'level',
  'name',
  'le',
  'quantile',
  'job',
  'instance',
]);

/** The label an indexed key's family gets. */
export function familyLabel(family: string): string {
  return RESERVED_LABELS.has(family) || family.endsWith('_path') ? `view_${family}` : family;
}

const NUMBER = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;
const HIST_LINE = /^(.+)_lt_(?:([0-9]+)|inf)$/;
const PERCENTILE = /^p[0-9]+(?:_ns)?$/;
const INDEXED = /^([a-z][a-z0-9]*)_([0-9]+|rest)_(.+)$/;

/**
 * Name in base units and scale of a counter or gauge key. The suffix rules
 * see the key with a leading '_', so that the rest of an indexed key
 * (`ns_total` in `culprit_rest_ns_total`) converts too.
 */
function unitName(key: string): { name: string; kind: MetricKind; scale: number } {
  const k = `_${key}`;
  if (k.endsWith('_ns_total'))
    return { name: `${k.slice(0, -9)}_seconds_total`.slice(1), kind: 'counter', scale: 1e-9 };
  if (k.endsWith('_total')) return { name: key, kind: 'counter', scale: 1 };
  if (k.endsWith('_ns')) return { name: `${k.slice(0, -3)}_seconds`.slice(1), kind: 'gauge', scale: 1e-9 };
  return { name: key, kind: 'gauge', scale: 1 };
}

function histName(base: string): { name: string; scale: number } {
  const k = `_${base}`;
  return k.endsWith('_ns')
    ? { name: `${k.slice(0, -3)}_seconds`.slice(1), scale: 1e-9 }
    : { name: base, scale: 1 };
}

interface HistBuild {
  bounds: number[];
  cum: number[];
  count: number | undefined;
  /** Set when the lines break the rules: the histogram is dropped (its lines stay gauges). */
  broken: boolean;
}

/**
 * The typed quantities of one view output (parseViewOutput's Map, in
 * printed order). Never throws: lines that break a rule fall back to the
 * next rule (a histogram whose bounds do not grow is read as gauges).
 */
export function classifyView(lines: ReadonlyMap<string, string>): ViewSample {
  const hists = new Map<string, HistBuild>();
  for (const [key, value] of lines) {
    const m = HIST_LINE.exec(key);
    if (!m || !NUMBER.test(value)) continue;
    const base = m[1]!;
    let h = hists.get(base);
    if (!h) {
      h = { bounds: [], cum: [], count: undefined, broken: false };
      hists.set(base, h);
    }
    const v = Number(value);
    if (m[2] === undefined) {
      if (h.count !== undefined) h.broken = true;
      h.count = v;
      continue;
    }
    const b = Number(m[2]);
    const last = h.bounds.length - 1;
    if (h.count !== undefined || (last >= 0 && (b <= h.bounds[last]! || v < h.cum[last]!))) h.broken = true;
    h.bounds.push(b);
    h.cum.push(v);
  }
  const used = new Set<string>();
  const histOf = new Map<string, Metric>();
  for (const [base, h] of hists) {
    const count = h.count;
    if (h.broken || count === undefined || (h.cum.length > 0 && h.cum[h.cum.length - 1]! > count)) continue;
    for (const b of h.bounds) used.add(`${base}_lt_${b}`);
    used.add(`${base}_lt_inf`);
    let sum: number | undefined;
    for (const k of [`${base}_total`, `${base}_sum`]) {
      const s = lines.get(k);
      if (s !== undefined && NUMBER.test(s) && sum === undefined) {
        sum = Number(s);
        used.add(k);
      }
    }
    const stem = base.endsWith('_ns') ? base.slice(0, -3) : base;
    if (lines.has(`${stem}_count`)) used.add(`${stem}_count`);
    const { name, scale } = histName(base);
    histOf.set(base, {
      key: base,
      name,
      kind: 'histogram',
      scale,
      value: count,
      hist: { bounds: h.bounds, cum: h.cum, count, sum },
    });
  }

  const out: ViewSample = { id: undefined, metrics: [], text: new Map() };
  const emitted = new Set<string>();
  for (const [key, value] of lines) {
    if (key === 'cgroup_id') {
      out.id = value;
      continue;
    }
    const hm = HIST_LINE.exec(key);
    if (hm && histOf.has(hm[1]!)) {
      const base = hm[1]!;
      if (!emitted.has(base)) {
        emitted.add(base);
        out.metrics.push(withIndex(histOf.get(base)!));
      }
      continue;
    }
    if (used.has(key) || LEGACY_KEYS.has(key)) continue;
    if (!NUMBER.test(value)) {
      out.text.set(key, value);
      continue;
    }
    if (PERCENTILE.test(key)) continue;
    const u = unitName(key);
    out.metrics.push(withIndex({ key, name: u.name, kind: u.kind, scale: u.scale, value: Number(value) }));
  }
  return out;
}

/** Applies the indexed-key rule to a metric named from its whole key. */
function withIndex(m: Metric): Metric {
  const ix = INDEXED.exec(m.key);
  if (!ix) return m;
  const [, family, index, rest] = ix as unknown as [string, string, string, string];
  const name = m.kind === 'histogram' ? histName(rest).name : unitName(rest).name;
  return { ...m, name: `${family}_${name}`, labels: { [familyLabel(family)]: index } };
}

/** The identity of a series inside one view: its name and its labels. */
export function metricKey(m: Metric): string {
  if (!m.labels) return m.name;
  const ls = Object.keys(m.labels)
    .sort()
    .map((k) => `${k}=${m.labels![k]}`);
  return `${m.name}{${ls.join(',')}}`;
}
