/**
 * cgview's dashboard: the cgroup tree (virtualised), the selected cgroup's
 * charts (uPlot) and latency heat map (own canvas code), live by SSE.
 * No framework: a handful of DOM nodes updated by hand is all it needs.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { fmtBase, fmtCount, fmtNs, fmtPct, fmtRate } from './format.js';
import { binHeatmap, drawHeatmap } from './heatmap.js';
import { heatQuery, matchers, metric, quantileQuery, rateQuery } from './promql.js';
import { type Row, refOf, type SortKey, TreeModel, type TreePayload } from './tree.js';

interface ColumnHistory {
  key: string;
  name: string;
  scale: number;
  labels?: Record<string, string>;
  values: Array<number | null>;
}
interface HistHistory extends Omit<ColumnHistory, 'values'> {
  bounds: Array<number | null>;
  counts: Array<number[] | null>;
  count: Array<number | null>;
  sum: Array<number | null>;
  p50: Array<number | null>;
  p90: Array<number | null>;
  p99: Array<number | null>;
}
interface ViewHistory {
  view: string;
  dt: Array<number | null>;
  counters: ColumnHistory[];
  gauges: ColumnHistory[];
  histograms: HistHistory[];
}
interface SeriesHistory {
  key: string;
  id: string;
  hierarchy: string;
  path: string;
  ended: boolean;
  truncated: boolean;
  t: number[];
  dt: number[];
  views: ViewHistory[];
}
interface Info {
  sampleIntervalMs: number;
  retentionMs: number;
  seq: number;
}

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...kids: Array<Node | string>
): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) if (v !== undefined) e.setAttribute(k, v);
  for (const c of kids) e.append(c);
  return e;
};

const ROW_H = 26;
const RANGES = [5, 15, 30, 60, 180, 360, 1440];

const state = {
  model: new TreeModel(),
  expanded: new Set<string>(),
  sort: 'wait' as SortKey,
  desc: true,
  filter: '',
  cursor: 0,
  visible: [] as Array<{ row: Row; depth: number }>,
  selected: null as string | null,
  compare: null as string | null,
  rangeMin: 15,
  paused: false,
  info: null as Info | null,
  histories: new Map<string, SeriesHistory>(),
  seq: 0,
};

// ---------- URL: selection, comparison, range, pause ----------

function readHash(): void {
  const p = new URLSearchParams(location.hash.slice(1));
  state.selected = p.get('sel');
  state.compare = p.get('cmp');
  const r = Number(p.get('range'));
  if (RANGES.includes(r)) state.rangeMin = r;
  state.paused = p.get('paused') === '1';
  state.filter = p.get('q') ?? '';
}

function writeHash(): void {
  const p = new URLSearchParams();
  if (state.selected) p.set('sel', state.selected);
  if (state.compare) p.set('cmp', state.compare);
  p.set('range', String(state.rangeMin));
  if (state.paused) p.set('paused', '1');
  if (state.filter) p.set('q', state.filter);
  history.replaceState(null, '', `#${p.toString()}`);
}

// ---------- data ----------

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

async function loadTree(): Promise<void> {
  const p = await getJson<TreePayload>('/api/v1/tree');
  state.seq = p.seq;
  state.model.apply(p, true);
  // First load: the top levels open.
  if (state.expanded.size === 0)
    for (const r of state.model.rows.values()) if (r.level <= 1) state.expanded.add(r.key);
  renderTree();
}

function connect(): void {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('open', () => setStatus());
  es.addEventListener('error', () => {
    setStatus('reconnecting…');
    // A stream that ended (its lifetime, an eviction) is reopened by EventSource itself; a refused one (503:
    // too many streams) is not: try again later.
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 10_000);
  });
  es.addEventListener('sample', (ev) => {
    const d = JSON.parse((ev as MessageEvent).data) as {
      seq: number;
      changed: TreePayload;
      removed: string[];
    };
    if (d.seq !== state.seq + 1 && state.seq !== 0) {
      // Missed some (reconnected): take the whole tree again.
      state.seq = d.seq;
      void loadTree();
    } else {
      state.seq = d.seq;
      state.model.apply(d.changed, false, d.removed);
    }
    if (state.paused) return;
    renderTree();
    void loadDetail();
  });
}

// ---------- status line ----------

function setStatus(msg?: string): void {
  const s = $('#status');
  const iv = state.info ? `${state.info.sampleIntervalMs / 1000} s samples` : '';
  s.textContent =
    msg ?? (state.paused ? `paused · ${iv}` : `live · ${iv} · ${state.model.rows.size} cgroups`);
}

// ---------- the tree ----------

const COLS: Array<{ key: SortKey; label: string; title: string; fmt: (r: Row) => string }> = [
  { key: 'tasks', label: 'tasks', title: 'threads in the cgroup', fmt: (r) => fmtCount(r.tasks) },
  { key: 'cpu', label: 'CPU %', title: 'CPU use, 100 = one CPU', fmt: (r) => fmtPct(r.cpu) },
  {
    key: 'wait',
    label: 'wait/s',
    title: 'seconds of run-queue wait per second = average waiting tasks',
    fmt: (r) => fmtRate(r.wait, ''),
  },
  { key: 'p99', label: 'p99', title: '99th percentile of the interval’s waits', fmt: (r) => fmtNs(r.p99) },
  {
    key: 'self',
    label: 'self %',
    title: 'share of the wait spent behind tasks of the same cgroup',
    fmt: (r) => fmtPct(r.self),
  },
];

function buildTreeHeader(): void {
  const head = $('#tree-head');
  head.replaceChildren();
  const mk = (key: SortKey, label: string, title: string, cls: string) => {
    const b = el(
      'button',
      { type: 'button', class: `th ${cls}`, title: `sort by ${title}`, 'data-sort': key },
      label,
    );
    b.addEventListener('click', () => {
      if (state.sort === key) state.desc = !state.desc;
      else {
        state.sort = key;
        state.desc = key !== 'name';
      }
      buildTreeHeader();
      renderTree();
    });
    if (state.sort === key) {
      b.setAttribute('aria-sort', state.desc ? 'descending' : 'ascending');
      b.append(state.desc ? ' ▾' : ' ▴');
    }
    head.append(b);
  };
  mk('name', 'cgroup', 'name', 'name');
  for (const c of COLS) mk(c.key, c.label, c.title, 'num');
}

const pool: HTMLElement[] = [];

function renderTree(): void {
  state.visible = state.model.visible(state.expanded, state.sort, state.desc, state.filter);
  if (state.cursor >= state.visible.length) state.cursor = Math.max(0, state.visible.length - 1);
  $('#tree-spacer').style.height = `${state.visible.length * ROW_H}px`;
  $('#count').textContent = state.filter
    ? `${state.visible.filter((v) => v.row.path.toLowerCase().includes(state.filter.toLowerCase())).length} match`
    : `${state.model.rows.size} cgroups`;
  paintRows();
  setStatus();
}

function paintRows(): void {
  const box = $('#tree-body');
  const first = Math.max(0, Math.floor(box.scrollTop / ROW_H) - 4);
  const n = Math.ceil(box.clientHeight / ROW_H) + 8;
  const rowsEl = $('#tree-rows');
  while (pool.length < n) {
    const r = el('div', { class: 'row', role: 'row' });
    r.addEventListener('click', (ev) => {
      const i = Number(r.dataset['i']);
      state.cursor = i;
      const row = state.visible[i]?.row;
      if (!row) return;
      if ((ev.target as HTMLElement).classList.contains('tog')) toggle(row);
      else if (ev.shiftKey || ev.ctrlKey || ev.metaKey) setCompare(row);
      else select(row);
    });
    pool.push(r);
    rowsEl.append(r);
  }
  for (let k = 0; k < pool.length; k++) {
    const e = pool[k]!;
    const i = first + k;
    const v = state.visible[i];
    if (k >= n || !v) {
      if (!e.hidden) {
        e.hidden = true;
        e.replaceChildren();
      }
      continue;
    }
    e.hidden = false;
    e.dataset['i'] = String(i);
    e.style.transform = `translateY(${i * ROW_H}px)`;
    const r = v.row;
    const ref = refOf(r);
    e.setAttribute('aria-selected', String(ref === state.selected));
    e.classList.toggle('cursor', i === state.cursor);
    e.classList.toggle('compare', ref === state.compare);
    e.setAttribute('aria-level', String(v.depth + 1));
    if (r.children.length)
      e.setAttribute('aria-expanded', String(state.filter !== '' || state.expanded.has(r.key)));
    else e.removeAttribute('aria-expanded');
    // Cells made once per pooled row and updated in place: a click whose mousedown
    // landed on a cell must find it still there at mouseup, live updates or not.
    if (e.childElementCount !== COLS.length + 1) {
      const name = el(
        'span',
        { class: 'cell name', role: 'gridcell' },
        el('span', { class: 'tog', 'aria-hidden': 'true' }),
        '',
      );
      e.replaceChildren(name, ...COLS.map(() => el('span', { class: 'cell num', role: 'gridcell' })));
    }
    const name = e.children[0] as HTMLElement;
    const title = `${r.hierarchy} ${r.path} (id ${r.id})`;
    if (name.title !== title) name.title = title;
    setText(
      name.children[0]!,
      r.children.length ? (state.filter || state.expanded.has(r.key) ? '▾' : '▸') : '',
    );
    if (name.lastChild!.textContent !== r.name) name.lastChild!.textContent = r.name;
    name.style.paddingLeft = `${v.depth * 14 + 4}px`;
    for (const [k, c] of COLS.entries()) setText(e.children[k + 1]!, c.fmt(r));
    e.id = `row-${i}`;
  }
  $('#tree-body').setAttribute('aria-activedescendant', `row-${state.cursor}`);
}

function setText(n: Element, t: string): void {
  if (n.textContent !== t) n.textContent = t;
}

function toggle(r: Row): void {
  if (state.expanded.has(r.key)) state.expanded.delete(r.key);
  else state.expanded.add(r.key);
  renderTree();
}

function scrollToCursor(): void {
  const box = $('#tree-body');
  const y = state.cursor * ROW_H;
  if (y < box.scrollTop) box.scrollTop = y;
  else if (y + ROW_H > box.scrollTop + box.clientHeight) box.scrollTop = y + ROW_H - box.clientHeight;
  paintRows();
}

function onTreeKey(ev: KeyboardEvent): void {
  const v = state.visible[state.cursor];
  const page = Math.max(1, Math.floor($('#tree-body').clientHeight / ROW_H) - 1);
  let handled = true;
  switch (ev.key) {
    case 'ArrowDown':
      state.cursor = Math.min(state.visible.length - 1, state.cursor + 1);
      break;
    case 'ArrowUp':
      state.cursor = Math.max(0, state.cursor - 1);
      break;
    case 'PageDown':
      state.cursor = Math.min(state.visible.length - 1, state.cursor + page);
      break;
    case 'PageUp':
      state.cursor = Math.max(0, state.cursor - page);
      break;
    case 'Home':
      state.cursor = 0;
      break;
    case 'End':
      state.cursor = state.visible.length - 1;
      break;
    case 'ArrowRight':
      if (v?.row.children.length && !state.expanded.has(v.row.key)) toggle(v.row);
      else if (v?.row.children.length) state.cursor++;
      break;
    case 'ArrowLeft':
      if (v && state.expanded.has(v.row.key) && v.row.children.length) toggle(v.row);
      else if (v?.row.parent)
        state.cursor = Math.max(
          0,
          state.visible.findIndex((x) => x.row === v.row.parent),
        );
      break;
    case 'Enter':
    case ' ':
      if (v) {
        if (ev.shiftKey) setCompare(v.row);
        else select(v.row);
      }
      break;
    case 'c':
      if (v) setCompare(v.row);
      break;
    default:
      handled = false;
  }
  if (handled) {
    ev.preventDefault();
    scrollToCursor();
  }
}

function select(r: Row): void {
  state.selected = refOf(r);
  if (state.compare === state.selected) state.compare = null;
  writeHash();
  paintRows();
  void loadDetail();
}

function setCompare(r: Row): void {
  const ref = refOf(r);
  state.compare = state.compare === ref || state.selected === ref ? null : ref;
  writeHash();
  paintRows();
  void loadDetail();
}

// ---------- the detail: charts of the selected cgroup (and the compared one) ----------

const charts: uPlot[] = [];
let detailToken = 0;

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
const dark = () => matchMedia('(prefers-color-scheme: dark)').matches;

async function loadDetail(): Promise<void> {
  const refs = [state.selected, state.compare].filter((x): x is string => !!x);
  const token = ++detailToken;
  const from = Date.now() - state.rangeMin * 60_000;
  const got: Array<{ ref: string; h: SeriesHistory | null; err?: string }> = [];
  for (const ref of refs) {
    const i = ref.indexOf(':');
    const q = new URLSearchParams({ hierarchy: ref.slice(0, i), path: ref.slice(i + 1), from: String(from) });
    try {
      got.push({ ref, h: await getJson<SeriesHistory>(`/api/v1/history?${q}`) });
    } catch (e) {
      got.push({ ref, h: null, err: (e as Error).message });
    }
  }
  if (token !== detailToken) return;
  state.histories = new Map(got.filter((g) => g.h).map((g) => [g.ref, g.h!]));
  renderDetail(got, from);
}

function renderDetail(
  got: Array<{ ref: string; h: SeriesHistory | null; err?: string }>,
  from: number,
): void {
  for (const c of charts.splice(0)) c.destroy();
  const box = $('#detail');
  if (!got.length) {
    box.replaceChildren(
      el(
        'p',
        { class: 'hint' },
        'Select a cgroup (click, or arrows and Enter in the tree). Shift+click or c: compare with a second one.',
      ),
    );
    return;
  }
  box.classList.toggle('two', got.length > 1);
  // Sections go in first: charts take the width their figure has in the page.
  const todo: Array<() => void> = [];
  const cols = got.map((g) => {
    const sec = el('section', { class: 'cg', 'aria-label': `cgroup ${g.ref}` });
    const i = g.ref.indexOf(':');
    const [hier, path] = [g.ref.slice(0, i), g.ref.slice(i + 1)];
    const head = el('header', { class: 'cg-head' }, el('h2', {}, path), el('span', { class: 'badge' }, hier));
    sec.append(head);
    if (!g.h) {
      sec.append(el('p', { class: 'hint' }, `not mirrored now (${g.err ?? 'gone'})`));
      return sec;
    }
    const h = g.h;
    if (h.ended) head.append(el('span', { class: 'badge warn' }, 'removed'));
    if (h.truncated)
      head.append(
        el(
          'span',
          { class: 'badge warn', title: 'the memory budget cut this cgroup’s oldest samples' },
          'history cut',
        ),
      );
    const csv = el('button', { type: 'button', class: 'btn' }, 'Download CSV');
    csv.addEventListener('click', () => downloadCsv(h));
    head.append(csv);
    todo.push(() => drawCharts(sec, h, from));
    return sec;
  });
  const scroll = box.scrollTop;
  box.replaceChildren(...cols);
  for (const f of todo) f();
  box.scrollTop = scroll;
}

function chartBox(parent: HTMLElement, title: string, promql: string | null, help: string): HTMLElement {
  const fig = el('figure', { class: 'chart' });
  const cap = el('figcaption', {}, el('span', { class: 'title', title: help }, title));
  if (promql) {
    const b = el('button', { type: 'button', class: 'btn small', title: promql }, 'Copy PromQL');
    b.addEventListener('click', () => void copy(promql, b));
    cap.append(b);
  }
  fig.append(cap);
  parent.append(fig);
  return fig;
}

async function copy(text: string, b: HTMLElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = el('textarea', {}, text);
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  b.textContent = 'Copied';
  setTimeout(() => {
    b.textContent = 'Copy PromQL';
  }, 1500);
}

/** Wall-clock label: hh:mm, or hh:mm:ss when ticks are less than a minute apart. */
function clock(ms: number, seconds: boolean): string {
  return new Date(ms).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}),
    hour12: false,
  });
}

