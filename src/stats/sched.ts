/**
 * The per-interval figures of `sched_lat` (and `sched_lat_tree`) that
 * `cgview top` and the dashboard show, from a ViewDelta. Pure.
 */
import { findDelta, quantile, type ViewDelta } from './interval.js';

export interface SchedFigures {
  /** Seconds of waiting per second of wall time: the average number of waiting tasks. */
  waitPerSec: number;
  /** Completed waits per second. */
  waitsPerSec: number;
  /** Median and 99th percentile of the interval's waits (ns); undefined without a wait. */
  p50Ns?: number;
  p99Ns?: number;
  /** queue_self's share of the interval's wait (0..100); undefined without wait time. */
  selfPct?: number;
}

/** Figures of a sched_lat delta; undefined if the view has no `wait_ns` histogram. */
export function schedFigures(d: ViewDelta): SchedFigures | undefined {
  const w = findDelta(d, 'wait_seconds');
  if (!w?.hist || d.seconds <= 0) return undefined;
  const waitNs = w.hist.sum ?? 0;
  const f: SchedFigures = { waitPerSec: (waitNs * 1e-9) / d.seconds, waitsPerSec: w.hist.count / d.seconds };
  const p50 = quantile(w.hist, 0.5);
  const p99 = quantile(w.hist, 0.99);
  if (p50 !== undefined) f.p50Ns = p50;
  if (p99 !== undefined) f.p99Ns = p99;
  const self = findDelta(d, 'queue_self_seconds_total')?.delta;
  const other = findDelta(d, 'queue_other_seconds_total')?.delta;
  if (self !== undefined && other !== undefined && self + other > 0)
    f.selfPct = (100 * self) / (self + other);
  return f;
}

/** CPU use in percent of one CPU (100 = one CPU busy) from a usage delta in µs. */
export function cpuPct(usageDeltaUsec: number, seconds: number): number {
  return seconds > 0 ? usageDeltaUsec / 1e4 / seconds : 0;
}
