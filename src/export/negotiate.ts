/**
 * Content negotiation for /metrics: which exposition format an `Accept`
 * header asks for (highest q wins; on a tie the one listed first), and
 * whether `Accept-Encoding` allows gzip. Pure.
 */

export type Format = 'text' | 'openmetrics' | 'protobuf';

export const CONTENT_TYPE: Record<Format, string> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
  protobuf: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
};

interface Range {
  type: string;
  params: Map<string, string>;
  q: number;
}

/** Bounded: a header of many thousand ranges is cut (the HTTP server bounds header size anyway). */
const MAX_RANGES = 64;

function ranges(header: string): Range[] {
  const out: Range[] = [];
  for (const part of header.split(',', MAX_RANGES)) {
    const [type, ...ps] = part.split(';');
    const params = new Map<string, string>();
    let q = 1;
    for (const p of ps) {
      const i = p.indexOf('=');
      if (i < 0) continue;
      const k = p.slice(0, i).trim().toLowerCase();
      const v = p
        .slice(i + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
      if (k === 'q') {
        const n = Number(v);
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
      } else params.set(k, v);
    }
    const t = (type ?? '').trim().toLowerCase();
    if (t) out.push({ type: t, params, q });
  }
  return out;
}

function formatOf(r: Range): Format | null {
  switch (r.type) {
    case 'application/vnd.google.protobuf':
      return r.params.get('proto') === 'io.prometheus.client.MetricFamily' &&
        (r.params.get('encoding') ?? 'delimited') === 'delimited'
        ? 'protobuf'
        : null;
    case 'application/openmetrics-text': {
      const v = r.params.get('version');
      return v === undefined || v === '1.0.0' || v === '0.0.1' ? 'openmetrics' : null;
    }
    case 'text/plain': {
      const v = r.params.get('version');
      return v === undefined || v === '0.0.4' ? 'text' : null;
    }
    case '*/*':
    case 'text/*':
      return 'text';
    default:
      return null;
  }
}

/** The format an Accept header asks for; text when it names none of ours (as Prometheus' own exporters do). */
export function negotiate(accept: string | undefined): Format {
  if (!accept) return 'text';
  let best: Format = 'text';
  let bestQ = -1;
  for (const r of ranges(accept)) {
    const f = formatOf(r);
    if (f && r.q > 0 && r.q > bestQ) {
      best = f;
      bestQ = r.q;
    }
  }
  return best;
}

/** Whether Accept-Encoding allows gzip (q > 0). */
export function wantsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  for (const r of ranges(acceptEncoding))
    if ((r.type === 'gzip' || r.type === 'x-gzip') && r.q > 0) return true;
  return false;
}