const viewOf = (h: SeriesHistory, v: string) => h.views.find((x) => x.view === v);

/** Per-second rate of a counter column (in base units when seconds). */
function rate(
  c: ColumnHistory | undefined,
  dt: Array<number | null>,
  scale = c?.scale ?? 1,
): Array<number | null> {
  if (!c) return dt.map(() => null);
  return c.values.map((v, i) => (v === null || !dt[i] ? null : (v * scale) / dt[i]!));
}

function plot(
  fig: HTMLElement,
  t: number[],
  series: Array<{
    label: string;
    values: Array<number | null>;
    colour: string;
    fill?: boolean;
    scale?: string;
  }>,
  fmt: (v: number) => string,
  opts: { log?: boolean; fmt2?: (v: number) => string } = {},
): void {
  const width = Math.max(260, fig.clientWidth - 8);
  const axisColour = css('--fg-dim');
  const grid = { stroke: css('--grid'), width: 1 };
  const scales: uPlot.Scales = { x: { time: true }, y: opts.log ? { distr: 3 } : {} };
  const axes: uPlot.Axis[] = [
    {
      stroke: axisColour,
      grid,
      ticks: grid,
      // hh:mm:ss labels need room.
      space: 90,
      values: (_u, vals) =>
        vals.map((v) => (v === null ? '' : clock(v * 1000, (vals[1] ?? v) - (vals[0] ?? v) < 60))),
    },
    {
      stroke: axisColour,
      grid,
      ticks: grid,
      size: 64,
      values: (_u, vals) => vals.map((v) => (v === null ? '' : fmt(v))),
    },
  ];
  if (series.some((s) => s.scale === 'y2')) {
    scales['y2'] = {};
    axes.push({
      side: 1,
      scale: 'y2',
      stroke: axisColour,
      grid: { show: false },
      size: 56,
      values: (_u, vals) => vals.map((v) => (v === null ? '' : (opts.fmt2 ?? fmt)(v))),
    });
  }
  const u = new uPlot(
    {
      width,
      height: 160,
      scales,
      axes,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          width: 1.5,
          scale: s.scale ?? 'y',
          ...(s.fill ? { fill: `${s.colour}55` } : {}),
          value: (_u: uPlot, v: number | null) =>
            v === null ? '–' : s.scale === 'y2' ? (opts.fmt2 ?? fmt)(v) : fmt(v),
          spanGaps: false,
        })),
      ],
    },
    [t.map((x) => x / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData,
    fig,
  );
  charts.push(u);
}

