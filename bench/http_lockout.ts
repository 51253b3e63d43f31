/**
 * --listen: can a client without the password, or with idle connections,
 * lock the scraper out or take the event loop? The HTTP server alone in a
 * child process (a small /metrics body), beside a line-echo server on a unix
 * socket in the same process standing for the control socket, and side by
 * side in one run:
 *   baseline  serveHttp of another build (`--baseline DIR`: a cgview checkout's root with dist/ built)
 *   cgview    serveHttp of this build
 * Scenarios, each on a fresh server:
 *   idle1, idle2  80 connections that never send, kept open (reopened as the
 *                 server closes them), from 127.0.0.1 (the scraper's own
 *                 address) or 127.0.0.2; a scraper from 127.0.0.1 makes 40
 *                 scrapes, one at a time, each given 5 s
 *   auth          TLS and basic auth (one user, bcrypt cost --cost, 10); 16 TLS
 *                 connections pipelining GETs with a wrong password (4, then one more per answer),
 *                 reconnecting when closed; the echo socket is pinged every
 *                 20 ms; the scraper (right password) makes 20 scrapes
 * For each: scrapes that failed, their p50, the ping p50/p99, and how many
 * connections the flood opened per second.
 *
 *   node dist/bench/http_lockout.js [--baseline /path/to/old/checkout] [--only idle1|idle2|auth] [--seconds 8] [--cost 10]
 * No root needed.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const HERE = path.resolve(import.meta.dirname, '../..');
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- the child ------------------------------------------------------------------------------

async function child(repo: string, webFile: string | undefined, sock: string): Promise<void> {
  const h = await import(path.join(repo, 'dist/src/daemon/http.js'));
  const limits = await import(path.join(repo, 'dist/src/daemon/limits.js'));
  const wc = await import(path.join(repo, 'dist/src/daemon/webconfig.js'));
  const s = await h.serveHttp({
    listen: '127.0.0.1:0',
    limits: limits.httpLimits(),
    ...(process.env['LOCKOUT_DEBUG']
      ? { log: (level: string, msg: string, f: unknown) => console.error(level, msg, JSON.stringify(f)) }
      : {}),
    ...(webFile ? { web: wc.loadWebConfig(webFile) } : {}),
    render: async () => ({
      status: 200,
      headers: { 'content-type': 'text/plain; version=0.0.4' },
      body: Buffer.from('cgview_up 1\n'),
    }),
  });
  net
    .createServer((c) => {
      c.on('error', () => {});
      c.on('data', (b) => c.write(b));
    })
    .listen(sock, () => process.stdout.write(`${s.address.port}\n`));
  if (process.env['LOCKOUT_DEBUG']) setInterval(() => console.error(JSON.stringify(s.stats)), 1000);
}

// --- the parent -----------------------------------------------------------------------------

interface Pki {
  ca: Buffer;
  web: string;
}
function pki(dir: string, cost: number): Pki {
  const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
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
    '1',
    '-subj',
    '/CN=ca',
  );
  o('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 's.key', '-out', 's.csr', '-subj', '/CN=s');
  fs.writeFileSync(path.join(dir, 's.ext'), 'subjectAltName=IP:127.0.0.1\n');
  o(
    'x509',
    '-req',
    '-in',
    's.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    's.pem',
    '-extfile',
    's.ext',
  );
  const hash = execFileSync(
    process.execPath,
    ['-e', `process.stdout.write(require('bcryptjs').hashSync('right', ${cost}))`],
    { cwd: HERE },
  ).toString();
  const web = path.join(dir, 'web.yml');
  fs.writeFileSync(
    web,
    `tls_server_config:\n  cert_file: s.pem\n  key_file: s.key\nbasic_auth_users:\n  prom: ${hash}\n`,
  );
  return { ca: fs.readFileSync(path.join(dir, 'ca.pem')), web };
}

async function startChild(repo: string, web: string | undefined, sock: string) {
  const c = spawn(
    process.execPath,
    [
      path.join(HERE, 'dist/bench/http_lockout.js'),
      '--child',
      repo,
      '--sock',
      sock,
      ...(web ? ['--web', web] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    c.stdout!.on('data', (b: Buffer) => {
      out += b;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    c.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  return { child: c, port };
}

function pct(xs: number[], q: number): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** One scrape from 127.0.0.1; its time in ms, or -1 if it failed (curl's 000). */
function scrape(port: number, secure: Pki | null): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const mod = secure ? https : (http as unknown as typeof https);
    const req = mod.request(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        localAddress: '127.0.0.1',
        agent: false,
        ...(secure
          ? {
              ca: secure.ca,
              headers: { authorization: `Basic ${Buffer.from('prom:right').toString('base64')}` },
            }
          : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200 && process.env.LOCKOUT_DEBUG)
            console.error('status', res.statusCode, res.headers);
          resolve(res.statusCode === 200 ? performance.now() - t0 : -1);
        });
        res.on('error', () => resolve(-1));
      },
    );
    req.on('error', (e) => {
      if (process.env.LOCKOUT_DEBUG) console.error('error', e.message, performance.now() - t0);
      resolve(-1);
    });
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

