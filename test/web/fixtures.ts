/** Synthetic view samples for the dashboard's unit tests and bench. */
import { classifyView, type ViewSample } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';

/** A sched_lat output with the given totals; buckets are the non-cumulative counts of [0,256), [256,512), …. */
export function schedLat(
  id: string,
  o: { self: number; other: number; buckets: number[]; selfMax?: number },
): ViewSample {
  const lines = [
    `cgroup_id: ${id}`,
    `queue_self: ${o.selfMax ?? 0}`,
    'queue_other: 0',
    'wait_count: 0',
    `wait_ns_total: ${o.self + o.other}`,
    `queue_self_ns_total: ${o.self}`,
    `queue_other_ns_total: ${o.other}`,
    `queue_self_max_ns: ${o.selfMax ?? 0}`,
    'queue_other_max_ns: 0',
  ];
  let cum = 0;
  for (let i = 0; i < 32; i++) {
    cum += o.buckets[i] ?? 0;
    lines.push(`wait_ns_lt_${2 ** (i + 8)}: ${cum}`);
  }
  lines.push(`wait_ns_lt_inf: ${cum + (o.buckets[32] ?? 0)}`);
  lines.push('p50_ns: 0', 'p90_ns: 0', 'p99_ns: 0');
  return classifyView(parseViewOutput(`${lines.join('\n')}\n`));
}
