/**
 * The text formats: Prometheus text exposition 0.0.4 and OpenMetrics 1.0.
 * Lines go into one array of strings joined once; values and bounds are
 * formatted the way Prometheus' own Go code does (strconv 'g', shortest), so
 * the `le` of a classic bucket is the same string in every format.
 */
import type { Family } from './families.js';

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

/**
 * A histogram's lines from the last render, by format, family and labels:
 * an idle cgroup's histogram is the same from one scrape to the next, and
 * its 15 lines are most of the output. Entries not used by a render are
 * dropped by it, so this holds at most one render's histograms per format.
 */
interface Memo {
  bounds: number[];
  cum: number[];
  count: number;
  sum: number | undefined;
  text: string;
}
const memos: [Map<string, Map<string, Memo>>, Map<string, Map<string, Memo>>] = [new Map(), new Map()];

function same(m: Memo, le: number[], cum: number[], count: number, sum: number | undefined): boolean {
  if (m.bounds !== le || m.count !== count || m.sum !== sum || m.cum.length !== cum.length) return false;
  for (let i = 0; i < cum.length; i++) if (m.cum[i] !== cum[i]) return false;
  return true;
}

/** Renders families as text 0.0.4 (`om` false) or OpenMetrics 1.0 (`om` true, ends with `# EOF`). */
export function renderText(families: readonly Family[], om: boolean): string {
  const out: string[] = [];
  const oldMemo = memos[om ? 1 : 0];
  const newMemo = new Map<string, Map<string, Memo>>();
  memos[om ? 1 : 0] = newMemo;
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
    out.push(`# HELP ${fam} ${escapeHelp(f.help || f.name, om)}\n# TYPE ${fam} ${type}\n`);
    if (om && f.unit) out.push(`# UNIT ${fam} ${f.unit}\n`);
    if (f.kind !== 'histogram') {
      const head = `${f.name}{`;
      for (const s of f.series)
        out.push(s.labels === '' ? `${f.name} ${num(s.value)}\n` : `${head}${s.labels}} ${num(s.value)}\n`);
      continue;
    }
    const bucket = `${f.name}_bucket{`;
    const sum = `${f.name}_sum{`;
    const count = `${f.name}_count{`;
    // The le="…" suffix of each bound, computed once per family and bound list.
    let leFor: number[] | null = null;
    let leText: string[] = [];
    const was = oldMemo.get(f.name);
    const now = new Map<string, Memo>();
    newMemo.set(f.name, now);
    for (const s of f.series) {
      const h = s.hist!;
      const m = was?.get(s.labels);
      if (m && same(m, h.le, h.cum, h.count, h.sum)) {
        now.set(s.labels, m);
        out.push(m.text);
        continue;
      }
      if (leFor !== h.le) {
        leFor = h.le;
        leText = h.le.map((b) => `,le="${goFloat(b)}"} `);
      }
      const sep = s.labels === '' ? '' : ',';
      const l = `${bucket}${s.labels}`;
      let chunk = '';
      for (let j = 0; j < h.cum.length; j++)
        chunk += `${l}${sep === '' ? leText[j]!.slice(1) : leText[j]}${h.cum[j]}\n`;
      chunk += `${l}${sep}le="+Inf"} ${h.count}\n`;
      if (s.labels === '') {
        if (h.sum !== undefined) chunk += `${f.name}_sum ${num(h.sum)}\n`;
        chunk += `${f.name}_count ${h.count}\n`;
      } else {
        if (h.sum !== undefined) chunk += `${sum}${s.labels}} ${num(h.sum)}\n`;
        chunk += `${count}${s.labels}} ${h.count}\n`;
      }
      out.push(chunk);
      now.set(s.labels, { bounds: h.le, cum: h.cum, count: h.count, sum: h.sum, text: chunk });
    }
  }
  if (om) out.push('# EOF\n');
  return out.join('');
}
