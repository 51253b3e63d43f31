/**
 * --listen under hostile clients (issue 9): the HTTP server alone in a child
 * process, with the daemon's own counters rendered for a fake manager whose
 * status lists `--roots` trees (so that an answer is as big as wanted, made
 * fresh per scrape by both servers), and side by side in one run:
 *   baseline  serveMetrics of another build (`--baseline DIR`: a cgview
 *             checkout's root with dist/ built, e.g. a worktree of main
 *             before the Gate), if given
 *   cgview    serveHttp of this build
 * Scenarios, each on a fresh server: `pipelining` (320 connections from 40
 * loopback addresses, each pipelining 3 MiB of GETs, never read), `burst`
 * (1,000 connections at once, each sending one GET), `stalled` (48 clients
 * that send a GET and never read the answer), `silent` (1,000 connections
 * that never send). For each: the child's RSS before and its peak, the
 * requests answered, and how long a scrape made meanwhile took.
 *
 *   node dist/bench/http_flood.js [--baseline /path/to/old/checkout] [--roots 40000] [--only NAME]
 * No root needed (the server runs without a manager).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const HERE = path.resolve(import.meta.dirname, '../..');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

// --- the child: one server ----------------------------------------------------------------

async function child(repo: string, roots: number): Promise<void> {
  const http = await import(path.join(repo, 'dist/src/daemon/http.js'));
  const limits = await import(path.join(repo, 'dist/src/daemon/limits.js'));
  const fake = {
    status: () => ({
      overflows: 0,
      rescans: 0,
      opsFailed: 0,
      roots: Array.from({ length: roots }, (_, i) => ({
        dir: `/sys/fs/bpf/cgview/tree-number-${i}`,
        dirs: i,
      })),
    }),
  };
  let port: number;
  if (typeof http.serveHttp === 'function') {
    const shim = await import(path.join(repo, 'dist/src/daemon/metrics-shim.js'));
    const s = await http.serveHttp({
      listen: '127.0.0.1:0',
      limits: limits.httpLimits(),
      render: (req: unknown) => shim.renderMetrics(fake, req),
    });
    port = s.address.port;
  } else {
    const s = await http.serveMetrics(fake, '127.0.0.1:0', limits.httpLimits());
    port = (s.address() as net.AddressInfo).port;
  }
  process.stdout.write(`${port}\n`);
}

// --- the parent ----------------------------------------------------------------------------

function rss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GET = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';

interface Server {
  child: ChildProcess;
  port: number;
}

async function startServer(repo: string, roots: number): Promise<Server> {
  const c = spawn(
    process.execPath,
    [path.join(HERE, 'dist/bench/http_flood.js'), '--child', repo, '--roots', String(roots)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    c.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child: c, port };
}

function client(
  port: number,
  localAddress?: string,
): { sock: net.Socket; bytes: () => number; closed: () => boolean; text: () => string } {
  const sock = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  let bytes = 0;
  let head = '';
  let closed = false;
  sock.on('data', (b: Buffer) => {
    bytes += b.length;
    if (head.length < 64) head += b.toString('latin1', 0, 64);
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
  });
  return { sock, bytes: () => bytes, closed: () => closed, text: () => head };
}

/** One scrape on a fresh connection: ms to the whole answer, or -1 if closed without 200. */
async function scrapeMs(port: number, timeoutMs = 20000): Promise<number> {
  const t0 = performance.now();
  const c = client(port);
  c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const end = Date.now() + timeoutMs;
  while (!c.closed() && Date.now() < end) await sleep(5);
  c.sock.destroy();
  if (/^HTTP\/1.1 200/.test(c.text())) return Math.round(performance.now() - t0);
  process.stderr.write(
    `scrape failed after ${Math.round(performance.now() - t0)} ms: ${c.closed() ? 'closed' : 'timed out'}, got ${JSON.stringify(c.text().slice(0, 20))}\n`,
  );
  return -1;
}

interface Row {
  scenario: string;
  server: string;
  baseMiB: number;
  peakMiB: number;
  answered: string;
  scrapeMs: number;
}

async function scenario(name: string, s: Server): Promise<Omit<Row, 'server'>> {
  const pid = s.child.pid!;
  await sleep(300);
  const base = rss(pid);
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, rss(pid));
  }, 20);
  let answered = '';
  let during = -1;
  const conns: Array<ReturnType<typeof client>> = [];
  try {
    if (name === 'pipelining') {
      const chunk = Buffer.from(GET.repeat(30000));
      for (let i = 0; i < 320; i++) {
        const c = client(s.port, `127.0.1.${1 + (i % 40)}`);
        c.sock.pause();
        c.sock.on('connect', () => {
          for (let k = 0; k < 3; k++) c.sock.write(chunk);
        });
        conns.push(c);
      }
      await sleep(2000);
      during = await scrapeMs(s.port);
      await sleep(2000);
      for (const c of conns) c.sock.resume();
      await sleep(500);
      answered = `${conns.reduce((n, c) => n + (c.text().startsWith('HTTP/1.1 200') ? 1 : 0), 0)} of 320 conns got answers`;
    } else if (name === 'burst') {
      for (let i = 0; i < 1000; i++) {
        const c = client(s.port);
        c.sock.on('connect', () =>
          c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        );
        conns.push(c);
      }
      const end = Date.now() + 30000;
      while (conns.some((c) => !c.closed()) && Date.now() < end) await sleep(20);
      during = await scrapeMs(s.port);
      answered = `${conns.filter((c) => c.text().startsWith('HTTP/1.1 200')).length} of 1000`;
    } else if (name === 'stalled') {
      for (let i = 0; i < 48; i++) {
        const c = client(s.port);
        c.sock.pause();
        c.sock.write(GET);
        conns.push(c);
      }
      await sleep(3000);
      during = await scrapeMs(s.port, 60000);
      answered = 'readers never read';
    } else if (name === 'silent') {
      for (let i = 0; i < 1000; i++) conns.push(client(s.port));
      await sleep(1000);
      during = await scrapeMs(s.port);
      answered = '-';
    }
  } finally {
    clearInterval(timer);
    peak = Math.max(peak, rss(pid));
    for (const c of conns) c.sock.destroy();
  }
  return { scenario: name, baseMiB: base >> 20, peakMiB: peak >> 20, answered, scrapeMs: during };
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    await child(arg('child')!, Number(arg('roots') ?? 40000));
    return;
  }
  const roots = Number(arg('roots') ?? 40000);
  const baseline = arg('baseline');
  const only = arg('only');
  const servers: Array<[string, string]> = [
    ...(baseline ? [['baseline', path.resolve(baseline)] as [string, string]] : []),
    ['cgview', HERE],
  ];
  const rows: Row[] = [];
  for (const name of ['pipelining', 'burst', 'stalled', 'silent']) {
    if (only && only !== name) continue;
    for (const [label, repo] of servers) {
      const s = await startServer(repo, roots);
      try {
        const body = await scrapeMs(s.port);
        if (body < 0) throw new Error(`${label}: the first scrape failed`);
        rows.push({ server: label, ...(await scenario(name, s)) });
      } finally {
        s.child.kill('SIGKILL');
      }
      const r = rows[rows.length - 1]!;
      process.stdout.write(
        `${r.scenario.padEnd(11)} ${r.server.padEnd(9)} RSS ${String(r.baseMiB).padStart(4)} -> peak ${String(r.peakMiB).padStart(5)} MiB  scrape meanwhile ${r.scrapeMs < 0 ? 'FAILED' : `${r.scrapeMs} ms`}  (${r.answered})\n`,
      );
    }
  }
}

await main();
