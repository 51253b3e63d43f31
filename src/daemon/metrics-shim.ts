/**
 * TEMPORARY (delete at merge): the daemon's own counters in the Prometheus
 * text format, with the signature of the exporter's renderMetrics
 * (src/export/snapshot.ts), until that lands in main. daemon.ts is the only
 * user; at merge it imports renderMetrics from ../export/snapshot.js.
 */
import type { ControlStats } from './control-socket.js';
import type { HttpStats } from './http.js';
import type { Manager } from './manager.js';

export interface Rendered {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export async function renderMetrics(
  m: Manager,
  _req: { accept?: string; acceptEncoding?: string },
  extra: { control?: ControlStats; http?: HttpStats } = {},
): Promise<Rendered> {
  const s = m.status() as Record<string, unknown> & { roots: Array<Record<string, unknown>> };
  const { control, http } = extra;
  const lines = [
    '# HELP cgview_up The cgview daemon is running.',
    '# TYPE cgview_up gauge',
    'cgview_up 1',
    '# TYPE cgview_inotify_overflows_total counter',
    `cgview_inotify_overflows_total ${s['overflows']}`,
    '# TYPE cgview_rescans_total counter',
    `cgview_rescans_total ${s['rescans']}`,
    '# TYPE cgview_ops_failed_total counter',
    `cgview_ops_failed_total ${s['opsFailed']}`,
    '# TYPE cgview_tree_dirs gauge',
    ...s.roots.map((r) => `cgview_tree_dirs{root=${JSON.stringify(r['dir'])}} ${r['dirs']}`),
    ...(control
      ? [
          '# TYPE cgview_control_bad_requests_total counter',
          `cgview_control_bad_requests_total ${control.badRequests}`,
          '# TYPE cgview_control_clients gauge',
          `cgview_control_clients ${control.clients}`,
        ]
      : []),
    ...(http
      ? [
          '# TYPE cgview_daemon_http_connections gauge',
          `cgview_daemon_http_connections ${http.connections}`,
          '# TYPE cgview_daemon_http_connections_refused_total counter',
          `cgview_daemon_http_connections_refused_total ${http.refused}`,
          '# TYPE cgview_daemon_http_unauthorized_total counter',
          `cgview_daemon_http_unauthorized_total ${http.unauthorized}`,
        ]
      : []),
  ];
  return {
    status: 200,
    headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
    body: Buffer.from(`${lines.join('\n')}\n`),
  };
}
