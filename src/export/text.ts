/**
 * The text formats: Prometheus text exposition 0.0.4 and OpenMetrics 1.0.
 * Lines go into one array of strings joined once; values and bounds are
 * formatted the way Prometheus' own Go code does (strconv 'g', shortest), so
 * the `le` of a classic bucket is the same string in every format.
 */
import type { Family, Series } from './families.js';
import { joinPieces, type Piece } from './pieces.js';

/** Go's strconv.FormatFloat(v, 'g', -1, 64), as Prometheus formats `le` and values. */
export function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const e = v.toExponential(); // shortest digits: "d.ddde±x"
  const i = e.indexOf('e');
  const exp = Number(e.slice(i + 1));
  if (exp < -4 || exp >= 6) {
    const x = Math.abs(exp);
    return `${e.slice(0, i)}e${exp < 0 ? '-' : '+'}${x < 10 ? '0' : ''}${x}`;
  }
  // Go uses %e from exponent 6 on (strconv/ftoa.go: shortest → eprec 6); below, JS's fixed digits are Go's.
  return String(v);
}

/** A sample value: JS's shortest form (Prometheus reads any float form); infinities and NaN as Prometheus writes them. */
function num(v: number): string {
  return Number.isFinite(v) ? String(v) : goFloat(v);
}

function escapeHelp(s: string, om: boolean): string {
  return om
    ? s.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))
    : s.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/*
 * The conversion hands out the same Series object again while its numbers
 * stay the same (an idle cgroup); a block of series that are all the same
 * objects is the same piece (its bytes and compressed bytes kept), and its
 * lines are the same in both text formats.
 */
/** Renders families as text 0.0.4 (`om` false) or OpenMetrics 1.0 (`om` true, ends with `# EOF`). */
export function renderText(families: readonly Family[], om: boolean): string {
  return renderTextBuffer(families, om).toString('utf8');
}

/** renderText as the UTF-8 body: one copy of the kept pieces (see renderTextPieces). */
export function renderTextBuffer(families: readonly Family[], om: boolean): Buffer {
  return joinPieces(renderTextPieces(families, om));
}

/** Series per block on average: a block whose series are the same objects as at the last scrape is the same piece. */
export const BLOCK = 128;
/** The most series in one block. */
const MAX_BLOCK = 4 * BLOCK;

/** FNV-1a of a label text. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Where the block starting at `at` ends: after a series whose labels hash
 * to a cut (1 in BLOCK), or after MAX_BLOCK series. Cuts come from the
 * series' own labels, not their places: a series added or removed changes
 * only its own block, the others are the same series and the same pieces.
 */
export function blockEnd(series: readonly Series[], at: number): number {
  const n = Math.min(series.length, at + MAX_BLOCK);
  for (let i = at; i < n; i++) {
    const s = series[i]!;
    s.cut ??= hash(s.labels) % BLOCK === 0;
    if (s.cut) return i + 1;
  }
  return n;
}

export interface Block {
  series: Series[];
  piece: Piece;
}
/** The kept block starting with a series (text lines are the same in both text formats). */
const blocks = new WeakMap<Series, Block>();

/** The kept block of `first` if it holds exactly series[at, end). */
export function keptBlock(
  kept: WeakMap<Series, Block>,
  series: readonly Series[],
  at: number,
  end: number,
): Block | undefined {
  const b = kept.get(series[at]!);
  if (!b || b.series.length !== end - at) return undefined;
  for (let i = at; i < end; i++) if (b.series[i - at] !== series[i]) return undefined;
  return b;
}
/** Header pieces (# HELP, # TYPE, # UNIT), by their text. */
let heads = new Map<string, Piece>();

/** The lines of one series, kept on it (Series.text). */
function seriesLines(f: Family, s: Series, le: { for: number[] | null; text: string[] }): string {
  if (f.kind !== 'histogram')
    return s.labels === '' ? `${f.name} ${num(s.value)}\n` : `${f.name}{${s.labels}} ${num(s.value)}\n`;
  {
    const h = s.hist!;
    // The le="…" suffix of each bound, computed once per family and bound list.
    if (le.for !== h.le) {
      le.for = h.le;
      le.text = h.le.map((x) => `,le="${goFloat(x)}"} `);
    }
    const sep = s.labels === '' ? '' : ',';
    const l = `${f.name}_bucket{${s.labels}`;
    let chunk = '';
    for (let j = 0; j < h.cum.length; j++)
      chunk += `${l}${sep === '' ? le.text[j]!.slice(1) : le.text[j]}${h.cum[j]}\n`;
    chunk += `${l}${sep}le="+Inf"} ${h.count}\n`;
    if (s.labels === '') {
      if (h.sum !== undefined) chunk += `${f.name}_sum ${num(h.sum)}\n`;
      chunk += `${f.name}_count ${h.count}\n`;
    } else {
      if (h.sum !== undefined) chunk += `${f.name}_sum{${s.labels}} ${num(h.sum)}\n`;
      chunk += `${f.name}_count{${s.labels}} ${h.count}\n`;
    }
    return chunk;
  }
}

/**
 * The body as pieces: per family its header, then its series in blocks of
 * BLOCK; a block whose series are all the objects of the last render's block
 * at that place (the conversion hands out the same Series while its numbers
 * stay the same) is the last render's piece, with its compressed form.
 */
export function renderTextPieces(families: readonly Family[], om: boolean): Piece[] {
  const out: Piece[] = [];
  const nextHeads = new Map<string, Piece>();
  const le = { for: null as number[] | null, text: [] as string[] };
  for (const f of families) {
    if (f.series.length === 0) continue;
    // OpenMetrics names the family without the suffixes its samples carry.
    const fam =
      om && f.kind === 'counter'
        ? f.name.replace(/_total$/, '')
        : om && f.kind === 'info'
          ? f.name.replace(/_info$/, '')
          : f.name;
    const type = f.kind === 'info' ? (om ? 'info' : 'gauge') : f.kind;
    let head = `# HELP ${fam} ${escapeHelp(f.help || f.name, om)}\n# TYPE ${fam} ${type}\n`;
    if (om && f.unit) head += `# UNIT ${fam} ${f.unit}\n`;
    const hp = heads.get(head) ?? { buf: Buffer.from(head, 'utf8') };
    nextHeads.set(head, hp);
    out.push(hp);
    for (let at = 0; at < f.series.length; ) {
      const end = blockEnd(f.series, at);
      let b = keptBlock(blocks, f.series, at, end);
      if (!b) {
        const series = f.series.slice(at, end);
        let text = '';
        for (const s of series) text += seriesLines(f, s, le);
        b = { series, piece: { buf: Buffer.from(text, 'utf8') } };
        blocks.set(series[0]!, b);
      }
      out.push(b.piece);
      at = end;
    }
  }
  if (om) out.push(EOF);
  for (const [k, v] of heads) if (!nextHeads.has(k) && nextHeads.size < 4096) nextHeads.set(k, v);
  heads = nextHeads;
  return out;
}

const EOF: Piece = { buf: Buffer.from('# EOF\n') };
