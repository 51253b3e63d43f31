/** cgview daemon: the manager in the foreground. SIGTERM/SIGINT stop it and leave every pin in place. */
import path from 'node:path';
import { type Dashboard, daemonSnapshots, startDashboard } from '../api/index.js';
import { addRoute, type HttpServer, parseListen, serveHttp } from '../daemon/http.js';
import { makeLogger, parseLevel } from '../daemon/log.js';
import { Manager } from '../daemon/manager.js';
import {
  ensureSocketFree,
  httpLimits,
  indexFileFor,
  newControlStats,
  serveSocket,
  socketLimits,
  socketPath,
} from '../daemon/server.js';
import { loadWebConfig, type WebConfig } from '../daemon/webconfig.js';
import { CgviewError } from '../errors.js';
import { loadExportConfig } from '../export/options.js';
import { configureExport, renderMetrics } from '../export/snapshot.js';
import { requireSupportedArch } from '../kernel/abi.js';
import { setLibbpfLogger } from '../kernel/index.js';
import { builtinViews } from '../views/registry.js';
import { fromBytes, OPTIONS, parseArgs, resolveBytes, usageError } from './args.js';

export const DEFAULT_BPFFS = '/sys/fs/bpf/cgview';
export const DEFAULT_STATE = '/var/lib/cgview/state.json';
const BYTE_PATHS = new Set(['bpffs', 'cgroup-root', 'private-dir']);

/** Exit status after an uncaught exception (EX_SOFTWARE of sysexits.h). */
export const EXIT_CRASH = 70;

/**
 * What the dashboard's history takes (issue 11: src/history/store.ts
 * HistoryOptions, startDashboard({ ...history, source, addRoute })):
 * --sample-interval, --history.
 */
export interface HistoryOptions {
  intervalMs: number;
  retentionMs: number;
}
/** What the exporter takes (src/export/options.ts parses the file): --metrics-config. */
export interface ExportOptions {
  configFile: string | undefined;
}
export interface WebOptions {
  listen: string | undefined;
  webConfigFile: string | undefined;
  history: HistoryOptions;
  export: ExportOptions;
}

export const DEFAULT_SAMPLE_INTERVAL_S = 5;
export const DEFAULT_HISTORY_S = 3600;
export const MIN_SAMPLE_INTERVAL_S = 1;
export const MAX_SAMPLE_INTERVAL_S = 3600;
/** A week; the dashboard bounds the memory of what it keeps (docs/dashboard.md). */
export const MAX_HISTORY_S = 7 * 86400;

function seconds(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(n) || n < min || n > max)
    throw usageError(`--${flag} wants seconds from ${min} to ${max}, got ${raw}`);
  return n;
}

/**
 * The --listen, --web-config, --metrics-config, --sample-interval and
 * --history values, checked (usage errors, exit 2); files are read later.
 */
export function webOptions(values: ReadonlyMap<string, string>): WebOptions {
  const listen = values.get('listen');
  if (listen !== undefined) parseListen(listen);
  const webConfigFile = values.get('web-config');
  const metricsConfig = values.get('metrics-config');
  if (webConfigFile !== undefined && listen === undefined) throw usageError('--web-config needs --listen');
  const interval = seconds(
    'sample-interval',
    values.get('sample-interval') ?? String(DEFAULT_SAMPLE_INTERVAL_S),
    MIN_SAMPLE_INTERVAL_S,
    MAX_SAMPLE_INTERVAL_S,
  );
  const history = seconds(
    'history',
    values.get('history') ?? String(DEFAULT_HISTORY_S),
    interval,
    MAX_HISTORY_S,
  );
  return {
    listen,
    webConfigFile: webConfigFile === undefined ? undefined : path.resolve(webConfigFile),
    history: { intervalMs: Math.round(interval * 1000), retentionMs: Math.round(history * 1000) },
    export: { configFile: metricsConfig === undefined ? undefined : path.resolve(metricsConfig) },
  };
}

