/**
 * classifyView (src/stats/keys.ts) once per view and key layout, not once
 * per cgroup: every cgroup's `sched_lat` prints the same keys in the same
 * order, so the first output's classification becomes a plan (which line
 * feeds which number) and later outputs with the same keys only convert
 * their numbers. Anything the plan cannot vouch for (other keys, a value
 * that is not a decimal number, a histogram whose counts fall) goes through
 * classifyView itself, so the result is always what classifyView gives.
 */
import { classifyView, type Histogram, type Metric, type ViewSample } from '../stats/keys.js';

interface Slot {
  /** The template metric (name, kind, scale, labels, bounds) and where its numbers are. */
  m: Metric;
  value: number;
  cum?: number[];
  count?: number;
  sum?: number;
}

interface Plan {
  keys: string[];
  id: number;
  slots: Slot[];
  text: Array<[string, number]>;
  /** Percentile lines: skipped when numeric (else they are text): they must stay numeric. */
  numeric: number[];
}

const PERCENTILE = /^p[0-9]+(?:_ns)?$/;

const plans = new Map<string, Plan>();

/** Decimal number as classifyView accepts it (-?digits(.digits)?(e±digits)?); NaN otherwise. */
function num(v: string): number {
  const c = v.charCodeAt(0);
  // Fast path: unsigned integers, what views print.
  if (c >= 48 && c <= 57) {
    let ok = true;
    for (let i = 1; i < v.length; i++) {
      const d = v.charCodeAt(i);
      if (d < 48 || d > 57) {
        ok = false;
        break;
      }
    }
    if (ok) return Number(v);
  }
  return /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/.test(v) ? Number(v) : Number.NaN;
}

function makePlan(keys: string[], values: string[]): { plan: Plan | null; sample: ViewSample } {
  const lines = new Map<string, string>();
  for (let i = 0; i < keys.length; i++) lines.set(keys[i]!, values[i]!);
  const sample = classifyView(lines);
  if (lines.size !== keys.length) return { plan: null, sample }; // a key printed twice
  const at = new Map(keys.map((k, i) => [k, i]));
  const slots: Slot[] = [];
  for (const m of sample.metrics) {
    if (m.kind !== 'histogram') {
      const i = at.get(m.key);
      if (i === undefined) return { plan: null, sample };
      slots.push({ m, value: i });
      continue;
    }
    const h = m.hist!;
    const cum = h.bounds.map((b) => at.get(`${m.key}_lt_${b}`) ?? -1);
    const count = at.get(`${m.key}_lt_inf`) ?? -1;
    let sum = -1;
    if (h.sum !== undefined)
      for (const k of [`${m.key}_total`, `${m.key}_sum`]) {
        const i = at.get(k);
        if (i !== undefined && num(values[i]!) === h.sum) {
          sum = i;
          break;
        }
      }
    if (cum.includes(-1) || count < 0 || (h.sum !== undefined && sum < 0)) return { plan: null, sample };
    slots.push({ m, value: count, cum, count, sum });
  }
  const text: Array<[string, number]> = [...sample.text.keys()].map((k) => [k, at.get(k)!]);
  const numeric = keys.flatMap((k, i) => (PERCENTILE.test(k) && !sample.text.has(k) ? [i] : []));
  return { plan: { keys, id: at.get('cgroup_id') ?? -1, slots, text, numeric }, sample };
}

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function apply(p: Plan, values: string[]): ViewSample | null {
  const metrics: Metric[] = new Array(p.slots.length);
  for (let s = 0; s < p.slots.length; s++) {
    const slot = p.slots[s]!;
    const t = slot.m;
    if (!slot.cum) {
      const v = num(values[slot.value]!);
      if (Number.isNaN(v)) return null;
      metrics[s] = t.labels
        ? { key: t.key, name: t.name, kind: t.kind, scale: t.scale, value: v, labels: t.labels }
        : { key: t.key, name: t.name, kind: t.kind, scale: t.scale, value: v };
      continue;
    }
    const count = num(values[slot.count!]!);
    if (Number.isNaN(count)) return null;
    const cum: number[] = new Array(slot.cum.length);
    let prev = 0;
    for (let i = 0; i < cum.length; i++) {
      const v = num(values[slot.cum[i]!]!);
      // classifyView drops a histogram whose counts fall or pass the total: let it decide.
      if (Number.isNaN(v) || v < prev) return null;
      cum[i] = v;
      prev = v;
    }
    if (prev > count) return null;
    let sum: number | undefined;
    if (slot.sum! >= 0) {
      sum = num(values[slot.sum!]!);
      if (Number.isNaN(sum)) return null;
    }
    const hist: Histogram = { bounds: t.hist!.bounds, cum, count, sum };
    metrics[s] = t.labels
      ? { key: t.key, name: t.name, kind: 'histogram', scale: t.scale, value: count, hist, labels: t.labels }
      : { key: t.key, name: t.name, kind: 'histogram', scale: t.scale, value: count, hist };
  }
  for (const i of p.numeric) if (Number.isNaN(num(values[i]!))) return null;
  // Numeric slots of the plan must stay numeric, text ones text: else the layout differs.
  const text = new Map<string, string>();
  for (const [k, i] of p.text) {
    const v = values[i]!;
    if (!Number.isNaN(num(v))) return null;
    text.set(k, v);
  }
  return { id: p.id >= 0 ? values[p.id] : undefined, metrics, text };
}

/** The classification of one view output (keys and values in printed order) of view `view`. */
export function classifyCached(view: string, keys: string[], values: string[]): ViewSample {
  const p = plans.get(view);
  if (p && sameKeys(p.keys, keys)) {
    const s = apply(p, values);
    if (s) return s;
  }
  const made = makePlan(keys, values);
  if (made.plan) {
    if (plans.size > 1024) plans.clear();
    plans.set(view, made.plan);
  }
  return made.sample;
}