function drawCharts(sec: HTMLElement, h: SeriesHistory, from: number): void {
  const m = matchers(h.path, h.hierarchy);
  const sl = viewOf(h, 'sched_lat');
  const to = Date.now();
  const fs = viewOf(h, 'cgroupfs');
  const cpuView = viewOf(h, 'cpu');
  const cpu = cpuView
    ? rate(
        cpuView.counters.find((c) => c.key === 'run_ns_total'),
        cpuView.dt,
        1e-9 * 100,
      )
    : fs
      ? rate(
          fs.counters.find((c) => c.key === 'usage_ns_total'),
          fs.dt,
          1e-9 * 100,
        )
      : h.t.map(() => null);
  // cpu.stat has no exporter metric; the cpu view does.
  const cpuQ = cpuView ? `\n${rateQuery('cpu', 'run_seconds_total', m)} * 100` : '';
  if (sl) {
    const w = sl.histograms.find((x) => x.key === 'wait_ns');
    const wait = w ? w.sum.map((v, i) => (v === null || !sl.dt[i] ? null : (v * 1e-9) / sl.dt[i]!)) : [];
    plot(
      chartBox(
        sec,
        'Wait and CPU',
        `${rateQuery('sched_lat', 'wait_seconds_sum', m)}${cpuQ}`,
        'wait/s: run-queue wait per second (average waiting tasks); CPU %: 100 = one CPU',
      ),
      h.t,
      [
        { label: 'wait/s', values: wait, colour: css('--c1') },
        { label: 'CPU %', values: cpu, colour: css('--c2'), scale: 'y2' },
      ],
      (v) => fmtRate(v, ''),
      { fmt2: (v) => fmtPct(v) },
    );
    const self = rate(
      sl.counters.find((c) => c.key === 'queue_self_ns_total'),
      sl.dt,
    );
    const other = rate(
      sl.counters.find((c) => c.key === 'queue_other_ns_total'),
      sl.dt,
    );
    const stacked = self.map((v, i) => (v === null && other[i] === null ? null : (v ?? 0) + (other[i] ?? 0)));
    plot(
      chartBox(
        sec,
        'Waiting behind own tasks vs others (stacked)',
        `${rateQuery('sched_lat', 'queue_self_seconds_total', m)}\n${rateQuery('sched_lat', 'queue_other_seconds_total', m)}`,
        'queue_self: waits behind tasks of this cgroup; queue_other: behind other cgroups’ tasks; seconds per second',
      ),
      h.t,
      [
        { label: 'self + other', values: stacked, colour: css('--c3'), fill: true },
        { label: 'self', values: self, colour: css('--c1'), fill: true },
      ],
      (v) => fmtRate(v, ''),
    );
    if (w) {
      plot(
        chartBox(
          sec,
          'Wait p50 / p99',
          `${quantileQuery('sched_lat', 'wait_seconds', 0.5, m)}\n${quantileQuery('sched_lat', 'wait_seconds', 0.99, m)}`,
          'percentiles of each interval’s waits (from the histogram’s deltas)',
        ),
        h.t,
        [
          { label: 'p50', values: w.p50, colour: css('--c2') },
          { label: 'p99', values: w.p99, colour: css('--c4') },
        ],
        (v) => fmtNs(v),
        { log: true },
      );
      heat(
        sec,
        h,
        sl,
        w,
        from,
        to,
        'Latency heat map (waits per log2 bucket)',
        heatQuery('sched_lat', 'wait_seconds', m),
      );
    }
  } else if (cpu.some((v) => v !== null)) {
    plot(
      chartBox(sec, 'CPU', cpuQ.trim() || null, '100 = one CPU'),
      h.t,
      [{ label: 'CPU %', values: cpu, colour: css('--c2') }],
      fmtPct,
    );
  }
  generic(sec, h, from, to);
}

