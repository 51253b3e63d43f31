/**
 * `cgview top`'s two faces: the batch printer (plain tables or one JSON
 * object per interval) and the interactive screen (state, keys, drawing).
 */
import os from 'node:os';
import { isCgroupFamily } from '../stats/keys.js';
import { type Frame, frame, type Row, type Series } from './model.js';
import { type Key, Screen, type Styles, styles, wantColour } from './screen.js';
import { Sampler, type Snapshot, type Target } from './source.js';
import {
  columnsOf,
  cut,
  FIXED,
  fmtNs,
  fmtNum,
  fmtPct,
  headerLine,
  histogramBars,
  layout,
  type Ordered,
  orderRows,
  padRight,
  printable,
  rowLine,
  shortenMiddle,
} from './table.js';

export interface TopOptions {
  targets: Target[];
  delaySec: number;
  sort: string;
  depth: number;
  iterations: number | undefined;
  /** Batch text, JSON lines, or the screen. */
  output: 'batch' | 'json' | 'screen';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** "3 cgroups unreadable: EACCES on sched_lat (3), cgroup.procs (1)" or '' when all was read. */
export function unreadableLine(rows: readonly Row[]): string {
  let n = 0;
  const by = new Map<string, number>();
  for (const r of rows) {
    if (!r.errors.length) continue;
    n++;
    for (const e of r.errors) {
      const k = `${e.code} on ${e.what}`;
      by.set(k, (by.get(k) ?? 0) + 1);
    }
  }
  if (!n) return '';
  const parts = [...by].sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k} (${c})`);
  return `${n} cgroup${n === 1 ? '' : 's'} unreadable (marked !): ${parts.join(', ')}`;
}

/** Paths of the cgroups of a frame by id (for labels that hold cgroup ids). */
export function idPaths(rows: readonly Row[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of rows) if (r.cgroupId !== undefined) m.set(r.cgroupId, printable(r.path));
  return m;
}

/**
 * A series' labels that hold cgroup ids (family `culprit` or `…_cgroup`,
 * the key conventions) as paths: `{ culprit: '/system.slice' }`; undefined
 * when it has none. An id top did not see (another hierarchy, gone) stays an id.
 */
export function labelPaths(
  s: Series,
  paths: ReadonlyMap<string, string>,
): Record<string, string> | undefined {
  if (!s.labels) return undefined;
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(s.labels))
    if (isCgroupFamily(k) && /^[0-9]+$/.test(v)) {
      out ??= {};
      out[k] = paths.get(v) ?? `id ${v}`;
    }
  return out;
}

// --- batch ----------------------------------------------------------------------------------------

/** A frame as a plain table: whole paths, every column, no escapes. */
export function batchText(f: Frame, sort: string, hostname = os.hostname()): string {
  const cols = columnsOf(f.columns, 1000);
  const ordered = orderRows(f.rows, cols, { mode: 'flat', sort });
  const names = ordered.map((o) => (o.row.errors.length ? '!' : '') + printable(o.row.path));
  const pathWidth = Math.max(6, ...names.map((n) => [...n].length));
  const l = { pathWidth, columns: cols };
  const lines = [
    `cgview top  ${printable(hostname)}  ${new Date(f.at).toISOString()}  interval ${f.seconds.toFixed(2)}s  ${f.rows.length} cgroups  sort ${sort}`,
    headerLine(l, sort).trimEnd(),
  ];
  for (const o of ordered) lines.push(rowLine(o, l, 'flat').trimEnd());
  const u = unreadableLine(f.rows);
  if (u) lines.push(u);
  for (const m of f.missing) lines.push(`cannot list ${printable(m.what)}: ${m.code}`);
  return `${lines.join('\n')}\n\n`;
}

/** A frame as one JSON object (docs/top.md has the schema). */
export function frameJson(f: Frame, sort: string): Record<string, unknown> {
  const cols = columnsOf(f.columns);
  const paths = idPaths(f.rows);
  const ordered = orderRows(f.rows, cols, { mode: 'flat', sort });
  return {
    time: new Date(f.at).toISOString(),
    interval_seconds: f.seconds,
    sort,
    cgroups: ordered.map(({ row: r }) => {
      const o: Record<string, unknown> = {
        path: printable(r.path),
        hierarchy: r.hierarchy,
        tree: printable(r.tree),
        tree_dir: printable(r.key),
        depth: r.depth,
        cgroup_id: r.cgroupId ?? null,
        tasks: r.tasks ?? null,
        threads: r.threads ?? null,
        cpu_pct: r.cpuPct ?? null,
      };
      if (r.sched) {
        const s = r.sched;
        o['sched'] = {
          view: s.view,
          first: s.first,
          wait_per_second: s.fig.waitPerSec,
          waits_per_second: s.fig.waitsPerSec,
          p50_ns: s.fig.p50Ns ?? null,
          p99_ns: s.fig.p99Ns ?? null,
          self_pct: s.fig.selfPct ?? null,
          histogram: s.hist
            ? { bounds_ns: s.hist.bounds, cumulative: s.hist.cum, count: s.hist.count }
            : null,
          totals: {
            wait_ns: s.totals.waitNs ?? null,
            waits: s.totals.waits ?? null,
            queue_self_ns: s.totals.selfNs ?? null,
            queue_other_ns: s.totals.otherNs ?? null,
            queue_self_max_ns: s.totals.selfMaxNs ?? null,
            queue_other_max_ns: s.totals.otherMaxNs ?? null,
          },
        };
      } else o['sched'] = null;
      const views: Record<string, Record<string, unknown>> = {};
      for (const s of r.series) {
        const v = views[s.view] ?? {};
        views[s.view] = v;
        const e: Record<string, unknown> = {
          kind: s.kind,
          [s.kind === 'gauge' ? 'value' : 'per_second']: s.value,
        };
        const cgs = labelPaths(s, paths);
        if (cgs) e['cgroups'] = cgs;
        v[s.name] = e;
      }
      o['views'] = views;
      o['unreadable'] = r.errors.map((e) => ({ file: e.what, error: e.code }));
      return o;
    }),
    missing: f.missing.map((m) => ({ dir: printable(m.what), error: m.code })),
  };
}

/** Batch and JSON: a baseline sample, then one output per interval. */
export async function runBatch(o: TopOptions, write: (s: string) => void): Promise<void> {
  const sampler = new Sampler(o.targets, o.depth);
  let prev = sampler.sample();
  let next = Date.now();
  for (let i = 0; o.iterations === undefined || i < o.iterations; i++) {
    next += o.delaySec * 1000;
    await sleep(next - Date.now());
    const cur = sampler.sample();
    const f = frame(prev, cur);
    prev = cur;
    write(o.output === 'json' ? `${JSON.stringify(frameJson(f, o.sort))}\n` : batchText(f, o.sort));
  }
}

// --- interactive ------------------------------------------------------------------------------------

const HELP = [
  'cgview top: keys',
  '',
  '  q            quit (also Ctrl-C)',
  '  up/down j k  move the selection; PgUp PgDn Home End',
  '  s            sort by the next column;  < >  previous / next column;  r  reverse',
  '  t            tree / flat',
  '  space        tree: fold / unfold the selected cgroup;  left right  fold, unfold',
  '  p            pause / resume',
  '  /            filter by a substring of the path (Enter keeps it, Esc clears it)',
  '  Enter        detail pane: the interval wait histogram and the totals (Enter/Esc closes)',
  '  Ctrl-L       redraw',
  '  ?            this help (any key closes it)',
  '',
  'WAIT/s: sched wait time per second (average tasks waiting); WAITS/s: completed waits per second;',
  'P50/P99: wait percentiles of the interval; SELF%: share of the wait spent behind the same cgroup;',
  'CPU%: cpu.stat usage_usec (100 = one CPU, includes descendants); ! marks a cgroup top could not read whole.',
];

function uptime(): string {
  const s = Math.floor(os.uptime());
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d ? `${d}d ` : ''}${h}:${String(m).padStart(2, '0')}`;
}

