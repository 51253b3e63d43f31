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

/*
 * A series' lines are kept on it (Series.text): the conversion hands out the
 * same Series object again while its numbers stay the same (an idle cgroup),
 * and its lines are the same in both text formats.
 */
/** Renders families as text 0.0.4 (`om` false) or OpenMetrics 1.0 (`om` true, ends with `# EOF`). */
export function renderText(families: readonly Family[], om: boolean): string {
  return renderTextBuffer(families, om).toString('utf8');
}

/** renderText as the UTF-8 body: the pieces are kept per series as bytes, so a body is one copy of them. */
export function renderTextBuffer(families: readonly Family[], om: boolean): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  const out = {
    push(x: string | Buffer): void {
      const b = typeof x === 'string' ? Buffer.from(x, 'utf8') : x;
      parts.push(b);
      total += b.length;
    },
  };
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
      for (const s of f.series) {
        let line = s.text;
        if (line === undefined) {
          line = Buffer.from(
            s.labels === '' ? `${f.name} ${num(s.value)}\n` : `${head}${s.labels}} ${num(s.value)}\n`,
            'utf8',
          );
          s.text = line;
        }
        out.push(line);
      }
      continue;
    }
    const bucket = `${f.name}_bucket{`;
    const sum = `${f.name}_sum{`;
    const count = `${f.name}_count{`;
    // The le="…" suffix of each bound, computed once per family and bound list.
    let leFor: number[] | null = null;
    let leText: string[] = [];
    for (const s of f.series) {
      const h = s.hist!;
      const have = s.text;
      if (have !== undefined) {
        out.push(have);
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
      const b = Buffer.from(chunk, 'utf8');
      out.push(b);
      s.text = b;
    }
  }
  if (om) out.push('# EOF\n');
  return Buffer.concat(parts, total);
}
