/**
 * The dashboard in the daemon, in one call: history, sampler, API and page
 * registered on the --listen server's router.
 *
 *     const dash = startDashboard({ source: () => collectSnapshot(m, opts), addRoute, intervalMs, retentionMs });
 *     …
 *     dash.stop();
 */

import type { Manager } from '../daemon/manager.js';
import { collectSnapshot } from '../export/snapshot.js';
import { CgroupFsReader } from '../history/cgroupfs.js';
import { Sampler } from '../history/sampler.js';
import { History, type HistoryOptions } from '../history/store.js';
import type { SnapshotSource } from '../history/types.js';
import type { EventLimits } from './events.js';
import { type Api, assetsRoute, dashboardApi, type Route, WEB_DIR } from './routes.js';

export { type Api, assetsRoute, dashboardApi, type Route, SECURITY_HEADERS, WEB_DIR } from './routes.js';

/** The daemon's snapshots: the exporter's collectSnapshot (bulk path where there is one, view files otherwise). */
export function daemonSnapshots(m: Manager): SnapshotSource {
  return () => collectSnapshot(m);
}

export interface DashboardOptions extends HistoryOptions {
  source: SnapshotSource;
  addRoute: (prefix: string, route: Route) => void;
  /** Tasks and CPU % from cgroupfs (default true). */
  cgroupfs?: boolean;
  webDir?: string;
  version?: string;
  eventLimits?: EventLimits;
  log?: (level: 'warn' | 'info' | 'debug' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export interface Dashboard {
  history: History;
  sampler: Sampler;
  api: Api;
  stop(): void;
}

export function startDashboard(opts: DashboardOptions): Dashboard {
  const history = new History(opts);
  const sampler = new Sampler(
    history,
    opts.source,
    opts.cgroupfs === false ? null : new CgroupFsReader(),
    opts.log,
  );
  const api = dashboardApi({
    history,
    sampler,
    ...(opts.version ? { version: opts.version } : {}),
    ...(opts.eventLimits ? { eventLimits: opts.eventLimits } : {}),
  });
  opts.addRoute('/api/v1/', api.route);
  opts.addRoute('/', assetsRoute(opts.webDir ?? WEB_DIR));
  sampler.start();
  return {
    history,
    sampler,
    api,
    stop() {
      sampler.stop();
      api.close();
    },
  };
}