export class TopScreen {
  readonly o: TopOptions;
  readonly screen: Screen;
  readonly st: Styles;
  readonly ellipsis: string;
  readonly sampler: Sampler;
  prev: Snapshot | undefined;
  f: Frame | undefined;
  mode: 'flat' | 'tree' = 'flat';
  sort: string;
  reverse = false;
  filter = '';
  editing: string | undefined;
  collapsed = new Set<string>();
  selected: string | undefined;
  top = 0;
  paused = false;
  detail = false;
  help = false;
  #timer: NodeJS.Timeout | undefined;
  #done: (() => void) | undefined;
  #ordered: Ordered[] = [];

  constructor(o: TopOptions, screen = new Screen()) {
    this.o = o;
    this.screen = screen;
    this.sort = o.sort;
    this.sampler = new Sampler(o.targets, o.depth);
    this.st = styles(wantColour(process.env, process.stdout.isTTY === true));
    const loc = `${process.env['LC_ALL'] || process.env['LC_CTYPE'] || process.env['LANG'] || ''}`;
    this.ellipsis = /utf-?8/i.test(loc) ? '…' : '~';
  }

  run(): Promise<void> {
    return new Promise((resolve) => {
      this.#done = resolve;
      this.screen.enter(
        (keys) => this.keys(keys),
        () => this.render(),
      );
      this.prev = this.sampler.sample();
      this.render();
      // The first figures after a short interval, so the screen fills at once; then every delay.
      this.schedule(Math.min(this.o.delaySec, 1) * 1000);
    });
  }

  schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.tick(), ms);
  }

  tick(): void {
    if (this.paused) return;
    const cur = this.sampler.sample();
    this.f = frame(this.prev, cur);
    this.prev = cur;
    this.render();
    this.schedule(this.o.delaySec * 1000);
  }

  quit(): void {
    clearTimeout(this.#timer);
    this.screen.restore();
    this.#done?.();
  }

  sortable(): string[] {
    return ['path', ...FIXED.map((c) => c.id), ...(this.f?.columns ?? [])];
  }

  keys(keys: Key[]): void {
    for (const k of keys) {
      if (k === 'ctrl-c') {
        this.quit();
        return;
      }
      if (this.editing !== undefined) {
        if (k === 'enter') {
          this.filter = this.editing;
          this.editing = undefined;
        } else if (k === 'escape') {
          this.filter = '';
          this.editing = undefined;
        } else if (k === 'backspace') {
          this.editing = this.editing.slice(0, -1);
          this.filter = this.editing;
        } else if (typeof k === 'object') {
          this.editing += k.char;
          this.filter = this.editing;
        }
        continue;
      }
      if (this.help) {
        this.help = false;
        continue;
      }
      const c = typeof k === 'object' ? k.char : undefined;
      if (c === 'q') {
        this.quit();
        return;
      }
      if (c === '?' || c === 'h') this.help = true;
      else if (k === 'up' || c === 'k') this.move(-1);
      else if (k === 'down' || c === 'j') this.move(1);
      else if (k === 'pageup') this.move(-this.pageRows());
      else if (k === 'pagedown') this.move(this.pageRows());
      else if (k === 'home' || c === 'g') this.move(-1e9);
      else if (k === 'end' || c === 'G') this.move(1e9);
      else if (c === 's' || c === '>' || c === '<') {
        const ks = this.sortable();
        const i = ks.indexOf(this.sort);
        this.sort = ks[(i + (c === '<' ? ks.length - 1 : 1)) % ks.length]!;
      } else if (c === 'r') this.reverse = !this.reverse;
      else if (c === 't') this.mode = this.mode === 'flat' ? 'tree' : 'flat';
      else if (c === 'p') {
        this.paused = !this.paused;
        if (!this.paused) {
          // A fresh baseline: the next figures are of an interval after the pause.
          this.prev = this.sampler.sample();
          this.schedule(Math.min(this.o.delaySec, 1) * 1000);
        }
      } else if (c === '/') this.editing = this.filter;
      else if (k === 'enter') this.detail = !this.detail;
      else if (k === 'escape') {
        if (this.detail) this.detail = false;
        else this.filter = '';
      } else if (c === ' ' && this.selected) {
        if (this.collapsed.has(this.selected)) this.collapsed.delete(this.selected);
        else this.collapsed.add(this.selected);
      } else if (k === 'left' && this.selected) {
        const o = this.#ordered.find((x) => x.row.key === this.selected);
        if (o?.children && !o.collapsed) this.collapsed.add(this.selected);
        else if (o?.row.parent && this.#ordered.some((x) => x.row.key === o.row.parent))
          this.selected = o.row.parent;
      } else if (k === 'right' && this.selected) this.collapsed.delete(this.selected);
      else if (k === 'ctrl-l') this.screen.invalidate();
    }
    this.render();
  }

  pageRows(): number {
    return Math.max(1, this.tableRows());
  }

  /** Lines for the table: all of the body, or with the detail pane open, what the rows need up to half of it. */
  tableRows(): number {
    const h = this.screen.rows;
    const body = h - 4; // two header lines, the column header, the footer
    if (!this.detail) return Math.max(1, body);
    return Math.max(3, Math.min(this.#ordered.length + 1, Math.floor(body / 2)));
  }

  move(d: number): void {
    const ks = this.#ordered.map((o) => o.row.key);
    if (!ks.length) return;
    const i = this.selected === undefined ? -1 : ks.indexOf(this.selected);
    const j = i < 0 ? 0 : Math.min(ks.length - 1, Math.max(0, i + d));
    this.selected = ks[j];
  }

  /** The whole screen as lines (also what tests of the layout look at). */
  lines(): string[] {
    const W = Math.max(this.screen.columns, 20);
    const H = this.screen.rows;
    const st = this.st;
    const f = this.f;
    const rows = f?.rows ?? [];
    const trees = new Set(this.o.targets.map((t) => t.tree.dir)).size;
    const load = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    const time = new Date().toTimeString().slice(0, 8);
    const out: string[] = [];
    const fit = (s: string) => padRight(cut(s, W), W);
    out.push(
      st.reverse(
        fit(
          `cgview top - ${printable(os.hostname())}  ${time}  up ${uptime()}  load ${load}  interval ${this.o.delaySec}s`,
        ),
      ),
    );
    const flags = [
      `${rows.length} cgroups in ${trees} tree${trees === 1 ? '' : 's'}`,
      `sort ${this.sort}${this.reverse ? ' (reversed)' : ''}`,
      this.mode,
      this.paused ? 'PAUSED' : '',
      this.filter ? `filter "${this.filter}"` : '',
      f ? '' : 'collecting…',
      '? help',
    ].filter(Boolean);
    out.push(st.info(fit(flags.join('  '))));
    if (this.help) {
      for (const l of HELP) out.push(fit(l));
      while (out.length < H) out.push('');
      return out.slice(0, H);
    }
    const cols = columnsOf(f?.columns ?? []);
    const opts = {
      mode: this.mode,
      sort: this.sort,
      reverse: this.reverse,
      filter: this.filter,
      collapsed: this.collapsed,
    };
    const ordered = orderRows(rows, cols, opts);
    this.#ordered = ordered;
    if (ordered.length && (this.selected === undefined || !ordered.some((o) => o.row.key === this.selected)))
      this.selected = ordered[0]!.row.key;
    const longest = Math.max(0, ...ordered.map((o) => [...printable(o.row.path)].length + o.level * 2 + 2));
    const l = layout(W, f?.columns ?? [], longest);
    out.push(st.reverse(fit(headerLine(l, this.sort))));
    const n = this.tableRows();
    const sel = ordered.findIndex((o) => o.row.key === this.selected);
    if (sel >= 0) {
      if (sel < this.top) this.top = sel;
      if (sel >= this.top + n) this.top = sel - n + 1;
    }
    this.top = Math.max(0, Math.min(this.top, Math.max(0, ordered.length - n)));
    for (let i = this.top; i < this.top + n; i++) {
      const o = ordered[i];
      if (!o) {
        out.push('');
        continue;
      }
      let line = fit(rowLine(o, l, this.mode, this.ellipsis));
      if (o.row.key === this.selected) line = st.reverse(line);
      else if (o.row.errors.length) line = st.warn(line);
      out.push(line);
    }
    if (this.detail) {
      const r = ordered.find((o) => o.row.key === this.selected)?.row;
      const d = r ? this.detailLines(r, W) : ['(nothing selected)'];
      const room = H - out.length - 1;
      // Styles go on after fitting: escape codes take no columns.
      for (let i = 0; i < room; i++) {
        const l = i < d.length ? fit(d[i]!) : '';
        out.push(i === 0 ? st.bold(l) : l.startsWith('cannot read ') ? st.warn(l) : l);
      }
    }
    while (out.length < H - 1) out.push('');
    const unread = f ? unreadableLine(f.rows) : '';
    if (this.editing !== undefined)
      out.push(fit(`/${this.editing}_   (Enter keeps the filter, Esc clears it)`));
    else if (unread) out.push(st.warn(fit(unread)));
    else out.push(fit('q quit  s sort  t tree  / filter  Enter details  p pause  ? help'));
    return out.slice(0, H);
  }

  detailLines(r: Row, W: number): string[] {
    const d: string[] = [];
    d.push(
      cut(
        `${shortenMiddle(printable(r.path), W - 30, this.ellipsis)}  (${r.hierarchy}, id ${r.cgroupId ?? '?'})`,
        W,
      ),
    );
    d.push(`tree dir ${printable(r.key)}`);
    d.push(`tasks ${r.tasks ?? '-'}  threads ${r.threads ?? '-'}  CPU ${fmtPct(r.cpuPct)}%`);
    const s = r.sched;
    if (s) {
      d.push(
        `${printable(s.view)}: wait ${fmtNum(s.fig.waitPerSec)}/s  waits ${fmtNum(s.fig.waitsPerSec)}/s  p50 ${fmtNs(s.fig.p50Ns)}  p99 ${fmtNs(s.fig.p99Ns)}  self ${fmtPct(s.fig.selfPct)}%${s.first ? '  (new: since creation)' : ''}`,
      );
      const t = s.totals;
      d.push(
        `since creation: wait ${fmtNs(t.waitNs)} in ${t.waits ?? '-'} waits, behind self ${fmtNs(t.selfNs)}, behind others ${fmtNs(t.otherNs)}, max ${fmtNs(t.selfMaxNs)}/${fmtNs(t.otherMaxNs)}`,
      );
      d.push('wait histogram of the interval:');
      d.push(...histogramBars(s.hist, W));
    } else d.push('no sched_lat view in this directory');
    const paths = idPaths(this.f?.rows ?? []);
    for (const x of r.series) {
      const cgs = labelPaths(x, paths);
      const who = cgs ? `  (${Object.values(cgs).join(', ')})` : '';
      d.push(
        `${printable(x.view)}: ${printable(x.name)} ${fmtNum(x.value)}${x.kind === 'gauge' ? '' : '/s'}${who}`,
      );
    }
    for (const e of r.errors) d.push(`cannot read ${printable(e.what)}: ${e.code}`);
    return d;
  }

  render(): void {
    this.screen.draw(this.lines());
  }
}
