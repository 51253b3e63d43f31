/**
 * A real Prometheus for tests: /usr/bin/prometheus (Debian's package,
 * installed with apt-get when missing) on 127.0.0.1 with a port from the OS,
 * a temporary storage directory and a generated configuration that scrapes
 * the given targets every second (optionally over TLS with basic auth, and
 * with native histograms). Stopped by pid and its directory removed after
 * the file's tests, also on failure.
 *
 *   const p = await Prometheus.start({ targets: ['127.0.0.1:9123'] });
 *   await p.waitScrapes(3);
 *   const v = await p.value('rate(cgview_sched_lat_wait_seconds_sum[5s])');
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onCleanup, RUN_PREFIX, sleep } from './helpers.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

/** Installs Debian's prometheus package (prometheus + promtool) when it is missing. */
export function ensurePrometheus(): void {
  if (fs.existsSync(PROMETHEUS) && fs.existsSync(PROMTOOL)) return;
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface PrometheusOptions {
  /** host:port of each target (one job, `cgview`). */
  targets: string[];
  /** Default /metrics. */
  metricsPath?: string;
  /** Seconds between scrapes (default 1). */
  scrapeIntervalS?: number;
  /** --enable-feature=native-histograms (Prometheus then asks for the protobuf exposition). */
  nativeHistograms?: boolean;
  /** https with this CA (PEM file) and server name, or insecure_skip_verify. */
  tls?: { caFile?: string; serverName?: string; insecureSkipVerify?: boolean };
  basicAuth?: { username: string; password: string };
  /** Extra command-line arguments. */
  args?: string[];
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

interface ApiAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

/** The scrape configuration Prometheus runs with (YAML is a superset of JSON). */
export function scrapeConfig(o: PrometheusOptions): Record<string, unknown> {
  const interval = `${o.scrapeIntervalS ?? 1}s`;
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: 'cgview',
        metrics_path: o.metricsPath ?? '/metrics',
        scheme: o.tls ? 'https' : 'http',
        ...(o.tls
          ? {
              tls_config: {
                ...(o.tls.caFile ? { ca_file: o.tls.caFile } : {}),
                ...(o.tls.serverName ? { server_name: o.tls.serverName } : {}),
                ...(o.tls.insecureSkipVerify ? { insecure_skip_verify: true } : {}),
              },
            }
          : {}),
        ...(o.basicAuth ? { basic_auth: o.basicAuth } : {}),
        static_configs: [{ targets: o.targets }],
      },
    ],
  };
}

const live = new Set<Prometheus>();

export class Prometheus {
  readonly dir: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly pid: number;
  log = '';
  #exited = false;
  readonly #exit: Promise<void>;