/** --default-views info,sched_lat: built-in view names, each once. */
export function parseDefaultViews(list: string): { views: string[]; explicit: boolean } {
  const views = list.split(',').map((v) => v.trim());
  const known = new Set(builtinViews());
  for (const v of views)
    if (!known.has(v))
      throw usageError(
        `--default-views: ${JSON.stringify(v)} is not a built-in view`,
        `built-in views: ${[...known].join(', ')}`,
      );
  if (new Set(views).size !== views.length)
    throw usageError(`--default-views: a view is named twice in ${list}`);
  return { views, explicit: true };
}

export async function daemon(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['daemon']!);
  if (a.positional.length) throw usageError(`daemon takes no arguments (got ${a.positional.join(' ')})`);
  // Syscall numbers and struct layouts are x86_64's: refuse clearly before anything is done.
  requireSupportedArch();
  // Tree and cgroup paths stay byte strings, as the manager keeps paths (a
  // cgroup name need not be UTF-8); the rest is text for Node's own APIs.
  for (const [k, v] of a.values) a.values.set(k, BYTE_PATHS.has(k) ? resolveBytes(v) : fromBytes(v));
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(p));
  const bpffs = abs(a.values.get('bpffs')) ?? DEFAULT_BPFFS;
  const log = makeLogger(parseLevel(a.values.get('log-level') ?? process.env['CGVIEW_LOG']));
  setLibbpfLogger((level, line) => log(level === 'warn' ? 'warn' : 'debug', line, { from: 'libbpf' }));
  const cgroupRoot = abs(a.values.get('cgroup-root'));
  if (a.values.has('default-views') && a.bools.has('no-default-views'))
    throw usageError('--default-views and --no-default-views exclude each other');
  const m = new Manager({
    bpffs,
    ...(cgroupRoot ? { cgroupRoot } : {}),
    stateFile: abs(a.values.get('state')) ?? DEFAULT_STATE,
    privateDir:
      abs(a.values.get('private-dir')) ?? path.join(path.dirname(bpffs), `${path.basename(bpffs)}-private`),
    defaultViews: !a.bools.has('no-default-views'),
    ...(a.values.has('default-views')
      ? { defaultViewList: parseDefaultViews(a.values.get('default-views')!) }
      : {}),
    indexFile: indexFileFor(socketPath(a.values.get('socket'))),
    log,
  });
  // Directories and pins get exactly the modes cgview gives them.
  process.umask(0o022);
  // Crash-only: a bug nobody caught leaves state nobody can vouch for. Log it
  // and exit non-zero; the supervisor restarts us and the start converges.
  process.on('uncaughtException', (e) => {
    log('error', 'uncaught exception; exiting', { error: e });
    // exit() joins libuv's thread pool, where the inotify read blocks until
    // stop() wakes it; if stopping fails too, go without waiting.
    try {
      m.stop();
    } catch {
      process.kill(process.pid, 'SIGKILL');
    }
    process.exit(EXIT_CRASH);
  });
  // Bad options fail before anything is done.
  const web = webOptions(a.values);
  const listen = web.listen;
  const webConfig: WebConfig | undefined = web.webConfigFile ? loadWebConfig(web.webConfigFile) : undefined;
  // --metrics-config: a file that is missing or wrong (unknown key, wrong type) stops start-up, naming it.
  const exportOptions =
    web.export.configFile !== undefined ? loadExportConfig(web.export.configFile) : undefined;
  if (exportOptions) configureExport(m, exportOptions);
  const socketMode = Number.parseInt(a.values.get('socket-mode') ?? '600', 8);
  if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777)
    throw new CgviewError(
      'E_BAD_INPUT',
      `--socket-mode wants an octal mode, got ${a.values.get('socket-mode')}`,
    );
  const limits = socketLimits();
  const webLimits = httpLimits();
  // Another daemon on this socket: fail before touching its trees or index.
  await ensureSocketFree(socketPath(a.values.get('socket')));
  const t0 = performance.now();
  try {
    m.start();
  } catch (e) {
    m.stop(); // or the inotify reader keeps a process that serves nothing alive
    throw e;
  }
  const sock = socketPath(a.values.get('socket'));
  let server: Awaited<ReturnType<typeof serveSocket>> | null = null;
  let metrics: HttpServer | null = null;
  let dashboard: Dashboard | null = null;
  try {
    const control = newControlStats();
    server = await serveSocket(m, sock, log, socketMode, limits, control);
    if (listen) {
      let stats: HttpServer['stats'] | undefined;
      metrics = await serveHttp({
        listen,
        limits: webLimits,
        web: webConfig,
        log,
        render: (req) => renderMetrics(m, req, { control, ...(stats ? { http: stats } : {}) }),
      });
      stats = metrics.stats;
      // The dashboard (issue 11): page and API behind the same TLS and auth (docs/dashboard.md).
      dashboard = startDashboard({ ...web.history, source: daemonSnapshots(m), addRoute, log });
      log('info', 'listening', {
        url: metrics.url,
        loopbackOnly: metrics.loopbackOnly,
        tls: webConfig?.tls !== undefined,
        basicAuth: (webConfig?.users.size ?? 0) > 0,
      });
      const a = metrics.address.address;
      // A --web-config with neither TLS nor users protects nothing (headers only).
      const guarded = webConfig !== undefined && (webConfig.tls !== undefined || webConfig.users.size > 0);
      if (!guarded && !(a.startsWith('127.') || a === '::1'))
        log(
          'warn',
          'listening beyond loopback without --web-config TLS or users: whoever reaches it reads every metric',
          { url: metrics.url },
        );
    }
  } catch (e) {
    dashboard?.stop();
    server?.close();
    m.stop();
    throw e;
  }
  const st = m.status() as {
    roots: Array<{ dir: string; cgroup: string; dirs: number; inherit: Array<{ name: string }> }>;
  };
  log('info', 'ready', {
    socket: sock,
    roots: st.roots.length,
    ms: Math.round(performance.now() - t0),
    ...(metrics ? { metrics: `${metrics.url}/metrics` } : {}),
  });
  // Test hook: an exception nobody catches, thrown from the event loop once ready.
  if (process.env['CGVIEW_TEST_UNCAUGHT'] === '1')
    setImmediate(() => {
      throw new Error('CGVIEW_TEST_UNCAUGHT: an exception nobody catches');
    });
  for (const r of st.roots) {
    const file = r.inherit[0] ? path.join(r.dir, r.inherit[0].name) : r.dir;
    const dirs = `${r.dirs} ${r.dirs === 1 ? 'directory' : 'directories'}`;
    process.stdout.write(`cgview: ${r.dir} mirrors ${r.cgroup} (${dirs}); try: cat ${file}\n`);
  }
  if (st.roots.length > 0) {
    process.stdout.write(
      'cgview: every cgroup made from now on gets its directory; `bin/cgview status` shows the trees\n',
    );
  }
  if (st.roots.length === 0)
    process.stdout.write('cgview: no view trees yet; try: cgview pin info /sys/fs/bpf/cgview --inherit\n');
  if (metrics) {
    const how = [webConfig?.tls ? 'TLS' : '', (webConfig?.users.size ?? 0) > 0 ? 'basic auth' : '']
      .filter(Boolean)
      .join(', ');
    process.stdout.write(
      `cgview: metrics at ${metrics.url}/metrics${how ? ` (${how})` : ''}${
        metrics.loopbackOnly ? '; loopback only (give --listen HOST:PORT to serve other hosts)' : ''
      }\n`,
    );
    // On loopback (the safe default), the way to reach it from the operator's machine.
    const { address, port } = metrics.address;
    const loopback = address.startsWith('127.') || address === '::1';
    process.stdout.write(
      `cgview: dashboard at ${metrics.url}/${
        loopback
          ? `; from another machine: ssh -L ${port}:127.0.0.1:${port} THIS_HOST, then open http://127.0.0.1:${port}/`
          : ''
      }\n`,
    );
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log('info', 'stopping; pins stay in place', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  server.close();
  dashboard?.stop();
  metrics?.close();
  m.stop();
  return 0;
}
