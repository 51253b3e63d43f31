/**
 * The latency heat map: x time, y log2 wait bucket, colour = number of waits.
 * `binHeatmap` is pure (unit-tested in test/web/heatmap.test.ts); `drawHeatmap`
 * paints its result on a canvas.
 */

export interface HeatBins {
  /** Pixel columns. */
  width: number;
  /** Bucket rows shown: [lo, hi] indexes into the histogram's buckets. */
  lo: number;
  hi: number;
  /** grid[(b - lo) * width + x]: waits in bucket b during the time of pixel column x. */
  grid: Float64Array;
  max: number;
  total: number;
}

/**
 * Bins per-sample bucket counts into `width` pixel columns over [t0, t1] (ms).
 * Sample i covers (t[i] - dt[i]·1000, t[i]]; its counts go to every column it
 * covers when it is wider than one (the same counts, so that colour stays
 * "waits per sample"), and add up with the others in a column it shares.
 * Rows: the non-empty buckets, from the lowest to the highest.
 */
export function binHeatmap(
  t: number[],
  dt: Array<number | null>,
  counts: Array<number[] | null>,
  t0: number,
  t1: number,
  width: number,
): HeatBins {
  let lo = Number.POSITIVE_INFINITY;
  let hi = -1;
  for (const row of counts) {
    if (!row) continue;
    for (let b = 0; b < row.length; b++)
      if (row[b]! > 0) {
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      }
  }
  if (hi < 0) return { width, lo: 0, hi: -1, grid: new Float64Array(0), max: 0, total: 0 };
  const rows = hi - lo + 1;
  const grid = new Float64Array(rows * width);
  const span = Math.max(1, t1 - t0);
  const px = (ms: number) => ((ms - t0) / span) * width;
  let total = 0;
  for (let i = 0; i < t.length; i++) {
    const row = counts[i];
    const d = dt[i];
    if (!row || d === null || d === undefined) continue;
    const end = t[i]!;
    const start = end - d * 1000;
    if (end < t0 || start > t1) continue;
    let x0 = Math.floor(px(start));
    let x1 = Math.ceil(px(end));
    x0 = Math.max(0, Math.min(width - 1, x0));
    x1 = Math.max(x0 + 1, Math.min(width, x1));
    for (let b = lo; b <= hi; b++) {
      const n = row[b] ?? 0;
      if (!n) continue;
      total += n;
      const base = (b - lo) * width;
      for (let x = x0; x < x1; x++) grid[base + x]! += n;
    }
  }
  let max = 0;
  for (let k = 0; k < grid.length; k++) if (grid[k]! > max) max = grid[k]!;
  return { width, lo, hi, grid, max, total };
}

/** Colour for a share 0..1 of the log of the count: from the background colour's opposite, light to dark. */
export function heatColour(share: number, dark: boolean): [number, number, number] {
  // A perceptual-ish ramp: pale yellow → orange → red → purple (inverted brightness on dark).
  const stops: Array<[number, number, number]> = dark
    ? [
        [40, 30, 80],
        [120, 40, 140],
        [220, 70, 70],
        [250, 170, 60],
        [255, 245, 170],
      ]
    : [
        [255, 240, 170],
        [250, 170, 60],
        [220, 70, 70],
        [130, 40, 140],
        [40, 20, 70],
      ];
  const s = Math.max(0, Math.min(1, share)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(s));
  const f = s - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f].map(Math.round) as [
    number,
    number,
    number,
  ];
}

/** Paints bins into the plot area [x, y, w, h] of a 2D context (device pixels). */
export function drawHeatmap(
  ctx: CanvasRenderingContext2D,
  bins: HeatBins,
  area: { x: number; y: number; w: number; h: number },
  dark: boolean,
): void {
  if (bins.hi < bins.lo || bins.max <= 0) return;
  const rows = bins.hi - bins.lo + 1;
  const img = ctx.createImageData(bins.width, rows);
  const lmax = Math.log1p(bins.max);
  for (let r = 0; r < rows; r++)
    for (let x = 0; x < bins.width; x++) {
      const n = bins.grid[r * bins.width + x]!;
      if (n <= 0) continue;
      const [cr, cg, cb] = heatColour(Math.log1p(n) / lmax, dark);
      // Row 0 of the image is the highest bucket (long waits at the top).
      const k = ((rows - 1 - r) * bins.width + x) * 4;
      img.data[k] = cr;
      img.data[k + 1] = cg;
      img.data[k + 2] = cb;
      img.data[k + 3] = 255;
    }
  // Scale the bins image to the plot area without smoothing.
  const tmp = document.createElement('canvas');
  tmp.width = bins.width;
  tmp.height = rows;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, area.x, area.y, area.w, area.h);
}
