/**
 * The table of `cgview top`: columns, number formats, sorting, flat and tree
 * order, filtering, path shortening, and fitting the columns to a width.
 * Pure: strings in, strings out (the screen and the batch printer use it).
 */
import type { Row } from './model.js';

// --- text ---------------------------------------------------------------------------------------

/**
 * A byte string (a cgroup path) as text for a terminal: UTF-8 decoded (an
 * invalid byte becomes U+FFFD) and every control character (C0, DEL, C1)
 * written as \xNN, so that a cgroup name cannot send escape sequences.
 */
export function printable(bytes: string): string {
  let t = shown.get(bytes);
  if (t === undefined) {
    if (shown.size > 200_000) shown.clear();
    t = toPrintable(bytes);
    shown.set(bytes, t);
  }
  return t;
}

/** Paths come back every refresh: each is decoded once. */
const shown = new Map<string, string>();

function toPrintable(bytes: string): string {
  // ASCII without control characters is its own text.
  if (/^[\x20-\x7e]*$/.test(bytes)) return bytes;
  return Buffer.from(bytes, 'latin1')
    .toString('utf8')
    .replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
      return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    });
}

/** Columns a string takes: one per code point (wide East Asian characters are taken as one). */
export function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The first `w` columns of `s`. */
export function cut(s: string, w: number): string {
  if (w <= 0) return '';
  if (s.length <= w) return s; // ASCII fast path (length counts UTF-16 units ≥ code points)
  return [...s].slice(0, w).join('');
}

export function padRight(s: string, w: number): string {
  const n = width(s);
  return n >= w ? cut(s, w) : s + ' '.repeat(w - n);
}

export function padLeft(s: string, w: number): string {
  const n = width(s);
  return n >= w ? cut(s, w) : ' '.repeat(w - n) + s;
}

/**
 * `s` in at most `w` columns, shortened in the middle with `ellipsis`: the
 * start (where the slice is) and the end (the cgroup's own name) stay.
 */
export function shortenMiddle(s: string, w: number, ellipsis = '…'): string {
  const cps = [...s];
  if (cps.length <= w) return s;
  const e = width(ellipsis);
  if (w <= e) return cut(ellipsis, w);
  const keep = w - e;
  const head = Math.floor(keep / 2);
  const tail = keep - head;
  return cps.slice(0, head).join('') + ellipsis + cps.slice(cps.length - tail).join('');
}

// --- numbers ------------------------------------------------------------------------------------

/** A duration in ns in at most 6 columns: 850ns, 12.3us, 123us, 1.23ms, 45.6ms, 1.23s. */
export function fmtNs(ns: number | undefined): string {
  if (ns === undefined || !Number.isFinite(ns)) return '-';
  const u: Array<[number, string]> = [
    [1, 'ns'],
    [1e3, 'us'],
    [1e6, 'ms'],
    [1e9, 's'],
  ];
  let i = 0;
  while (i < u.length - 1 && ns >= u[i + 1]![0] * 0.9995) i++;
  const v = ns / u[i]![0];
  const digits = i === 0 || v >= 99.95 ? 0 : v >= 9.995 ? 1 : 2;
  return `${v.toFixed(digits)}${u[i]![1]}`;
}

/** A rate or figure in at most 6 columns: 0.00, 1.23, 12.3, 123, 1234, 12.3k, 1.23M. */
export function fmtNum(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a < 9.995) return v.toFixed(2);
  if (a < 99.95) return v.toFixed(1);
  if (a < 9999.5) return v.toFixed(0);
  if (a < 99950) return `${(v / 1e3).toFixed(1)}k`;
  if (a < 9999500) return `${(v / 1e3).toFixed(0)}k`;
  if (a < 99950000) return `${(v / 1e6).toFixed(1)}M`;
  return `${(v / 1e6).toFixed(0)}M`;
}

export function fmtPct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(1);
}

const fmtInt = (v: number | undefined): string => (v === undefined ? '-' : String(v));

// --- columns ------------------------------------------------------------------------------------

export interface Column {
  /** Sort key and --sort name. */
  id: string;
  header: string;
  width: number;
  value(r: Row): number | undefined;
  text(r: Row): string;
}