function heat(
  sec: HTMLElement,
  h: SeriesHistory,
  v: ViewHistory,
  w: HistHistory,
  from: number,
  to: number,
  title: string,
  q: string,
): void {
  const fig = chartBox(
    sec,
    title,
    q,
    'x: time; y: wait bucket (log2); colour: number of waits in the sample',
  );
  const canvas = el('canvas', { class: 'heat', role: 'img', 'aria-label': `${title} of ${h.path}` });
  fig.append(canvas);
  const dpr = window.devicePixelRatio || 1;
  const cssW = Math.max(260, fig.clientWidth - 8);
  const cssH = 200;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  const left = 64;
  const bottom = 20;
  const plotW = cssW - left - 8;
  const plotH = cssH - bottom - 6;
  ctx.fillStyle = css('--bg-chart');
  ctx.fillRect(0, 0, cssW, cssH);
  // From the first sample with data (a short history fills the width, as the line charts do).
  const first = v.dt.findIndex((x) => x !== null);
  if (first >= 0) from = Math.max(from, h.t[first]! - (v.dt[first] ?? 0) * 1000);
  to = Math.max(from + 1000, h.t[h.t.length - 1] ?? to);
  const bins = binHeatmap(h.t, v.dt, w.counts, from, to, Math.max(1, Math.floor(plotW)));
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = css('--fg-dim');
  if (bins.hi < bins.lo) {
    ctx.fillText('no waits in this range', left + 8, plotH / 2);
    return;
  }
  drawHeatmap(ctx, bins, { x: left, y: 6, w: plotW, h: plotH }, dark());
  // y labels: bucket upper bounds.
  const rows = bins.hi - bins.lo + 1;
  const step = Math.max(1, Math.ceil(rows / Math.floor(plotH / 14)));
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let b = bins.lo; b <= bins.hi; b += step) {
    const y = 6 + plotH - ((b - bins.lo + 0.5) / rows) * plotH;
    const bound = w.bounds[b];
    ctx.fillText(bound === null || bound === undefined ? '≥ last' : `< ${fmtNs(bound)}`, left - 4, y);
  }
  // x labels: a few times.
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let k = 0; k <= 4; k++) {
    const ms = from + ((to - from) * k) / 4;
    const x = left + (plotW * k) / 4;
    ctx.fillText(clock(ms, to - from < 300_000), Math.min(cssW - 20, Math.max(left + 16, x)), plotH + 8);
  }
  fig.append(
    el(
      'p',
      { class: 'legend' },
      `${fmtCount(bins.total)} waits; darkest = ${fmtCount(bins.max)} in one pixel column`,
    ),
  );
}

