/**
 * --listen HOST:PORT: a small HTTP server with the daemon's own counters in
 * the Prometheus text format, bounded by HttpLimits.
 */
import http from 'node:http';
import type net from 'node:net';
import { CgviewError } from '../errors.js';
import { configureExport, renderMetrics } from '../export/snapshot.js';
import type { ControlStats } from './control-socket.js';
import { HTTP_LIMITS, type HttpLimits } from './limits.js';
import type { Manager } from './manager.js';

/** Parses --listen HOST:PORT; throws E_BAD_INPUT. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i) || '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (i < 0 || listen.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new CgviewError('E_BAD_INPUT', `--listen wants HOST:PORT, got ${listen}`);
  return { host, port };
}

/** How soon a connection past the share of its address must have sent its request. */
const LATE_FIRST_REQUEST_MS = 250;

/** --listen HOST:PORT: a small Prometheus endpoint with the daemon's own counters. */
export async function serveMetrics(
  m: Manager,
  listen: string,
  limits: HttpLimits = HTTP_LIMITS,
  control?: ControlStats,
): Promise<http.Server> {
  const { host, port } = parseListen(listen);
  configureExport(m, {}, control);
  // Requests not yet answered, per connection: a client that pipelines
  // without reading is closed before Node queues thousands for it (Node
  // parses a whole chunk read, up to 64 KiB of requests, before it pauses).
  const pending = new WeakMap<net.Socket, number>();
  /** Open connections, oldest first (a Map keeps insertion order), and per remote address. */
  interface TcpConn {
    addr: string;
    firstTimer: NodeJS.Timeout | null;
  }
  const open = new Map<net.Socket, TcpConn>();
  const byAddr = new Map<string, Set<net.Socket>>();
  /** Closes the oldest connection without a request in progress of the address holding most; false if none. */
  const makeRoom = (): boolean => {
    const addrs = [...byAddr.values()].sort((x, y) => y.size - x.size);
    for (const socks of addrs)
      for (const s of socks)
        if ((pending.get(s) ?? 0) === 0) {
          s.destroy();
          // 'close' comes later: forget it now so that the count is right for the next newcomer.
          open.delete(s);
          socks.delete(s);
          return true;
        }
    return false;
  };
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      // Node refuses a headers timeout longer than the request timeout.
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the timeouts above are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (req, res) => {
      const sock = req.socket;
      if (sock.destroyed) return;
      const tcp = open.get(sock);
      if (tcp?.firstTimer) {
        clearTimeout(tcp.firstTimer);
        tcp.firstTimer = null;
      }
      const n = (pending.get(sock) ?? 0) + 1;
      pending.set(sock, n);
      if (n > limits.maxPipelined) {
        sock.destroy();
        return;
      }
      res.once('close', () => pending.set(sock, (pending.get(sock) ?? 1) - 1));
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', connection: 'close' }).end();
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end('try /metrics\n');
        return;
      }
      // The exporter renders (src/export): every view of every cgroup and the daemon's own figures.
      void renderMetrics(m, {
        ...(req.headers.accept ? { accept: req.headers.accept } : {}),
        ...(req.headers['accept-encoding'] ? { acceptEncoding: String(req.headers['accept-encoding']) } : {}),
      }).then(
        (r) => {
          if (res.destroyed) return;
          res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
          res.end(req.method === 'HEAD' ? undefined : r.body);
        },
        () => res.destroy(),
      );
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Connections are counted here rather than by Node's maxConnections
  // (which resets every newcomer past it): idle connections, of one local
  // user say, would otherwise lock the scraper out.
  server.on('connection', (sock: net.Socket) => {
    const addr = sock.remoteAddress ?? '?';
    const mine = byAddr.get(addr) ?? new Set<net.Socket>();
    if (open.size >= limits.maxConnections && !makeRoom()) {
      sock.destroy();
      return;
    }
    // Past its address's share a connection is not refused (the scraper may
    // share the address, 127.0.0.1, with the user holding the share): it
    // must send its request at once instead.
    const wait =
      mine.size >= limits.maxConnectionsPerAddress
        ? Math.min(limits.firstRequestMs, LATE_FIRST_REQUEST_MS)
        : limits.firstRequestMs;
    const tcp: TcpConn = { addr, firstTimer: null };
    // Not unref'd: the server keeps the process alive anyway; cleared on the first request or close.
    tcp.firstTimer = setTimeout(() => {
      tcp.firstTimer = null;
      sock.destroy();
    }, wait);
    open.set(sock, tcp);
    mine.add(sock);
    byAddr.set(addr, mine);
    sock.once('close', () => {
      if (tcp.firstTimer) clearTimeout(tcp.firstTimer);
      open.delete(sock);
      mine.delete(sock);
      if (mine.size === 0 && byAddr.get(addr) === mine) byAddr.delete(addr);
    });
  });
  server.setTimeout(limits.idleMs, (s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: limits.backlog }, () => resolve());
  });
  return server;
}
