/**
 * The control socket: newline-delimited JSON requests and responses on a
 * UNIX socket. Mode 0600 by default: only root talks to the daemon (job
 * owners read their view files directly, with no daemon involved).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import type { Logger } from './log.js';
import type { Manager } from './manager.js';

export const DEFAULT_SOCKET = '/run/cgview/cgview.sock';

export function socketPath(explicit?: string): string {
  return explicit ?? process.env['CGVIEW_SOCKET'] ?? DEFAULT_SOCKET;
}

/** The public index of trees sits beside the socket (roots.json, mode 0644). */
export function indexFileFor(socket: string): string {
  return path.join(path.dirname(socket), 'roots.json');
}

export interface Request {
  op: string;
  args?: Record<string, unknown>;
}

export type Response =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; hint?: string } };

function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

export function handle(m: Manager, req: Request): unknown {
  const a = req.args ?? {};
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  switch (req.op) {
    case 'ping':
      return { pid: process.pid };
    case 'pin': {
      const view = str('view');
      const dir = str('dir');
      if (!view || !dir) throw new CgviewError('E_BAD_INPUT', 'pin needs a view and a directory');
      return m.pin({
        view,
        dir,
        ...(str('cgroup') !== undefined ? { cgroup: str('cgroup')! } : {}),
        inherit: a['inherit'] === true,
        ...(str('name') !== undefined ? { name: str('name')! } : {}),
        ...(str('mode') !== undefined ? { mode: str('mode') as 'auto' | 'manual' } : {}),
        ...(typeof a['fileMode'] === 'number' ? { fileMode: a['fileMode'] } : {}),
      });
    }
    case 'unpin': {
      const p = str('path');
      if (!p) throw new CgviewError('E_BAD_INPUT', 'unpin needs DIR/NAME');
      return m.unpin(p);
    }
    case 'ls':
      return m.ls(str('dir'));
    case 'resolve': {
      const p = str('cgroup');
      if (!p) throw new CgviewError('E_BAD_INPUT', 'resolve needs a cgroup directory');
      return m.resolve(p);
    }
    case 'status':
      return m.status();
    case 'rescan':
      m.rescanAll('requested');
      return { ok: true };
    default:
      throw new CgviewError('E_BAD_INPUT', `unknown request ${JSON.stringify(req.op)}`);
  }
}

/** Serves the control socket. Removes a stale socket file left by a crashed daemon. */
/**
 * Fails with E_EXISTS when another daemon answers on `file`; removes a stale
 * socket file left by a crashed one. Run before anything else is done.
 */
export async function ensureSocketFree(file: string): Promise<void> {
  if (!fs.existsSync(file)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive)
    throw new CgviewError('E_EXISTS', `another daemon is listening on ${file}`, {
      hint: 'stop it, or pass --socket PATH',
    });
  fs.rmSync(file, { force: true });
}

/** Serves the control socket. */
export async function serveSocket(m: Manager, file: string, log: Logger, mode = 0o600): Promise<net.Server> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  await ensureSocketFree(file);
  const clients = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 1 << 20) {
        sock.destroy();
        return;
      }
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let res: Response;
        try {
          const req = JSON.parse(line) as Request;
          res = { ok: true, result: handle(m, req) };
        } catch (e) {
          const err =
            e instanceof CgviewError
              ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) }
              : { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
          if (!(e instanceof CgviewError)) log('error', 'request failed', { error: (e as Error)?.stack });
          res = { ok: false, error: err };
        }
        sock.write(`${toJson(res)}\n`, 'latin1');
      }
    });
    sock.on('error', () => {});
  });
  // Create the socket with no access for anyone but root, then open it up as asked.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(file, mode);
  // Stopping the daemon must not wait for idle clients.
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    for (const c of clients) c.destroy();
    return close(cb);
  };
  return server;
}

/** --listen HOST:PORT: a small Prometheus endpoint with the daemon's own counters. */
/** Parses --listen HOST:PORT; throws E_BAD_INPUT. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i) || '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (i < 0 || listen.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new CgviewError('E_BAD_INPUT', `--listen wants HOST:PORT, got ${listen}`);
  return { host, port };
}

export async function serveMetrics(m: Manager, listen: string): Promise<http.Server> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('try /metrics\n');
      return;
    }
    const s = m.status() as Record<string, unknown> & { roots: Array<Record<string, unknown>> };
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
    ];
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** Client side: one request, one response. E_NO_DAEMON when nothing listens. */
export function request(file: string, req: Request, timeoutMs = 60000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CgviewError('E_NO_DAEMON', `the daemon on ${file} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(`${toJson(req)}\n`, 'latin1'));
    sock.on('data', (c: string) => {
      buf += c;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      answered = true;
      sock.end();
      const res = JSON.parse(buf.slice(0, i)) as Response;
      if (res.ok) resolve(res.result);
      else
        reject(
          new CgviewError(
            res.error.code as 'E_BAD_INPUT',
            res.error.message,
            res.error.hint ? { hint: res.error.hint } : {},
          ),
        );
    });
    let answered = false;
    sock.on('close', () => {
      clearTimeout(timer);
      if (!answered)
        reject(
          new CgviewError('E_NO_DAEMON', `the daemon on ${file} closed the connection without answering`, {
            hint: 'it may have stopped or crashed: see its log, then start it again',
          }),
        );
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      answered = true;
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')
        reject(
          new CgviewError('E_NO_DAEMON', `the cgview daemon is not running (no socket at ${file})`, {
            hint: 'start it with `cgview daemon` (as root), or pass --socket PATH / set CGVIEW_SOCKET',
          }),
        );
      else if (e.code === 'EACCES')
        reject(
          new CgviewError('E_PERMISSION', `no permission to talk to the daemon on ${file}`, {
            hint: 'run as root',
          }),
        );
      else reject(e);
    });
  });
}
