/** Numbers with units for people: durations in ns/µs/ms/s, rates, percents. Pure. */

/** A duration given in nanoseconds: "850 ns", "12.3 µs", "4.56 ms", "1.20 s". */
export function fmtNs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return '–';
  const a = Math.abs(ns);
  if (a < 1e3) return `${sig(ns)} ns`;
  if (a < 1e6) return `${sig(ns / 1e3)} µs`;
  if (a < 1e9) return `${sig(ns / 1e6)} ms`;
  return `${sig(ns / 1e9)} s`;
}

/** Seconds of waiting per second: shown as a plain number (= average waiting tasks). */
export function fmtRate(v: number | null | undefined, unit = '/s'): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && a < 0.001) return `${v.toExponential(1)}${unit}`;
  if (a >= 1e6) return `${sig(v / 1e6)}M${unit}`;
  if (a >= 1e3) return `${sig(v / 1e3)}k${unit}`;
  return `${sig(v)}${unit}`;
}

export function fmtPct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(1)}%`;
}

export function fmtCount(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return String(Math.round(v));
}

/** Three significant digits, no exponent for the usual range. */
export function sig(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** A value in the base unit of a metric (seconds when its view unit is ns). */
export function fmtBase(v: number | null | undefined, seconds: boolean, rate = false): string {
  if (!seconds) return fmtRate(v, rate ? '/s' : '');
  if (v === null || v === undefined) return '–';
  // A time per second (s/s) is a number of busy tasks or CPUs.
  return rate ? fmtRate(v, ' s/s') : fmtNs(v * 1e9);
}