/** Every other view's counters (as rates), gauges and histograms, from the key conventions alone. */
function generic(sec: HTMLElement, h: SeriesHistory, from: number, to: number): void {
  const det = el('details', { class: 'generic' }, el('summary', {}, 'All views and metrics'));
  sec.append(det);
  let drawn = false;
  const draw = () => {
    if (drawn) return;
    drawn = true;
    for (const v of h.views) {
      det.append(el('h3', {}, v.view));
      const palette = ['--c1', '--c2', '--c3', '--c4', '--c5'];
      // Indexed families (culprit_<id>_…): one chart per name, one line per label value (the 6 biggest).
      const byName = new Map<string, ColumnHistory[]>();
      for (const c of v.counters) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
      for (const [name, cs] of byName) {
        const seconds = cs[0]!.scale === 1e-9;
        const top = cs
          .map((c) => ({ c, total: c.values.reduce<number>((a, x) => a + (x ?? 0), 0) }))
          .sort((a, b) => b.total - a.total)
          .slice(0, 6);
        const q =
          v.view === 'cgroupfs'
            ? null
            : top.map(({ c }) => rateQuery(v.view, name, matchers(h.path, h.hierarchy, c.labels))).join('\n');
        plot(
          chartBox(det, `${v.view}: rate(${name})`, q, `counter ${cs[0]!.key}, per second`),
          h.t,
          top.map(({ c }, i) => ({
            label: c.labels ? Object.values(c.labels).join(',') : name,
            values: rate(c, v.dt),
            colour: css(palette[i % palette.length]!),
          })),
          (x) => fmtBase(x, seconds, true),
        );
      }
      for (const g of v.gauges) {
        const seconds = g.scale === 1e-9;
        plot(
          chartBox(
            det,
            `${v.view}: ${g.name}`,
            v.view === 'cgroupfs'
              ? null
              : `${metric(v.view, g.name)}${matchers(h.path, h.hierarchy, g.labels)}`,
            `gauge ${g.key}`,
          ),
          h.t,
          [
            {
              label: g.name,
              values: g.values.map((x) => (x === null ? null : x * g.scale)),
              colour: css('--c5'),
            },
          ],
          (x) => fmtBase(x, seconds),
        );
      }
      for (const hh of v.histograms) {
        if (v.view === 'sched_lat' && hh.key === 'wait_ns') continue;
        const m = matchers(h.path, h.hierarchy, hh.labels);
        const fmt = hh.scale === 1e-9 ? fmtNs : (x: number) => fmtRate(x, '');
        plot(
          chartBox(
            det,
            `${v.view}: ${hh.name} p50 / p99`,
            `${quantileQuery(v.view, hh.name, 0.5, m)}\n${quantileQuery(v.view, hh.name, 0.99, m)}`,
            `histogram ${hh.key}`,
          ),
          h.t,
          [
            { label: 'p50', values: hh.p50, colour: css('--c2') },
            { label: 'p99', values: hh.p99, colour: css('--c4') },
          ],
          fmt,
        );
        heat(det, h, v, hh, from, to, `${v.view}: ${hh.name} heat map`, heatQuery(v.view, hh.name, m));
      }
    }
  };
  det.addEventListener('toggle', draw);
}