  private constructor(dir: string, port: number, o: PrometheusOptions) {
    this.dir = dir;
    this.url = `http://127.0.0.1:${port}`;
    const cfg = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(cfg, JSON.stringify(scrapeConfig(o), null, 2));
    const args = [
      `--config.file=${cfg}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      // Series of a removed target or cgroup go stale at once; queries look back 5 min by default.
      '--query.lookback-delta=30s',
      ...(o.nativeHistograms ? ['--enable-feature=native-histograms'] : []),
      ...(o.args ?? []),
    ];
    this.child = spawn(PROMETHEUS, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
    if (this.child.pid === undefined) throw new Error('could not start prometheus');
    this.pid = this.child.pid;
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      // Keep the tail only: a long test must not grow this without bound.
      this.log = (this.log + s).slice(-65536);
    });
    this.#exit = new Promise((resolve) =>
      this.child.once('exit', () => {
        this.#exited = true;
        live.delete(this);
        resolve();
      }),
    );
    live.add(this);
    const pid = this.pid;
    // Cleanups run newest first: the process goes before its directory.
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    onCleanup(() => {
      if (this.#exited) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      for (let i = 0; i < 200; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        execFileSync('sleep', ['0.02']);
      }
    });
  }

  /** Starts Prometheus and waits until it is ready (/-/ready). */
  static async start(o: PrometheusOptions): Promise<Prometheus> {
    ensurePrometheus();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${RUN_PREFIX}prom-`));
    // The port is free when picked; if someone takes it before Prometheus binds, try another.
    for (let attempt = 0; ; attempt++) {
      const p = new Prometheus(dir, await freePort(), o);
      try {
        await p.ready();
        return p;
      } catch (e) {
        await p.stop();
        if (attempt >= 2 || !/address already in use/.test(p.log)) throw e;
      }
    }
  }

  async ready(ms = 30000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      if (this.#exited) throw new Error(`prometheus exited before it was ready:\n${this.log.slice(-4000)}`);
      try {
        const r = await fetch(`${this.url}/-/ready`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > end)
        throw new Error(`prometheus not ready within ${ms} ms:\n${this.log.slice(-4000)}`);
      await sleep(100);
    }
  }

  /** SIGTERM, then SIGKILL after `ms`. */
  async stop(ms = 10000): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.#exit;
    clearTimeout(timer);
  }

  /** GET /api/v1/<what> with query parameters; throws unless status is success. */
  async api(what: string, params: Record<string, string> = {}): Promise<ApiAnswer['data']> {
    const u = new URL(`${this.url}/api/v1/${what}`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const r = await fetch(u);
    const body = (await r.json()) as ApiAnswer;
    if (body.status !== 'success')
      throw new Error(`prometheus ${what} ${JSON.stringify(params)}: ${body.error}`);
    return body.data;
  }

  /** An instant query: the vector's samples (NaN kept as NaN). */
  async query(q: string, time?: number): Promise<Sample[]> {
    const data = await this.api('query', { query: q, ...(time !== undefined ? { time: String(time) } : {}) });
    if (data?.resultType === 'scalar') {
      const v = data.result as unknown as [number, string];
      return [{ metric: {}, value: Number(v[1]) }];
    }
    return (data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The one value of an instant query; undefined when the vector is empty, throws when it has several. */
  async value(q: string, time?: number): Promise<number | undefined> {
    const s = await this.query(q, time);
    if (s.length > 1)
      throw new Error(`${q}: ${s.length} series, expected one: ${JSON.stringify(s.slice(0, 3))}`);
    return s[0]?.value;
  }

  /** The scrape targets as Prometheus sees them (health, lastError, lastScrape). */
  async targets(): Promise<
    Array<{ health: string; lastError: string; lastScrape: string; scrapeUrl: string }>
  > {
    const d = (await this.api('targets')) as unknown as {
      activeTargets: Array<{ health: string; lastError: string; lastScrape: string; scrapeUrl: string }>;
    };
    return d.activeTargets;
  }

  /**
   * Waits until every target was scraped successfully `n` times more (by the
   * up series' sample count over the last minute); throws with the target's
   * last error when it does not happen within `ms`.
   */
  async waitScrapes(n: number, ms = 30000): Promise<void> {
    const count = async () => (await this.value('sum(count_over_time(up{job="cgview"}[1m]))')) ?? 0;
    const okCount = async () => (await this.value('sum(sum_over_time(up{job="cgview"}[1m]))')) ?? 0;
    const start = await okCount();
    const end = Date.now() + ms;
    for (;;) {
      if ((await okCount()) >= start + n) return;
      if (Date.now() > end) {
        const t = await this.targets().catch(() => []);
        throw new Error(
          `prometheus did not scrape ${n} times within ${ms} ms (${await count()} scrapes): ${JSON.stringify(t)}\n${this.log.slice(-2000)}`,
        );
      }
      await sleep(250);
    }
  }

  /** Waits until `q` gives a value that `ok` accepts; returns it. */
  async waitValue(
    q: string,
    ok: (v: number | undefined) => boolean,
    ms = 30000,
  ): Promise<number | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await this.value(q);
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`${q}: value ${v} not accepted within ${ms} ms`);
      await sleep(250);
    }
  }
}

/** Prometheus processes this file started that still run (for diagnostics). */
export function livePrometheus(): number[] {
  return [...live].map((p) => p.pid);
}

/** `promtool check metrics` of an exposition text: what it says (empty: clean). */
export function promtoolCheckMetrics(text: string): { code: number; output: string } {
  ensurePrometheus();
  try {
    const out = execFileSync(PROMTOOL, ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return { code: 0, output: out };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? -1, output: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}
