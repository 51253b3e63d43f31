/**
 * TEMPORARY stand-in for the lead's src/stats/keys.ts (same API, from the
 * brief) until it is merged; deleted then.
 */
export interface Histogram {
  bounds: number[];
  cum: number[];
  count: number;
  sum: number | undefined;
}
export interface Metric {
  key: string;
  name: string;
  kind: 'counter' | 'gauge' | 'histogram';
  scale: number;
  value: number;
  hist?: Histogram;
  labels?: Readonly<Record<string, string>>;
}
export interface ViewSample {
  id: string | undefined;
  metrics: Metric[];
  text: Map<string, string>;
}

const SKIP = new Set(['queue_self', 'queue_other', 'wait_count', 'cgroup_id']);
const NUM = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;

function convert(key: string): { name: string; kind: 'counter' | 'gauge'; scale: number } {
  const c = convert1(`_${key}`);
  return { ...c, name: c.name.slice(1) };
}
function convert1(rest: string): { name: string; kind: 'counter' | 'gauge'; scale: number } {
  if (rest.endsWith('_ns_total'))
    return { name: `${rest.slice(0, -9)}_seconds_total`, kind: 'counter', scale: 1e-9 };
  if (rest.endsWith('_total')) return { name: rest, kind: 'counter', scale: 1 };
  if (rest.endsWith('_ns')) return { name: `${rest.slice(0, -3)}_seconds`, kind: 'gauge', scale: 1e-9 };
  return { name: rest, kind: 'gauge', scale: 1 };
}

export function classifyView(lines: ReadonlyMap<string, string>): ViewSample {
  const text = new Map<string, string>();
  const metrics: Metric[] = [];
  const hists = new Map<string, { bounds: number[]; cum: number[]; inf?: number }>();
  const nums = new Map<string, number>();
  for (const [k, v] of lines) {
    if (!NUM.test(v)) {
      text.set(k, v);
      continue;
    }
    const n = Number(v);
    const hm = /^(.+)_lt_([0-9]+|inf)$/.exec(k);
    if (hm) {
      const h = hists.get(hm[1]!) ?? { bounds: [], cum: [] };
      hists.set(hm[1]!, h);
      if (hm[2] === 'inf') h.inf = n;
      else {
        h.bounds.push(Number(hm[2]));
        h.cum.push(n);
      }
      continue;
    }
    nums.set(k, n);
  }
  const used = new Set<string>();
  for (const [base, h] of hists) {
    if (h.inf === undefined) continue;
    const ns = base.endsWith('_ns');
    const stem = ns ? base.slice(0, -3) : base;
    const sumKey = `${base}_total`;
    const sum = nums.get(sumKey);
    if (sum !== undefined) used.add(sumKey);
    used.add(`${stem}_count`);
    metrics.push({
      key: base,
      name: ns ? `${stem}_seconds` : base,
      kind: 'histogram',
      scale: ns ? 1e-9 : 1,
      value: h.inf,
      hist: { bounds: h.bounds, cum: h.cum, count: h.inf, sum },
    });
  }
  for (const [k, n] of nums) {
    if (SKIP.has(k) || used.has(k) || /^p[0-9]+(?:_ns)?$/.test(k)) continue;
    const im = /^([a-z][a-z0-9]*?)_([0-9]+|rest)_(.+)$/.exec(k);
    if (im) {
      const c = convert(im[3]!);
      metrics.push({ key: k, ...c, name: `${im[1]}_${c.name}`, value: n, labels: { [im[1]!]: im[2]! } });
      continue;
    }
    metrics.push({ key: k, ...convert(k), value: n });
  }
  return { id: lines.get('cgroup_id'), metrics, text };
}

export function metricKey(m: Metric): string {
  const l = m.labels
    ? Object.keys(m.labels)
        .sort()
        .map((k) => `${k}=${m.labels![k]}`)
    : [];
  return [m.name, ...l].join(',');
}
