/**
 * Interval math shared by the exporter, `cgview top` and the dashboard:
 * what happened between two samples of a view, from its counters and
 * cumulative histograms. Pure.
 *
 * Counters only grow while their cgroup lives; a value lower than the
 * previous one means they restarted from zero (the cgroup was recreated
 * under the same name, or the collector was replaced without carrying its
 * counters): the interval then counts the new value whole. A sample whose
 * `cgroup_id` differs from the previous one's is a new cgroup: it has no
 * previous sample.
 */
import { type Histogram, type Metric, metricKey, type ViewSample } from './keys.js';

/** Increase of a counter; `prev` undefined (no previous sample) counts everything since zero. */
export function counterDelta(prev: number | undefined, cur: number): { delta: number; reset: boolean } {
  if (prev === undefined) return { delta: cur, reset: false };
  if (cur < prev) return { delta: cur, reset: true };
  return { delta: cur - prev, reset: false };
}

function sameBounds(a: Histogram, b: Histogram): boolean {
  if (a.bounds.length !== b.bounds.length) return false;
  for (let i = 0; i < a.bounds.length; i++) if (a.bounds[i] !== b.bounds[i]) return false;
  return true;
}

/**
 * The observations of the interval, as a cumulative histogram. Without a
 * previous sample, with other bounds, or when any count went down (a
 * reset), the current histogram whole.
 */
export function histDelta(prev: Histogram | undefined, cur: Histogram): Histogram {
  return histDeltaReset(prev, cur).hist;
}

/** histDelta, and whether a previous sample with the same bounds was discarded because counts went down. */
function histDeltaReset(prev: Histogram | undefined, cur: Histogram): { hist: Histogram; reset: boolean } {
  const whole = (reset: boolean) => ({
    hist: { bounds: cur.bounds, cum: cur.cum.slice(), count: cur.count, sum: cur.sum },
    reset,
  });
  if (!prev || !sameBounds(prev, cur)) return whole(false);
  if (cur.count < prev.count) return whole(true);
  const cum = new Array<number>(cur.cum.length);
  for (let i = 0; i < cur.cum.length; i++) {
    const d = cur.cum[i]! - prev.cum[i]!;
    if (d < 0) return whole(true);
    cum[i] = d;
  }
  // No bucket's own count may go down either (cum[i] - cum[i-1]).
  for (let i = 1; i < cum.length; i++) if (cum[i]! < cum[i - 1]!) return whole(true);
  const count = cur.count - prev.count;
  if (cum.length && count < cum[cum.length - 1]!) return whole(true);
  const sum = cur.sum !== undefined && prev.sum !== undefined ? cur.sum - prev.sum : undefined;
  if (sum !== undefined && sum < 0) return whole(true);
  return { hist: { bounds: cur.bounds, cum, count, sum }, reset: false };
}

/**
 * The value at quantile q (0 < q < 1) of a cumulative histogram: the rank
 * ceil(q·count) located in its bucket, interpolated linearly inside it (so
 * within the bucket's bounds of the truth). The first bucket is
 * [0, bounds[0]); a rank beyond the last finite bound gives that bound (the
 * open bucket's floor). Undefined for an empty histogram.
 */
export function quantile(h: Histogram, q: number): number | undefined {
  if (!(q > 0 && q < 1) || h.count <= 0) return undefined;
  const target = Math.max(1, Math.ceil(q * h.count - 1e-9));
  let below = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    const n = h.cum[i]! - below;
    if (n > 0 && h.cum[i]! >= target) {
      const lo = i ? h.bounds[i - 1]! : 0;
      return lo + ((h.bounds[i]! - lo) * (target - below)) / n;
    }
    below = h.cum[i]!;
  }
  return h.bounds.length ? h.bounds[h.bounds.length - 1]! : undefined;
}

export interface MetricDelta {
  /** The metric as in the current sample. */
  metric: Metric;
  /** Counter: increase over the interval (view units); histogram: observations; gauge: current value. */
  delta: number;
  /** Counter and histogram: delta per second; gauge: current value. */
  rate: number;
  /** Histogram: the interval's observations. */
  hist?: Histogram;
  /** This metric's counts went down since the previous sample (counted whole). */
  reset: boolean;
}

export interface ViewDelta {
  seconds: number;
  /** No previous sample, or the cgroup was recreated (another cgroup_id): deltas count since the cgroup's creation. */
  first: boolean;
  /** Some counter or histogram went down and was counted whole. */
  reset: boolean;
  metrics: MetricDelta[];
}

/** What changed from `prev` to `cur` over `seconds` (> 0) of wall time. */
export function viewDelta(prev: ViewSample | undefined, cur: ViewSample, seconds: number): ViewDelta {
  const first = prev === undefined || prev.id !== cur.id;
  const before = new Map<string, Metric>();
  if (!first) for (const m of prev.metrics) before.set(metricKey(m), m);
  const out: ViewDelta = { seconds, first, reset: false, metrics: [] };
  const per = seconds > 0 ? 1 / seconds : 0;
  for (const m of cur.metrics) {
    const p = before.get(metricKey(m));
    if (m.kind === 'gauge') {
      out.metrics.push({ metric: m, delta: m.value, rate: m.value, reset: false });
    } else if (m.kind === 'counter') {
      const { delta, reset } = counterDelta(p?.kind === 'counter' ? p.value : undefined, m.value);
      out.reset ||= reset;
      out.metrics.push({ metric: m, delta, rate: delta * per, reset });
    } else {
      const ph = p?.kind === 'histogram' ? p.hist : undefined;
      const { hist, reset } = histDeltaReset(ph, m.hist!);
      out.reset ||= reset;
      out.metrics.push({ metric: m, delta: hist.count, rate: hist.count * per, hist, reset });
    }
  }
  return out;
}

/** The delta of one metric by its converted name (and no labels), if the view has it. */
export function findDelta(d: ViewDelta, name: string): MetricDelta | undefined {
  return d.metrics.find((x) => x.metric.name === name && !x.metric.labels);
}