/** The fixed columns after the path, in order. */
export const FIXED: readonly Column[] = [
  { id: 'tasks', header: 'TASKS', width: 5, value: (r) => r.tasks, text: (r) => fmtInt(r.tasks) },
  { id: 'threads', header: 'THR', width: 5, value: (r) => r.threads, text: (r) => fmtInt(r.threads) },
  { id: 'cpu', header: 'CPU%', width: 6, value: (r) => r.cpuPct, text: (r) => fmtPct(r.cpuPct) },
  {
    id: 'wait',
    header: 'WAIT/s',
    width: 6,
    value: (r) => r.sched?.fig.waitPerSec,
    text: (r) => fmtNum(r.sched?.fig.waitPerSec),
  },
  {
    id: 'waits',
    header: 'WAITS/s',
    width: 7,
    value: (r) => r.sched?.fig.waitsPerSec,
    text: (r) => fmtNum(r.sched?.fig.waitsPerSec),
  },
  {
    id: 'p50',
    header: 'P50',
    width: 6,
    value: (r) => r.sched?.fig.p50Ns,
    text: (r) => fmtNs(r.sched?.fig.p50Ns),
  },
  {
    id: 'p99',
    header: 'P99',
    width: 6,
    value: (r) => r.sched?.fig.p99Ns,
    text: (r) => fmtNs(r.sched?.fig.p99Ns),
  },
  {
    id: 'self',
    header: 'SELF%',
    width: 5,
    value: (r) => r.sched?.fig.selfPct,
    text: (r) => fmtPct(r.sched?.fig.selfPct),
  },
];

/** A generic column: one view's counter as a rate. */
export function genericColumn(id: string, maxWidth = 16): Column {
  return {
    id,
    // id is `view:metric`: a view file's name, which need not be printable.
    header: printable(id),
    width: Math.max(7, Math.min(width(printable(id)), maxWidth)),
    value: (r) => r.columns.get(id),
    text: (r) => fmtNum(r.columns.get(id)),
  };
}

export const SORT_KEYS = ['path', ...FIXED.map((c) => c.id)];

/** Every sortable column of a frame: path, the fixed ones, the generic ones. */
export function columnsOf(generic: readonly string[], maxWidth = 16): Column[] {
  return [...FIXED, ...generic.map((g) => genericColumn(g, maxWidth))];
}

// --- order --------------------------------------------------------------------------------------

export interface OrderOptions {
  mode: 'flat' | 'tree';
  /** A column id or 'path'. */
  sort: string;
  /** Largest first (the default for figures; path sorts A→Z unless reversed). */
  reverse?: boolean;
  /** Substring of the path (case-insensitive); '' none. */
  filter?: string;
  /** Tree mode: rows whose children are hidden. */
  collapsed?: ReadonlySet<string>;
}

export interface Ordered {
  row: Row;
  /** Indent level in tree mode (0 in flat mode). */
  level: number;
  /** Tree mode: it has children shown or hidden. */
  children: number;
  collapsed: boolean;
}

function comparator(sort: string, cols: readonly Column[], reverse: boolean): (a: Row, b: Row) => number {
  if (sort === 'path') {
    return (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) * (reverse ? -1 : 1);
  }
  const col = cols.find((c) => c.id === sort);
  return (a, b) => {
    const x = col?.value(a);
    const y = col?.value(b);
    // Rows without the figure go last, whatever the direction.
    if (x === undefined || y === undefined || Number.isNaN(x) || Number.isNaN(y)) {
      const ax = x === undefined || Number.isNaN(x);
      const by = y === undefined || Number.isNaN(y);
      if (ax !== by) return ax ? 1 : -1;
    } else if (x !== y) return (y - x) * (reverse ? -1 : 1);
    return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  };
}

/** The rows to show, in order: sorted flat list, or the tree with siblings sorted. */
export function orderRows(rows: readonly Row[], cols: readonly Column[], o: OrderOptions): Ordered[] {
  const cmp = comparator(o.sort, cols, o.reverse ?? false);
  const f = (o.filter ?? '').toLowerCase();
  const matches = (r: Row) => f === '' || printable(r.path).toLowerCase().includes(f);
  if (o.mode === 'flat') {
    return rows
      .filter(matches)
      .sort(cmp)
      .map((row) => ({ row, level: 0, children: 0, collapsed: false }));
  }
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const kids = new Map<string, Row[]>();
  const tops: Row[] = [];
  for (const r of rows) {
    if (r.parent !== undefined && byKey.has(r.parent)) {
      const k = kids.get(r.parent);
      if (k) k.push(r);
      else kids.set(r.parent, [r]);
    } else tops.push(r);
  }
  // A row is shown when it matches or one of its descendants does.
  const shown = new Map<string, boolean>();
  const visit = (r: Row): boolean => {
    let s = matches(r);
    for (const c of kids.get(r.key) ?? []) if (visit(c)) s = true;
    shown.set(r.key, s);
    return s;
  };
  for (const t of tops) visit(t);
  const out: Ordered[] = [];
  const stack: Array<{ row: Row; level: number }> = tops
    .filter((t) => shown.get(t.key))
    .sort(cmp)
    .reverse()
    .map((row) => ({ row, level: 0 }));
  while (stack.length) {
    const { row, level } = stack.pop()!;
    const ch = kids.get(row.key) ?? [];
    const collapsed = o.collapsed?.has(row.key) ?? false;
    out.push({ row, level, children: ch.length, collapsed });
    if (collapsed) continue;
    const vis = ch.filter((c) => shown.get(c.key)).sort(cmp);
    for (let i = vis.length - 1; i >= 0; i--) stack.push({ row: vis[i]!, level: level + 1 });
  }
  return out;
}