async function run(repo: string, scenario: string, seconds: number, p: Pki) {
  const sock = path.join(
    os.tmpdir(),
    `cgview-lockout-${process.pid}-${Math.random().toString(36).slice(2)}.sock`,
  );
  const secure = scenario === 'auth' ? p : null;
  const s = await startChild(repo, secure ? p.web : undefined, sock);
  let on = true;
  let opened = 0;
  const flood: Array<net.Socket> = [];
  const from = scenario === 'idle1' ? '127.0.0.1' : '127.0.0.2';
  const wrong = `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('prom:guess').toString('base64')}\r\n\r\n`;
  const open = () => {
    opened++;
    if (secure) {
      const c = tls.connect(
        { host: '127.0.0.1', port: s.port, localAddress: from, ca: p.ca } as tls.ConnectionOptions,
        () => c.write(wrong.repeat(4)),
      );
      c.on('data', () => {
        if (c.writableLength === 0) c.write(wrong);
      });
      c.on('error', () => {});
      c.on('close', () => on && open());
      flood.push(c);
    } else {
      const c = net.connect({ host: '127.0.0.1', port: s.port, localAddress: from });
      c.on('error', () => {});
      c.on('close', () => on && setImmediate(open));
      flood.push(c);
    }
  };
  for (let i = 0; i < (secure ? 16 : 80); i++) open();
  await sleep(1000);
  const t0 = performance.now();
  const opened0 = opened;
  const pings: number[] = [];
  const ping = net.connect(sock);
  ping.on('error', () => {});
  let sent = 0;
  ping.on('data', () => pings.push(performance.now() - sent));
  const pinger = setInterval(() => {
    sent = performance.now();
    ping.write('{"op":"ping"}\n');
  }, 20);
  const times: number[] = [];
  const end = t0 + seconds * 1000;
  const n = secure ? 20 : 40;
  for (let i = 0; i < n && performance.now() < end + 5000; i++) {
    times.push(await scrape(s.port, secure));
    await sleep(Math.max(0, (seconds * 1000) / n - 0));
  }
  const rate = ((opened - opened0) * 1000) / (performance.now() - t0);
  clearInterval(pinger);
  on = false;
  for (const c of flood) c.destroy();
  ping.destroy();
  s.child.kill('SIGKILL');
  fs.rmSync(sock, { force: true });
  const ok = times.filter((t) => t >= 0);
  return {
    failed: `${times.length - ok.length}/${times.length}`,
    scrapeP50: Math.round(pct(ok, 0.5)),
    pingP50: Number(pct(pings, 0.5).toFixed(1)),
    pingP99: Number(pct(pings, 0.99).toFixed(1)),
    floodPerSec: Math.round(rate),
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    await child(arg('child')!, arg('web'), arg('sock')!);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgview-lockout-'));
  try {
    const p = pki(dir, Number(arg('cost') ?? 10));
    const baseline = arg('baseline');
    const builds: Array<[string, string]> = [
      ...(baseline ? [['baseline', path.resolve(baseline)] as [string, string]] : []),
      ['cgview', HERE],
    ];
    const only = arg('only');
    const seconds = Number(arg('seconds') ?? 8);
    for (const scenario of ['idle1', 'idle2', 'auth'].filter((x) => !only || x === only))
      for (const [name, repo] of builds)
        console.log(JSON.stringify({ scenario, build: name, ...(await run(repo, scenario, seconds, p)) }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
