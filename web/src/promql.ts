/** The PromQL a chart equals, against cgview's /metrics (docs/metrics.md names). Pure. */

/** Label matchers of one cgroup: the exporter's `cgroup` (real path) and `hierarchy`. */
export function matchers(path: string, hierarchy: string, labels?: Readonly<Record<string, string>>): string {
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const parts = [`cgroup="${esc(path)}"`, `hierarchy="${esc(hierarchy)}"`];
  for (const [k, v] of Object.entries(labels ?? {})) parts.push(`${k}="${esc(v)}"`);
  return `{${parts.join(',')}}`;
}

export const metric = (view: string, name: string) =>
  view === 'info' ? 'cgview_cgroup_info' : `cgview_${view}_${name}`;

export function rateQuery(view: string, name: string, m: string, window = '1m'): string {
  return `rate(${metric(view, name)}${m}[${window}])`;
}

export function quantileQuery(view: string, name: string, q: number, m: string, window = '1m'): string {
  return `histogram_quantile(${q}, sum by (le) (rate(${metric(view, name)}_bucket${m}[${window}])))`;
}

export function heatQuery(view: string, name: string, m: string, window = '1m'): string {
  return `sum by (le) (rate(${metric(view, name)}_bucket${m}[${window}]))`;
}