// --- layout -------------------------------------------------------------------------------------

export interface Layout {
  /** Width of the path column. */
  pathWidth: number;
  columns: Column[];
}

export const MIN_PATH = 20;

/**
 * Which columns fit in `total` columns: every fixed one (from 80 columns on;
 * below that the narrowest go first), then as many generic ones as fit with
 * a path column of at least MIN_PATH; the path takes the rest, up to what the
 * longest path needs (`longest`).
 */
export function layout(total: number, generic: readonly string[], longest: number): Layout {
  const cols: Column[] = [];
  let used = 0;
  const budget = Math.max(total - MIN_PATH, 0);
  for (const c of FIXED) {
    if (used + c.width + 1 > budget) break;
    cols.push(c);
    used += c.width + 1;
  }
  for (const id of generic) {
    const c = genericColumn(id);
    if (used + c.width + 1 > budget) break;
    cols.push(c);
    used += c.width + 1;
  }
  const pathWidth = Math.max(Math.min(total - used, Math.max(longest, MIN_PATH)), 1);
  return { pathWidth, columns: cols };
}

export function headerLine(l: Layout, sort: string): string {
  // The sort column is marked with a '*' in the space before it (after CGROUP for the path).
  let s = padRight(sort === 'path' ? 'CGROUP*' : 'CGROUP', l.pathWidth);
  for (const c of l.columns) s += `${c.id === sort ? '*' : ' '}${padLeft(c.header, c.width)}`;
  return s;
}

/** The name shown for a row: the whole path (flat) or the indented last name (tree), both printable. */
export function rowName(o: Ordered, mode: 'flat' | 'tree'): string {
  const p = printable(o.row.path);
  const mark = o.row.errors.length ? '!' : '';
  if (mode === 'flat') return mark + p;
  const name = o.level === 0 ? p : p.slice(p.lastIndexOf('/') + 1);
  const twisty = o.children ? (o.collapsed ? '+' : '-') : ' ';
  return `${'  '.repeat(o.level)}${twisty}${mark}${name}`;
}

export function rowLine(o: Ordered, l: Layout, mode: 'flat' | 'tree', ellipsis = '…'): string {
  let s = padRight(shortenMiddle(rowName(o, mode), l.pathWidth, ellipsis), l.pathWidth);
  for (const c of l.columns) s += ` ${padLeft(c.text(o.row), c.width)}`;
  return s;
}

// --- the detail pane's histogram ----------------------------------------------------------------

/**
 * The interval's wait histogram as bars, one line per bucket from the first
 * to the last that has observations: `< 1.02us |####      | 123`.
 */
export function histogramBars(
  h: { bounds: number[]; cum: number[]; count: number } | undefined,
  w: number,
): string[] {
  if (!h || h.count <= 0) return ['(no waits in the interval)'];
  const counts: Array<{ label: string; n: number }> = [];
  let below = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    const c = h.cum[i] ?? below;
    counts.push({ label: `< ${fmtNs(h.bounds[i])}`, n: c - below });
    below = c;
  }
  counts.push({ label: `>=${fmtNs(h.bounds[h.bounds.length - 1])}`, n: h.count - below });
  let first = counts.findIndex((c) => c.n > 0);
  let last = counts.length - 1 - [...counts].reverse().findIndex((c) => c.n > 0);
  if (first < 0) return ['(no waits in the interval)'];
  first = Math.max(0, first);
  last = Math.min(counts.length - 1, last);
  const max = Math.max(...counts.slice(first, last + 1).map((c) => c.n));
  const barW = Math.max(w - 9 - 1 - 10, 5);
  const out: string[] = [];
  for (const c of counts.slice(first, last + 1)) {
    const n = Math.round((c.n / max) * barW);
    const bar = '#'.repeat(c.n > 0 ? Math.max(n, 1) : 0);
    out.push(`${padLeft(c.label, 9)} ${padRight(bar, barW)} ${padLeft(String(c.n), 9)}`);
  }
  return out;
}
