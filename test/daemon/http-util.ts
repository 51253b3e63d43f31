/**
 * What the --listen tests share: a test-made CA and server certificate
 * (openssl), web config files, raw TCP clients, and a small Prometheus
 * harness (same API as test/prometheus.ts of the exporter, which replaces it
 * once both are in main).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { onCleanup, RUN_PREFIX, sleep } from '../helpers.js';

export function tmpDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${RUN_PREFIX}${tag}-`));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface Pki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A client certificate signed by the CA. */
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost signed by it, and a client certificate. */
export function makePki(): Pki {
  const dir = tmpDir('pki');
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=cgview test CA',
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    o(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    fs.writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    o(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server.key'),
    clientCert: path.join(dir, 'client.pem'),
    clientKey: path.join(dir, 'client.key'),
  };
}

/** A bcrypt hash made by the test (cost 4: the tests check logic, not cost). */
export function hashOf(password: string, cost = 4): string {
  return bcrypt.hashSync(password, cost);
}

export function writeFile(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS (or HTTP) GET with optional basic auth; rejects on a connection error. */
export function get(
  url: string,
  o: { ca?: string; user?: string; password?: string; cert?: string; key?: string; method?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    if (o.user !== undefined)
      headers['authorization'] = `Basic ${Buffer.from(`${o.user}:${o.password ?? ''}`).toString('base64')}`;
    const mod = u.protocol === 'https:' ? https : (http as unknown as typeof https);
    const req = mod.request(
      u,
      {
        method: o.method ?? 'GET',
        headers,
        agent: false,
        ...(o.ca ? { ca: fs.readFileSync(o.ca) } : {}),
        ...(o.cert ? { cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key!) } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          body += s;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`no answer from ${url} within 15 s`)));
    req.end();
  });
}

/** A raw TCP client: what it received, and whether it was closed. */
export function tcp(
  port: number,
  host = '127.0.0.1',
  localAddress?: string,
): { sock: net.Socket; data: () => string; closed: () => boolean } {
  const sock = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
  let data = '';
  let closed = false;
  sock.setEncoding('latin1');
  sock.on('data', (s: string) => {
    data += s;
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
  });
  return { sock, data: () => data, closed: () => closed };
}

export const PROMETHEUS = '/usr/bin/prometheus';

/** Installs Debian's prometheus package when it is missing. */
export function ensurePrometheus(): void {
  if (fs.existsSync(PROMETHEUS)) return;
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Job {
  name: string;
  targets: string[];
  tls?: { caFile?: string; serverName?: string };
  basicAuth?: { username: string; password: string };
}

/** A real Prometheus on 127.0.0.1 scraping `jobs` every second; killed by pid after the file's tests. */
export class Prometheus {
  readonly url: string;
  readonly child: ChildProcess;
  log = '';
  #exited = false;
  readonly #exit: Promise<void>;

  private constructor(dir: string, port: number, jobs: Job[]) {
    this.url = `http://127.0.0.1:${port}`;
    const cfg = path.join(dir, 'prometheus.yml');
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: jobs.map((j) => ({
        job_name: j.name,
        scheme: j.tls ? 'https' : 'http',
        ...(j.tls
          ? {
              tls_config: {
                ...(j.tls.caFile ? { ca_file: j.tls.caFile } : {}),
                ...(j.tls.serverName ? { server_name: j.tls.serverName } : {}),
              },
            }
          : {}),
        ...(j.basicAuth ? { basic_auth: j.basicAuth } : {}),
        static_configs: [{ targets: j.targets }],
      })),
    };
    // YAML is a superset of JSON.
    fs.writeFileSync(cfg, JSON.stringify(config, null, 2));
    this.child = spawn(
      PROMETHEUS,
      [
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--query.lookback-delta=30s',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
    );
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('could not start prometheus');
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.log = (this.log + s).slice(-65536);
    });
    this.#exit = new Promise((resolve) =>
      this.child.once('exit', () => {
        this.#exited = true;
        resolve();
      }),
    );
    onCleanup(() => {
      if (this.#exited) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
  }

  static async start(jobs: Job[]): Promise<Prometheus> {
    ensurePrometheus();
    const dir = tmpDir('prom');
    for (let attempt = 0; ; attempt++) {
      const p = new Prometheus(dir, await freePort(), jobs);
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
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > end)
        throw new Error(`prometheus not ready within ${ms} ms:\n${this.log.slice(-4000)}`);
      await sleep(100);
    }
  }

  async stop(ms = 10000): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.#exit;
    clearTimeout(timer);
  }

  async query(q: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
    const u = new URL(`${this.url}/api/v1/query`);
    u.searchParams.set('query', q);
    const body = (await (await fetch(u)).json()) as {
      status: string;
      error?: string;
      data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (body.status !== 'success') throw new Error(`prometheus query ${q}: ${body.error}`);
    return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  async targets(): Promise<Array<{ labels: Record<string, string>; health: string; lastError: string }>> {
    const body = (await (await fetch(`${this.url}/api/v1/targets`)).json()) as {
      data: { activeTargets: Array<{ labels: Record<string, string>; health: string; lastError: string }> };
    };
    return body.data.activeTargets;
  }

  /** Waits until `ok` accepts the targets of `job`; returns them. */
  async waitTargets(
    job: string,
    ok: (t: Array<{ health: string; lastError: string }>) => boolean,
    ms = 30000,
  ): Promise<Array<{ health: string; lastError: string }>> {
    const end = Date.now() + ms;
    for (;;) {
      const t = (await this.targets()).filter((x) => x.labels['job'] === job);
      if (t.length && ok(t)) return t;
      if (Date.now() > end)
        throw new Error(
          `targets of ${job} not as expected within ${ms} ms: ${JSON.stringify(t)}\n${this.log.slice(-2000)}`,
        );
      await sleep(250);
    }
  }
}
