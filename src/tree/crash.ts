/**
 * Fault injection for the crash tests: CGVIEW_CRASH_AT=<point>:<n> makes the
 * process SIGKILL itself right after the n-th time it passes <point>
 * ('mkdir', 'pin', or 'reconcile' = any applied op). Unset, it costs one
 * comparison per op.
 */
const spec = process.env['CGVIEW_CRASH_AT'];
const [point, nth] = spec ? [spec.split(':')[0], Number(spec.split(':')[1] ?? '1')] : [undefined, 0];
let seen = 0;

export function crashPoint(at: 'mkdir' | 'pin' | 'reconcile'): void {
  if (point !== at) return;
  if (++seen >= nth) process.kill(process.pid, 'SIGKILL');
}