// ---------- CSV of the visible history ----------

function downloadCsv(h: SeriesHistory): void {
  const cols: Array<{ name: string; values: Array<number | null> }> = [];
  for (const v of h.views) {
    for (const c of v.counters)
      cols.push({ name: `${v.view}.${c.key}${labelSuffix(c.labels)}.per_s`, values: rate(c, v.dt, 1) });
    for (const g of v.gauges)
      cols.push({ name: `${v.view}.${g.key}${labelSuffix(g.labels)}`, values: g.values });
    for (const hh of v.histograms) {
      cols.push({ name: `${v.view}.${hh.key}.count`, values: hh.count });
      cols.push({ name: `${v.view}.${hh.key}.p50`, values: hh.p50 });
      cols.push({ name: `${v.view}.${hh.key}.p99`, values: hh.p99 });
    }
  }
  const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [['time', 'seconds', ...cols.map((c) => c.name)].map(esc).join(',')];
  for (let i = 0; i < h.t.length; i++)
    lines.push(
      [
        new Date(h.t[i]!).toISOString(),
        String(h.dt[i]),
        ...cols.map((c) => (c.values[i] === null ? '' : String(c.values[i]))),
      ].join(','),
    );
  const blob = new Blob([`${lines.join('\n')}\n`], { type: 'text/csv' });
  const a = el('a', {
    href: URL.createObjectURL(blob),
    download: `cgview${h.path.replace(/[^A-Za-z0-9._-]+/g, '_')}.csv`,
  });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

const labelSuffix = (l?: Record<string, string>) =>
  l
    ? `{${Object.entries(l)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}}`
    : '';

// ---------- start ----------

async function main(): Promise<void> {
  readHash();
  const filter = $<HTMLInputElement>('#filter');
  filter.value = state.filter;
  filter.addEventListener('input', () => {
    state.filter = filter.value;
    state.cursor = 0;
    writeHash();
    renderTree();
  });
  filter.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      filter.value = '';
      state.filter = '';
      writeHash();
      renderTree();
    }
    if (ev.key === 'ArrowDown' || ev.key === 'Enter') {
      ev.preventDefault();
      $('#tree-body').focus();
    }
  });
  const range = $<HTMLSelectElement>('#range');
  const pause = $<HTMLButtonElement>('#pause');
  const body = $('#tree-body');
  body.addEventListener('scroll', () => paintRows());
  body.addEventListener('keydown', onTreeKey);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && document.activeElement !== filter) {
      ev.preventDefault();
      filter.focus();
    }
  });
  new ResizeObserver(() => paintRows()).observe(body);
  buildTreeHeader();
  // Both at once: the tree is what the first paint waits for.
  const tree = loadTree();
  state.info = await getJson<Info>('/api/v1/info');
  for (const r of RANGES) {
    if (r * 60_000 > state.info.retentionMs * 1.01 && r !== RANGES[0]) continue;
    const o = el('option', { value: String(r) }, r < 60 ? `last ${r} min` : `last ${r / 60} h`);
    if (r === state.rangeMin) o.selected = true;
    range.append(o);
  }
  range.addEventListener('change', () => {
    state.rangeMin = Number(range.value);
    writeHash();
    void loadDetail();
  });
  const setPause = () => {
    pause.textContent = state.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(state.paused));
    setStatus();
  };
  pause.addEventListener('click', () => {
    state.paused = !state.paused;
    writeHash();
    setPause();
    if (!state.paused) {
      renderTree();
      void loadDetail();
    }
  });
  setPause();
  await tree;
  document.body.dataset['ready'] = '1';
  connect();
  await loadDetail();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => void loadDetail());
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => void loadDetail(), 200);
  });
}

void main();
