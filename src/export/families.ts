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
  /**
   * Whether a block of kept pieces ends after this series (text.ts
   * blockEnds): from its labels, so that a cgroup added or removed moves
   * only the block it is in. Computed once per series.
   */
  cut?: boolean;
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

/** Length of the valid UTF-8 sequence at b[i] (latin1 string of bytes), 0 if none starts there. */
function utf8Len(b: string, i: number): number {
  const c = b.charCodeAt(i);
  if (c < 0x80) return 1;
  const at = (k: number, lo: number, hi: number) => {
    const x = b.charCodeAt(i + k);
    return x >= lo && x <= hi; // NaN past the end: false
  };
  if (c >= 0xc2 && c <= 0xdf) return at(1, 0x80, 0xbf) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return at(1, lo, hi) && at(2, 0x80, 0xbf) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return at(1, lo, hi) && at(2, 0x80, 0xbf) && at(3, 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

/**
 * A byte-string name (latin1, as cgroupfs gives it) as the UTF-8 text labels
 * carry, reversibly (docs/metrics.md "Labels"; unlabelPath is the inverse):
 * a valid UTF-8 name that holds neither `\\` nor `\x` followed by two hex
 * digits of 80…ff (any case) is itself; any other name is written with each
 * `\` as `\\` and each byte that is not part of valid UTF-8 as `\xNN`
 * (lower-case hex). So two different names never read the same.
 */
export function utf8(bytes: string): string {
  // Fast path: ASCII with no backslash needs no conversion.
  if (/^[\x00-\x5b\x5d-\x7f]*$/.test(bytes)) return bytes;
  let valid = true;
  for (let i = 0; i < bytes.length; ) {
    const n = utf8Len(bytes, i);
    if (n === 0) {
      valid = false;
      break;
    }
    i += n;
  }
  if (valid && !/\\\\|\\x[89a-f][0-9a-f]/i.test(bytes)) return Buffer.from(bytes, 'latin1').toString('utf8');
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const n = utf8Len(bytes, i);
    if (n === 0) {
      out += `\\x${bytes.charCodeAt(i).toString(16).padStart(2, '0')}`;
      i++;
    } else if (n === 1) {
      out += bytes[i] === '\\' ? '\\\\' : bytes[i];
      i++;
    } else {
      out += Buffer.from(bytes.slice(i, i + n), 'latin1').toString('utf8');
      i += n;
    }
  }
  return out;
}

/** The inverse of utf8(): a `cgroup` label value back to the name's bytes (latin1 string). */
export function unlabelPath(label: string): string {
  const bytes = Buffer.from(label, 'utf8').toString('latin1');
  if (!/\\\\|\\x[89a-f][0-9a-f]/i.test(bytes)) return bytes;
  return bytes.replace(/\\(\\|x([0-9a-fA-F]{2}))/g, (_m: string, _e: string, h: string | undefined) =>
    h === undefined ? '\\' : String.fromCharCode(Number.parseInt(h, 16)),
  );
}

/** A view value in base units: ns / 1e9 rather than × 1e-9, so that 5002003500 ns is 5.0020035 s exactly as printed. */
export function toBase(v: number, scale: number): number {
  return scale === 1e-9 ? v / 1e9 : v * scale;
}

export interface Conversion {
  families: Family[];
  /** Series dropped because their family's names (any sample name it makes) were another family's. */
  conflicts: number;
  /** The first few refused families of this conversion (for a rate-limited log): what, where, whose. */
  refused: Array<{ name: string; view: string; key: string; cgroup: string; owner: string }>;
}

/**
 * Every name a family makes in some format: its OpenMetrics base name (a
 * counter's without `_total`, an info's without `_info`), the text format's
 * family name, and every sample name (`_total`, `_created`, `_bucket`,
 * `_count`, `_sum`, `_info`, the bare name). Two families whose sets meet
 * would make one name mean two things (docs/metrics.md "Name clashes").
 */
export function familyNames(name: string, kind: Kind): string[] {
  switch (kind) {
    case 'counter': {
      const base = name.endsWith('_total') ? name.slice(0, -6) : name;
      return [base, `${base}_total`, `${base}_created`];
    }
    case 'info': {
      const base = name.endsWith('_info') ? name.slice(0, -5) : name;
      return [base, `${base}_info`];
    }
    case 'histogram':
      return [name, `${name}_bucket`, `${name}_count`, `${name}_sum`, `${name}_created`];
    default:
      return [name];
  }
}

/**
 * Name prefixes that belong to the daemon (docs/metrics.md "Name clashes"):
 * the built-in views' (`cgview_<built-in>_`), `cgview_cgroup_` (info) and
 * `cgview_daemon_`.
 */
const RESERVED: readonly string[] = [
  ...['info', 'sched_lat', 'sched_lat_tree', 'cpu', 'sched_culprits'].map((b) => `cgview_${b}_`),
  'cgview_cgroup_',
  'cgview_daemon_',
];

/**
 * The view name a view's metrics are made with (`cgview_<it>_<metric>`):
 * a built-in's program name; a user object's program name unless
 * `cgview_<program>_` and a reserved prefix are one the other's prefix (the
 * user view could make a built-in's or the daemon's names): then
 * `user_<program>` (`./x.bpf.o:sched_lat` → `cgview_user_sched_lat_…`).
 */
export function exportViewName(program: string, builtin: boolean): string {
  if (builtin) return program;
  const p = `cgview_${program}_`.replace(/[^a-zA-Z0-9_:]/g, '_');
  for (const r of RESERVED) if (p.startsWith(r) || r.startsWith(p)) return `user_${program}`;
  return program;
}

/** Label pairs and text of each cgroup, kept from one scrape to the next (labels are per path). */
interface Base {
  labels: Record<string, string>;
  hierarchy: string;
  path: string;
  pairs: Array<[string, string]>;
  text: string;
  /** This cgroup's series of the last conversion, by view, name and labels: reused when their numbers are the same. */
  series: Map<string, Series>;
  /**
   * What the last conversion made of this cgroup, when it can be made again
   * without looking at the numbers: the views' samples (a bulk reader hands
   * out the same object while a cgroup's numbers do not move, src/views/bulk.ts),
   * the id and level, and the series in output order with their families' arguments.
   */
  last?: {
    views: string[];
    samples: ViewSample[];
    id: string;
    level: number;
    buckets: ExportOptions['buckets'];
    out: Emitted[];
  };
}
/** One series as the conversion put it into its family (with what family() needs to find or make it). */
interface Emitted {
  name: string;
  kind: Kind;
  view: string;
  key: string;
  scale: number;
  s: Series;
}
/**
 * Bases by the cgroup's labels object (the snapshot keeps one per cgroup while
 * it lives: src/export/snapshot.ts CgStatic), then by hierarchy and path; a
 * removed cgroup's base goes with its labels object. No map is rebuilt per scrape.
 */
let bases = new WeakMap<object, Map<string, Base>>();
/** Tests: forget every kept base (as if the daemon had just started). */
export function resetBases(): void {
  bases = new WeakMap();
}

/** Whether a cgroup's views are the samples (by identity) of the last conversion; `info` by id and level (checked apart). */
function sameSamples(last: NonNullable<Base['last']>, views: ReadonlyMap<string, ViewSample>): boolean {
  if (last.views.length !== views.size) return false;
  let i = 0;
  for (const [v, smp] of views) {
    if (last.views[i] !== v) return false;
    if (v !== 'info' && last.samples[i] !== smp) return false;
    i++;
  }
  return true;
}

/** Families of a snapshot, in a stable order (first seen), each with every cgroup's series. */
export function toFamilies(snap: Snapshot, opts: ExportOptions): Conversion {
  const fams = new Map<string, Family>();
  /** Each name a family of this conversion makes (familyNames) → that family's name. */
  const claimed = new Map<string, string>();
  let conflicts = 0;
  const refused: Conversion['refused'] = [];
  let cgPath = '';
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
      const all = familyNames(name, kind);
      let owner: string | undefined;
      for (const n of all) {
        owner = claimed.get(n);
        if (owner !== undefined) break;
      }
      if (owner !== undefined) {
        conflicts++;
        if (refused.length < 16) refused.push({ name, view, key, cgroup: cgPath, owner });
        return null;
      }
      for (const n of all) claimed.set(n, name);
      f = { name, kind, help, unit, view, series: [] };
      fams.set(name, f);
      return f;
    }
    if (f.view !== view || f.kind !== kind) {
      conflicts++;
      if (refused.length < 16) refused.push({ name, view, key, cgroup: cgPath, owner: name });
      return null;
    }
    return f;
  };
  // The family of the j-th series of a kept cgroup, as found for the cgroup before (they come in the same order).
  const famAt: Array<Family | null> = [];
  for (const c of snap.cgroups) {
    cgPath = c.path;
    let byPath = bases.get(c.labels);
    if (!byPath) {
      byPath = new Map();
      bases.set(c.labels, byPath);
    }
    let b = byPath.size === 1 ? byPath.values().next().value : undefined;
    if (!b || b.hierarchy !== c.hierarchy || b.path !== c.path) {
      const bk = `${c.hierarchy}\0${c.path}`;
      b = byPath.get(bk);
      if (!b) {
        const pairs = cgroupPairs(c);
        b = {
          labels: c.labels,
          hierarchy: c.hierarchy,
          path: c.path,
          pairs,
          text: pairsText(pairs),
          series: new Map(),
        };
        // One labels object shared by many cgroups (not the snapshot's way): bounded.
        if (byPath.size >= 1024) byPath.clear();
        byPath.set(bk, b);
      }
    }
    const last = b.last;
    if (
      last &&
      last.id === c.id &&
      last.level === c.level &&
      last.buckets === opts.buckets &&
      sameSamples(last, c.views)
    ) {
      // Nothing moved: the same series objects (and their kept renderings), no number looked at.
      const out = last.out;
      for (let j = 0; j < out.length; j++) {
        const e = out[j]!;
        let f = famAt[j];
        if (f === undefined || f === null || f.name !== e.name || f.kind !== e.kind || f.view !== e.view) {
          f = family(e.name, e.kind, e.view, e.key, e.scale);
          famAt[j] = f;
        }
        if (f) f.series.push(e.s);
      }
      continue;
    }
    const base = b.pairs;
    const baseText = b.text;
    const prev = b.series;
    const next = new Map<string, Series>();
    const out: Emitted[] = [];
    let keepable = true;
    const fam = (name: string, kind: Kind, view: string, key: string, scale: number) => {
      const f = family(name, kind, view, key, scale);
      if (!f) return null;
      return {
        f,
        push(s: Series, kept: boolean): void {
          f.series.push(s);
          out.push({ name, kind, view, key, scale, s });
          if (!kept) keepable = false;
        },
      };
    };
    for (const [view, sample] of c.views) {
      if (view === 'info') {
        const f = family('cgview_cgroup_info', 'info', view, '', 1);
        if (!f) continue;
        const k = 'info';
        let s = prev.get(k);
        const pl = s?.pairs;
        if (!s || pl![pl!.length - 2]![1] !== c.id || pl![pl!.length - 1]![1] !== String(c.level)) {
          const pairs: Array<[string, string]> = [...base, ['cgroup_id', c.id], ['level', String(c.level)]];
          s = { labels: pairsText(pairs), pairs, value: 1 };
        }
        next.set(k, s);
        f.series.push(s);
        out.push({ name: f.name, kind: 'info', view, key: '', scale: 1, s });
        continue;
      }
      addView(c, view, sample, base, baseText, fam, idPath, opts, prev, next);
    }
    b.series = next;
    b.last = keepable
      ? {
          views: [...c.views.keys()],
          samples: [...c.views.values()],
          id: c.id,
          level: c.level,
          buckets: opts.buckets,
          out,
        }
      : undefined;
  }
  return { families: [...fams.values()], conflicts, refused };
}

