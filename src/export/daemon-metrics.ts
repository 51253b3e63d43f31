/**
 * The daemon's own figures as `cgview_daemon_*` families (the names
 * src/daemon/http.ts printed before, with the prefix), and what each
 * collector costs in the kernel: run time and run count of its programs
 * (bpf_prog_info run_time_ns / run_cnt; counted only while
 * kernel.bpf_stats_enabled is 1 or a process holds a BPF_ENABLE_STATS fd).
 */
import type { ControlStats } from '../daemon/control-socket.js';
import type { Manager } from '../daemon/manager.js';
import { type Family, type Kind, pairsText } from './families.js';

/** The --listen server's figures (src/daemon/http.ts HttpStats): those present are exported. */
export interface HttpFigures {
  connections?: number;
  waiting?: number;
  accepted?: number;
  refused?: number;
  evicted?: number;
  answerTimeouts?: number;
  firstRequestTimeouts?: number;
  slowOrGreedy?: number;
  requests?: number;
  unauthorized?: number;
}

const HTTP: Array<[keyof HttpFigures, string, Kind, string]> = [
  ['connections', 'cgview_daemon_http_connections', 'gauge', 'Connections to --listen admitted now.'],
  ['waiting', 'cgview_daemon_http_connections_waiting', 'gauge', 'Connections waiting for a slot now.'],
  ['accepted', 'cgview_daemon_http_connections_accepted_total', 'counter', 'Connections accepted.'],
  [
    'refused',
    'cgview_daemon_http_connections_refused_total',
    'counter',
    'Connections closed for want of room.',
  ],
  [
    'evicted',
    'cgview_daemon_http_connections_evicted_total',
    'counter',
    'Idle connections closed to make room.',
  ],
  [
    'answerTimeouts',
    'cgview_daemon_http_answer_timeouts_total',
    'counter',
    'Connections closed: an answer was not finished in time.',
  ],
  [
    'firstRequestTimeouts',
    'cgview_daemon_http_first_request_timeouts_total',
    'counter',
    'Connections closed: no request in time.',
  ],
  [
    'slowOrGreedy',
    'cgview_daemon_http_slow_or_greedy_total',
    'counter',
    'Connections closed: pipelining too much or not reading.',
  ],
  ['requests', 'cgview_daemon_http_requests_total', 'counter', 'HTTP requests.'],
  ['unauthorized', 'cgview_daemon_http_unauthorized_total', 'counter', 'Requests refused with 401.'],
];

export interface ExporterFigures {
  control: ControlStats | undefined;
  http: HttpFigures | undefined;
  scrapes: number;
  snapshots: number;
  snapshotMs: number;
  cgroups: number;
  readErrorsTotal: number;
  conflicts: number;
}

function fam(
  name: string,
  kind: Kind,
  help: string,
  series: Array<[Array<[string, string]>, number]>,
): Family {
  return {
    name,
    kind,
    help,
    unit: /_seconds(?:_total)?$/.test(name) ? 'seconds' : '',
    view: '',
    series: series.map(([pairs, value]) => ({ labels: pairsText(pairs), pairs, value })),
  };
}

export function daemonFamilies(m: Manager, x: ExporterFigures): Family[] {
  const st = m.stats;
  const out: Family[] = [
    fam('cgview_daemon_up', 'gauge', 'The cgview daemon is running.', [[[], 1]]),
    // The first version's name, kept for the alerts and checks that use it.
    fam('cgview_up', 'gauge', 'The cgview daemon is running (old name of cgview_daemon_up).', [[[], 1]]),
    fam('cgview_daemon_start_time_seconds', 'gauge', 'When the daemon started (Unix time).', [
      [[], m.startedAt / 1000],
    ]),
    fam(
      'cgview_daemon_inotify_overflows_total',
      'counter',
      'inotify queue overflows (each causes a rescan).',
      [[[], st.overflows]],
    ),
    fam('cgview_daemon_rescans_total', 'counter', 'Full rescans of every view tree.', [[[], st.rescans]]),
    fam('cgview_daemon_reconciles_total', 'counter', 'Reconciles run.', [[[], st.reconciles]]),
    fam('cgview_daemon_ops_failed_total', 'counter', 'Tree operations (mkdir, pin, ...) that failed.', [
      [[], st.opsFailed],
    ]),
    fam(
      'cgview_daemon_tree_dirs',
      'gauge',
      'Directories of each view tree.',
      m.roots.map((rt) => [[['root', rt.cfg.dir]], rt.model.dirs.size]),
    ),
    fam('cgview_daemon_scrapes_total', 'counter', 'Requests for /metrics.', [[[], x.scrapes]]),
    fam(
      'cgview_daemon_snapshots_total',
      'counter',
      'Snapshots of every view made for /metrics (scrapes close together share one).',
      [[[], x.snapshots]],
    ),
    fam('cgview_daemon_snapshot_seconds', 'gauge', 'Time the last snapshot of every view took.', [
      [[], x.snapshotMs / 1000],
    ]),
    fam('cgview_daemon_exported_cgroups', 'gauge', 'Cgroups in the last snapshot.', [[[], x.cgroups]]),
    fam('cgview_daemon_view_read_errors_total', 'counter', 'View files that could not be read or parsed.', [
      [[], x.readErrorsTotal],
    ]),
    fam(
      'cgview_daemon_name_conflicts',
      'gauge',
      "Series left out of the last scrape: their name was another view's.",
      [[[], x.conflicts]],
    ),
  ];
  if (x.control)
    out.push(
      fam('cgview_daemon_control_bad_requests_total', 'counter', 'Malformed control-socket requests.', [
        [[], x.control.badRequests],
      ]),
      fam('cgview_daemon_control_clients', 'gauge', 'Control-socket clients connected.', [
        [[], x.control.clients],
      ]),
    );
  if (x.http)
    for (const [k, name, kind, help] of HTTP) {
      const v = x.http[k];
      if (typeof v === 'number') out.push(fam(name, kind, help, [[[], v]]));
    }
  const runs: Array<[Array<[string, string]>, number]> = [];
  const time: Array<[Array<[string, string]>, number]> = [];
  let status: Record<string, unknown> = {};
  try {
    status = m.collectors.status();
  } catch {
    /* the figures below are left out */
  }
  for (const [inst, v] of Object.entries(status)) {
    const progs =
      (v as { programs?: Record<string, { runCnt?: number; runTimeNs?: number }> }).programs ?? {};
    for (const [prog, p] of Object.entries(progs)) {
      if (typeof p?.runCnt !== 'number') continue;
      const pairs: Array<[string, string]> = [
        ['collector', inst],
        ['program', prog],
      ];
      runs.push([pairs, p.runCnt]);
      time.push([pairs, (p.runTimeNs ?? 0) / 1e9]);
    }
  }
  out.push(
    fam(
      'cgview_daemon_collector_run_seconds_total',
      'counter',
      "CPU time of a collector's BPF program in the kernel (counted while kernel.bpf_stats_enabled).",
      time,
    ),
    fam(
      'cgview_daemon_collector_runs_total',
      'counter',
      "Runs of a collector's BPF program (counted while kernel.bpf_stats_enabled).",
      runs,
    ),
  );
  return out;
}
