/**
 * The conversion (docs/metrics.md "Rules"): a snapshot's view samples →
 * metric families with names, help, units and labelled series, ready for
 * any of the formats. Pure: no I/O.
 *
 * - a metric of view V named N (src/stats/keys.ts) is `cgview_V_N`; the
 *   `info` view is `cgview_cgroup_info{cgroup_id,level,…} 1`;
 * - every series has the labels of its cgroup (`cgroup`, `hierarchy`, and
 *   the workload labels of labels.ts), then those of an indexed key; an
 *   indexed family holding cgroup ids (`culprit`, `…_cgroup`) also gets
 *   `<family>_path`, the path of that cgroup when it is known;
 * - histograms: the buckets the options pick, made self-consistent (counts
 *   non-decreasing, +Inf = count).
 */
import { isCgroupFamily, type Metric, type ViewSample } from '../stats/keys.js';
import { type ExportOptions, pickBuckets } from './options.js';
import type { CgroupSnap, Snapshot } from './snapshot.js';

export type Kind = 'counter' | 'gauge' | 'histogram' | 'info';

/** One series of a family: its label text (`a="x",b="y"`, no braces) and pairs, and its value or histogram. */
export interface Series {
  labels: string;
  pairs: ReadonlyArray<readonly [string, string]>;
  value: number;
  /** Histograms: selected bounds (in the metric's unit), cumulative counts, count, sum (metric unit). */
  hist?: {
    le: number[];
    cum: number[];
    count: number;
    sum: number | undefined;
    scale: number;
    all: Metric['hist'];
  };
}

export interface Family {
  /** Full name as in the text format: counters end in `_total`, info in `_info`. */
  name: string;
  kind: Kind;
  help: string;
  /** OpenMetrics unit ('seconds') when the name ends with it. */
  unit: string;
  view: string;
  series: Series[];
}

/** Help texts of the fixed names (DESIGN 3.1); other metrics get one that names their view line. */
const HELP: Record<string, string> = {
  cgview_cgroup_info: 'A mirrored cgroup with an info view: its id and level (value 1).',
  cgview_sched_lat_wait_seconds: 'Time tasks of the cgroup waited runnable in a run queue, per wait.',
  cgview_sched_lat_queue_self_seconds_total:
    'Time tasks of the cgroup waited while a task of the same cgroup ran on their CPU.',
  cgview_sched_lat_queue_other_seconds_total:
    'Time tasks of the cgroup waited while a task of another cgroup ran on their CPU.',
  cgview_sched_lat_queue_self_max_seconds: 'Longest single wait behind a task of the same cgroup.',
  cgview_sched_lat_queue_other_max_seconds: 'Longest single wait behind a task of another cgroup.',
};

/** Escapes a label value (text format and OpenMetrics): backslash, double quote, newline. */
export function escapeLabel(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** A label name from a key part: [a-zA-Z_][a-zA-Z0-9_]*. */
function labelName(s: string): string {
  const n = s.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

/** The label pairs of a cgroup, in output order. */
export function cgroupPairs(c: CgroupSnap): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['cgroup', c.path],
    ['hierarchy', c.hierarchy],
  ];
  for (const k of ['unit', 'container_id', 'container_runtime', 'pod_uid', 'qos_class'])
    if (c.labels[k] !== undefined) out.push([k, c.labels[k]!]);
  return out;
}

export function pairsText(pairs: ReadonlyArray<readonly [string, string]>): string {
  let s = '';
  for (const [k, v] of pairs) s += `${s === '' ? '' : ','}${k}="${escapeLabel(v)}"`;
  return s;
}

/** A byte-string name (latin1, as cgroupfs gives it) as the UTF-8 text labels carry. */
export function utf8(bytes: string): string {
  // Fast path: ASCII needs no conversion.
  return /^[\x00-\x7f]*$/.test(bytes) ? bytes : Buffer.from(bytes, 'latin1').toString('utf8');
}

/** A view value in base units: ns / 1e9 rather than × 1e-9, so that 5002003500 ns is 5.0020035 s exactly as printed. */
export function toBase(v: number, scale: number): number {
  return scale === 1e-9 ? v / 1e9 : v * scale;
}

export interface Conversion {
  families: Family[];
  /** Series dropped because another view already made a family of that name. */
  conflicts: number;
}

/** Label pairs and text of each cgroup, kept from one scrape to the next (labels are per path). */
let bases = new Map<
  string,
  { labels: Record<string, string>; pairs: Array<[string, string]>; text: string }
>();