/** Names met in one view output (one set, cleared per output). */
const seenNames = new Set<string>();

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
  { want: ExportOptions['buckets']; scale: number; idx: number[]; le: number[] }
>();
/** Canonical bound arrays: one per content, so that identity says "same bounds" across reads. */
let canon = new WeakMap<readonly number[], readonly number[]>();
const canonList: Array<readonly number[]> = [];
function canonical(bounds: readonly number[]): readonly number[] {
  const c = canon.get(bounds);
  if (c) return c;
  let found: readonly number[] | undefined;
  for (const k of canonList)
    if (k.length === bounds.length && k.every((b, i) => b === bounds[i])) {
      found = k;
      break;
    }
  if (!found) {
    found = bounds;
    canonList.push(bounds);
    if (canonList.length > 64) canonList.shift();
  }
  canon.set(bounds, found);
  return found;
}

function picked(raw: readonly number[], scale: number, want: ExportOptions['buckets']) {
  const bounds = canonical(raw);
  const have = pickCache.get(bounds);
  if (have && have.want === want && have.scale === scale) return have;
  const idx = scale === 1e-9 ? pickBuckets(bounds, scale, want) : bounds.map((_, i) => i);
  const p = { want, scale, idx, le: idx.map((i) => toBase(bounds[i]!, scale)) };
  pickCache.set(bounds, p);
  return p;
}
/** Tests: forget cached bucket picks. */
export function resetPickCache(): void {
  pickCache = new WeakMap();
  canon = new WeakMap();
  canonList.length = 0;
}

function addView(
  c: CgroupSnap,
  view: string,
  sample: ViewSample,
  base: Array<[string, string]>,
  baseText: string,
  family: (
    name: string,
    kind: Kind,
    view: string,
    key: string,
    scale: number,
  ) => { f: Family; push(s: Series, kept: boolean): void } | null,
  idPath: (hier: string, id: string) => string | undefined,
  opts: ExportOptions,
  prev: Map<string, Series>,
  next: Map<string, Series>,
): void {
  // One series per name and labels: a view printing `x_ns` and `x_seconds` would name both x_seconds.
  const seen = sample.metrics.length > 1 ? seenNames : null;
  seen?.clear();
  for (const m of sample.metrics) {
    const name = fullName(view, m.name);
    if (seen) {
      const k = m.labels ? `${name}{${JSON.stringify(m.labels)}` : name;
      if (seen.has(k)) continue;
      seen.add(k);
    }
    const f = family(name, m.kind, view, m.key, m.scale);
    if (!f) continue;
    // Series with a cgroup-id label carry that cgroup's path, which may change: never kept as they are.
    const keep = !m.labels || !Object.keys(m.labels).some(isCgroupFamily);
    // The series of the last scrape, if its numbers are these (an idle cgroup): the formats keep
    // its rendered form. Not for cgroup-id labels, whose path label may have changed.
    let mk: string | null = fullName(view, m.name);
    if (m.labels)
      mk = Object.keys(m.labels).some(isCgroupFamily) ? null : `${mk}\0${JSON.stringify(m.labels)}`;
    const old = mk === null ? undefined : prev.get(mk);
    if (old && !m.hist && old.hist === undefined && old.value === toBase(m.value, m.scale)) {
      next.set(mk!, old);
      f.push(old, keep);
      continue;
    }
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
      const ns: Series = { labels, pairs, value: toBase(m.value, m.scale) };
      if (mk !== null) next.set(mk, ns);
      f.push(ns, keep);
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
    let last = 0;
    const cum: number[] = new Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      let v = h.cum[idx[j]!]!;
      if (v < last) v = last;
      if (v > count) v = count;
      cum[j] = v;
      last = v;
    }
    const sum = h.sum === undefined ? undefined : toBase(h.sum, m.scale);
    const oh = old?.hist;
    if (oh?.all && oh.le === le && oh.count === count && oh.sum === sum) {
      // Every view bucket, not only the exported ones: the native histogram carries them all.
      const a = oh.all.cum;
      let same = a.length === h.cum.length && oh.all.count === h.count;
      for (let j = 0; same && j < a.length; j++) if (a[j] !== h.cum[j]) same = false;
      if (same) {
        next.set(mk!, old!);
        f.push(old!, keep);
        continue;
      }
    }
    const hs: Series = {
      labels,
      pairs,
      value: count,
      hist: {
        le,
        cum,
        count,
        sum,
        scale: m.scale,
        all: h,
      },
    };
    if (mk !== null) next.set(mk, hs);
    f.push(hs, keep);
  }
}