/** Families of a snapshot, in a stable order (first seen), each with every cgroup's series. */
export function toFamilies(snap: Snapshot, opts: ExportOptions): Conversion {
  const fams = new Map<string, Family>();
  let conflicts = 0;
  // Ids of cgroups by hierarchy, for indexed families holding cgroup ids.
  let ids: Map<string, string> | null = null;
  const idPath = (hier: string, id: string): string | undefined => {
    if (!ids) {
      ids = new Map();
      for (const c of snap.cgroups) ids.set(`${c.hierarchy}\0${c.id}`, c.path);
    }
    return ids.get(`${hier}\0${id}`);
  };
  const family = (name: string, kind: Kind, view: string, key: string, scale: number): Family | null => {
    let f = fams.get(name);
    if (!f) {
      const unit = /_seconds(?:_total)?$/.test(name) ? 'seconds' : '';
      const help =
        HELP[name] ??
        (kind === 'info' ? '' : `From the ${view} view's ${key} line${scale !== 1 ? 's (ns → s)' : ''}.`);
      f = { name, kind, help, unit, view, series: [] };
      fams.set(name, f);
      return f;
    }
    if (f.view !== view || f.kind !== kind) {
      conflicts++;
      return null;
    }
    return f;
  };
  const oldBases = bases;
  bases = new Map();
  for (const c of snap.cgroups) {
    const bk = `${c.hierarchy}\0${c.path}`;
    let b = oldBases.get(bk);
    if (!b || b.labels !== c.labels) {
      const pairs = cgroupPairs(c);
      b = { labels: c.labels, pairs, text: pairsText(pairs) };
    }
    bases.set(bk, b);
    const base = b.pairs;
    const baseText = b.text;
    for (const [view, sample] of c.views) {
      if (view === 'info') {
        const f = family('cgview_cgroup_info', 'info', view, '', 1);
        if (!f) continue;
        const pairs: Array<[string, string]> = [...base, ['cgroup_id', c.id], ['level', String(c.level)]];
        f.series.push({ labels: pairsText(pairs), pairs, value: 1 });
        continue;
      }
      addView(c, view, sample, base, baseText, family, idPath, opts);
    }
  }
  return { families: [...fams.values()], conflicts };
}

/** Full names by view and metric name (no string building per sample). */
const names = new Map<string, Map<string, string>>();
function fullName(view: string, m: string): string {
  let v = names.get(view);
  if (!v) {
    v = new Map();
    names.set(view, v);
  }
  let n = v.get(m);
  if (n === undefined) {
    // Keys may hold '.' and '-' (src/views/parse.ts); metric names may not.
    n = `cgview_${view}_${m}`.replace(/[^a-zA-Z0-9_:]/g, '_');
    if (v.size < 4096) v.set(m, n);
  }
  return n;
}

/**
 * The buckets a bound list keeps and their `le` values, per bound array:
 * the classification shares one bounds array among all outputs of a view
 * layout, so this is computed once per layout and bucket set.
 */
let pickCache = new WeakMap<
  readonly number[],
  { want: ExportOptions['buckets']; idx: number[]; le: number[] }
>();
function picked(bounds: readonly number[], scale: number, want: ExportOptions['buckets']) {
  const have = pickCache.get(bounds);
  if (have && have.want === want) return have;
  const idx = scale === 1e-9 ? pickBuckets(bounds, scale, want) : bounds.map((_, i) => i);
  const p = { want, idx, le: idx.map((i) => toBase(bounds[i]!, scale)) };
  pickCache.set(bounds, p);
  return p;
}
/** Tests: forget cached bucket picks. */
export function resetPickCache(): void {
  pickCache = new WeakMap();
}

function addView(
  c: CgroupSnap,
  view: string,
  sample: ViewSample,
  base: Array<[string, string]>,
  baseText: string,
  family: (name: string, kind: Kind, view: string, key: string, scale: number) => Family | null,
  idPath: (hier: string, id: string) => string | undefined,
  opts: ExportOptions,
): void {
  // One series per name and labels: a view printing `x_ns` and `x_seconds` would name both x_seconds.
  const seen = sample.metrics.length > 1 ? new Set<string>() : null;
  for (const m of sample.metrics) {
    const name = fullName(view, m.name);
    if (seen) {
      const k = m.labels ? `${name}{${JSON.stringify(m.labels)}` : name;
      if (seen.has(k)) continue;
      seen.add(k);
    }
    const f = family(name, m.kind, view, m.key, m.scale);
    if (!f) continue;
    let pairs: ReadonlyArray<readonly [string, string]> = base;
    let labels = baseText;
    if (m.labels) {
      const extra: Array<[string, string]> = [];
      for (const k of Object.keys(m.labels).sort()) {
        const v = m.labels[k]!;
        const ln = labelName(k);
        extra.push([ln, v]);
        if (isCgroupFamily(k) && /^[0-9]+$/.test(v)) {
          const p = idPath(c.hierarchy, v);
          if (p !== undefined) extra.push([`${ln}_path`, p]);
        }
      }
      pairs = [...base, ...extra];
      labels = pairsText(pairs);
    }
    if (m.kind !== 'histogram' || !m.hist) {
      f.series.push({ labels, pairs, value: toBase(m.value, m.scale) });
      continue;
    }
    const h = m.hist;
    const { idx, le } = picked(h.bounds, m.scale, opts.buckets);
    // Self-consistent: cumulative counts never fall, and +Inf is the count (the
    // view reads per-CPU counters one after the other, so a wait that ends
    // meanwhile can show in one line and not the next).
    let count = h.count;
    const n = h.cum.length;
    if (n > 0 && h.cum[n - 1]! > count) count = h.cum[n - 1]!;
    let prev = 0;
    const cum: number[] = new Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      let v = h.cum[idx[j]!]!;
      if (v < prev) v = prev;
      if (v > count) v = count;
      cum[j] = v;
      prev = v;
    }
    f.series.push({
      labels,
      pairs,
      value: count,
      hist: {
        le,
        cum,
        count,
        sum: h.sum === undefined ? undefined : toBase(h.sum, m.scale),
        scale: m.scale,
        all: h,
      },
    });
  }
}
