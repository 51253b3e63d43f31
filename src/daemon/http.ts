/**
 * --listen HOST:PORT: the daemon's HTTP server (/metrics, and the routes
 * later parts add with addRoute), bounded by HttpLimits, with TLS and basic
 * authentication from --web-config.
 *
 * Connections are accepted by a plain net.Server that decides before any
 * byte is read: admitted ones (maxConnections) go through TLS, if any, and a
 * Gate into Node's HTTP server; the others wait unread or are closed. The
 * Gate hands the HTTP parser one request head at a time, and the next only
 * once the answer to it is sent: Node's parser never sees more than one
 * request of a connection, whatever the client pipelines, and a connection
 * holds at most one read chunk and one request of the daemon's memory.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { CgviewError } from '../errors.js';
import { HTTP_LIMITS, type HttpLimits } from './limits.js';
import type { Logger } from './log.js';
import {
  type AuthResult,
  BasicAuth,
  RateLimitedLog,
  type TlsConfig,
  tlsContextOptions,
  type WebConfig,
} from './webconfig.js';

export interface ListenAddress {
  host: string;
  port: number;
  /** The host was left out (`:PORT`): loopback only. */
  defaulted: boolean;
}

/** Parses --listen HOST:PORT, [IPV6]:PORT or :PORT (127.0.0.1); throws E_BAD_INPUT. */
export function parseListen(listen: string): ListenAddress {
  const bad = (why: string) =>
    new CgviewError('E_BAD_INPUT', `--listen wants HOST:PORT, [IPV6]:PORT or :PORT, got ${listen}: ${why}`);
  let host: string;
  let rest: string;
  if (listen.startsWith('[')) {
    const close = listen.indexOf(']');
    if (close < 0 || listen[close + 1] !== ':') throw bad('no ]:PORT after the IPv6 address');
    host = listen.slice(1, close);
    if (net.isIPv6(host) === false) throw bad(`${host} is not an IPv6 address`);
    rest = listen.slice(close + 2);
  } else {
    const i = listen.lastIndexOf(':');
    if (i < 0) throw bad('no :PORT');
    host = listen.slice(0, i);
    rest = listen.slice(i + 1);
    if (host.includes(':')) throw bad('put an IPv6 address in brackets, [::1]:9100');
    if (host !== '' && !net.isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host))
      throw bad(`${host} is not an address or host name`);
  }
  const port = Number(rest);
  if (!/^\d{1,5}$/.test(rest) || port > 65535) throw bad(`port ${JSON.stringify(rest)}`);
  return { host: host || '127.0.0.1', port, defaulted: host === '' };
}

/** The base URL of a listening server, e.g. http://127.0.0.1:9100 or https://[::1]:9100. */
export function baseUrl(addr: net.AddressInfo, secure: boolean): string {
  const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return `${secure ? 'https' : 'http'}://${host}:${addr.port}`;
}

/**
 * A handler of a path prefix: true when it answered (or will answer) the
 * request, false to let the next route or the 404 have it. Only GET and HEAD
 * reach a route, after authentication.
 */
export type Route = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
) => boolean | Promise<boolean>;

/** Path prefixes and their routes: a prefix matches its own path, and below it if it ends with '/'. */
export class Router {
  readonly #routes: Array<{ prefix: string; route: Route }> = [];

  add(prefix: string, route: Route): void {
    if (!prefix.startsWith('/'))
      throw new CgviewError('E_BAD_INPUT', `a route prefix starts with /: ${prefix}`);
    this.#routes.push({ prefix, route });
    // Longest prefix first: /api/v1/ before /.
    this.#routes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The routes that match a path, most specific first. */
  match(pathname: string): Route[] {
    return this.#routes
      .filter((r) => pathname === r.prefix || (r.prefix.endsWith('/') && pathname.startsWith(r.prefix)))
      .map((r) => r.route);
  }
}

/** The routes of the daemon's server (the dashboard adds `/`, `/assets/`, `/api/v1/`). */
export const defaultRouter = new Router();

/** Adds a route to the daemon's HTTP server; applies to servers started before and after. */
export function addRoute(prefix: string, route: Route): void {
  defaultRouter.add(prefix, route);
}

/** What the server counted; /metrics shows it. */
export interface HttpStats {
  /** Connections admitted now. */
  connections: number;
  /** Connections waiting for a slot now. */
  waiting: number;
  accepted: number;
  /** Closed on arrival (no slot, no room in the waiting queue), or closed while waiting. */
  refused: number;
  /** Connections closed to make room for a newcomer (idle ones, waiting on bcrypt, or past their address's share). */
  evicted: number;
  /** Closed: the answer was not finished within answerTimeoutMs of its request. */
  answerTimeouts: number;
  /** Closed: no request within firstRequestMs. */
  firstRequestTimeouts: number;
  /** Closed: pipelined more than maxPipelined, or queued more than maxQueuedWriteBytes, or stopped reading. */
  slowOrGreedy: number;
  requests: number;
  unauthorized: number;
  /** 503: bcrypt was busy. */
  authBusy: number;
  tlsErrors: number;
}

export interface Rendered {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The body as parts, when the renderer has it so (sent as they are, no joined copy). */
  parts?: readonly Buffer[];
}
/** GET /metrics: the exporter's renderMetrics (src/export/snapshot.ts), bound to the manager. */
export type RenderMetrics = (req: { accept?: string; acceptEncoding?: string }) => Promise<Rendered>;

export interface HttpOptions {
  listen: string;
  render: RenderMetrics;
  limits?: HttpLimits;
  web?: WebConfig | undefined;
  log?: Logger;
  router?: Router;
}

export interface HttpServer {
  /** Base URL (scheme, address, port). */
  readonly url: string;
  readonly address: net.AddressInfo;
  readonly stats: HttpStats;
  readonly loopbackOnly: boolean;
  close(): void;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const LF2 = Buffer.from('\n\n');

/** Where the first request head in `b` from `from` on ends (past its empty line), or -1. Bare LF lines count too. */
function headEnd(b: Buffer, from = 0): number {
  const a = b.indexOf(CRLF2, from);
  const l = b.indexOf(LF2, from);
  if (a < 0) return l < 0 ? -1 : l + 2;
  return l < 0 || a < l ? a + 4 : l + 2;
}
const EMPTY = Buffer.alloc(0);
/** How soon a connection past the share of its address must have sent its request. */
const LATE_FIRST_REQUEST_MS = 250;
/** A connection admitted this long ago that has no request in progress may be closed to make room. */
const GRACE_MS = 250;
/** Slices of a body written at a time (views of it, not copies). */
const SLICE = 64 << 10;

interface GateLimits {
  headersTimeoutMs: number;
  maxHeaderBytes: number;
  maxPipelined: number;
  writeStallMs: number;
  maxQueuedWriteBytes: number;
}

/**
 * The HTTP server's view of one connection: forwards one request head at a
 * time (see the module comment), writes with the socket's backpressure, and
 * closes a connection whose answers stop moving for writeStallMs.
 */
class Gate extends Duplex {
  readonly inner: net.Socket;
  /** Responses the HTTP server has begun for this connection and not finished. */
  pending = 0;
  /** The request's first-request timer is cleared through this. */
  onRequest: (() => void) | null = null;
  onGreedy: (() => void) | null = null;
  #held: Buffer = EMPTY;
  /** A request head was handed to the parser and its answer is not finished. */
  #inFlight = false;
  #ended = false;
  /** The answer said `Connection: close`: no more requests are handed over. */
  #closing = false;
  #eofPushed = false;
  #stall: NodeJS.Timeout | null = null;
  /** Runs while part of a request head is held and not handed over: Node's headers timeout cannot see those bytes. */
  #headTimer: NodeJS.Timeout | null = null;
  readonly #lim: GateLimits;

  constructor(inner: net.Socket, lim: GateLimits) {
    super({ allowHalfOpen: true });
    this.inner = inner;
    this.#lim = lim;
    inner.on('data', (b: Buffer) => this.#onData(b));
    inner.on('end', () => {
      this.#ended = true;
      this.#pump();
    });
    inner.on('error', () => {});
    inner.on('close', () => this.destroy());
    inner.on('timeout', () => this.emit('timeout'));
    inner.resume();
  }

  get remoteAddress(): string | undefined {
    return this.inner.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.inner.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.inner.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.inner.localAddress;
  }
  get localPort(): number | undefined {
    return this.inner.localPort;
  }
  /** As on a TLSSocket: req.socket.encrypted says whether the request came over TLS. */
  get encrypted(): boolean {
    return this.inner instanceof tls.TLSSocket;
  }
  /** A request in progress, or an answer still being sent: not to be closed to make room. */
  get busy(): boolean {
    return this.pending > 0 || this.#inFlight || this.writableLength > 0 || this.inner.writableLength > 0;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.inner.setTimeout(ms);
    if (cb) this.once('timeout', cb);
    return this;
  }
  setNoDelay(v?: boolean): this {
    this.inner.setNoDelay(v);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.inner.setKeepAlive(enable, delay);
    return this;
  }
  /**
   * Node's HTTP server ends a `Connection: close` answer with this: nothing
   * more of the connection is parsed (what it pipelined is dropped), and the
   * socket is closed once the answer is written, as net.Socket.destroySoon
   * does, without waiting for the client's end (a paused socket would not
   * see it, and would hold its slot).
   */
  destroySoon(): void {
    this.#closing = true;
    this.#held = EMPTY;
    this.end();
    if (this.writableFinished) this.#closeInner();
    else this.once('finish', () => this.#closeInner());
  }
  #closeInner(): void {
    const s = this.inner as net.Socket & { destroySoon?: () => void };
    if (s.destroySoon) s.destroySoon();
    else s.end(() => s.destroy());
  }

  /** The answer to the forwarded request is finished: hand over the next one. */
  answered(): void {
    this.#inFlight = false;
    this.#pump();
  }

  #onData(b: Buffer): void {
    if (this.#closing) return;
    this.#held = this.#held.length ? Buffer.concat([this.#held, b]) : b;
    // Pipelining past the limit: close before any of it reaches the parser.
    let heads = this.#inFlight ? 1 : 0;
    for (let i = headEnd(this.#held); i >= 0 && heads <= this.#lim.maxPipelined; i = headEnd(this.#held, i))
      heads++;
    if (heads > this.#lim.maxPipelined) {
      this.onGreedy?.();
      this.destroy();
      return;
    }
    this.#pump();
  }

  #pump(): void {
    if (this.destroyed || this.#closing) return;
    if (!this.#inFlight && this.#held.length) {
      // Empty lines between requests are allowed (RFC 9112 2.2); drop them here so that they are no head.
      let s = 0;
      while (s < this.#held.length && (this.#held[s] === 13 || this.#held[s] === 10)) s++;
      if (s) this.#held = this.#held.subarray(s);
      const i = headEnd(this.#held);
      if (i >= 0) {
        this.#inFlight = true;
        const head = this.#held.subarray(0, i);
        this.#held = this.#held.subarray(i);
        this.push(head);
      } else if (this.#held.length > this.#lim.maxHeaderBytes || (this.#ended && this.#held.length)) {
        // Too long to be a head (the parser answers 431), or cut off by the end: the parser has the last word.
        this.#inFlight = true;
        const rest = this.#held;
        this.#held = EMPTY;
        this.push(rest);
      }
    }
    if (this.destroyed) return;
    if (!this.#inFlight && this.#held.length) {
      this.#headTimer ??= setTimeout(() => {
        this.onGreedy?.();
        this.destroy();
      }, this.#lim.headersTimeoutMs);
    } else if (this.#headTimer) {
      clearTimeout(this.#headTimer);
      this.#headTimer = null;
    }
    // Read on only while what is held may still be short of a whole head.
    if (this.#held.length > this.#lim.maxHeaderBytes || (this.#inFlight && this.#held.length))
      this.inner.pause();
    else if (!this.#ended) this.inner.resume();
    if (this.#ended && !this.#inFlight && !this.#held.length && !this.#eofPushed) {
      this.#eofPushed = true;
      this.push(null);
    }
  }

  override _read(): void {}

  override write(chunk: unknown, enc?: unknown, cb?: unknown): boolean {
    const before = this.writableLength;
    const ok = super.write(chunk as Buffer, enc as BufferEncoding, cb as () => void);
    // One big answer is its body, held anyway; more piled on a connection that does not read is not.
    if (before > 0 && this.writableLength > this.#lim.maxQueuedWriteBytes) {
      this.onGreedy?.();
      this.destroy();
    }
    return ok;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.inner.destroyed) {
      cb(new Error('connection closed'));
      return;
    }
    if (this.inner.write(chunk)) {
      cb();
      return;
    }
    this.#stall ??= setTimeout(() => {
      this.onGreedy?.();
      this.destroy();
    }, this.#lim.writeStallMs);
    this.inner.once('drain', () => {
      if (this.#stall) clearTimeout(this.#stall);
      this.#stall = null;
      cb();
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.#stall) clearTimeout(this.#stall);
    this.#stall = null;
    if (this.#headTimer) clearTimeout(this.#headTimer);
    this.#headTimer = null;
    this.#held = EMPTY;
    this.inner.destroy();
    cb(err);
  }
}

/** At most `n` at once; the rest wait in order. */
class Semaphore {
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.n) await new Promise<void>((r) => this.#waiting.push(r));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}

/**
 * Writes a body in slices, minding backpressure, and ends the answer; a
 * client that stops reading is closed by the Gate after writeStallMs. For
 * routes with big answers too.
 */
export async function sendBody(res: http.ServerResponse, body: Buffer | readonly Buffer[]): Promise<void> {
  for (const part of Buffer.isBuffer(body) ? [body] : body)
    for (let off = 0; off < part.length && !res.destroyed; off += SLICE) {
      if (!res.write(part.subarray(off, off + SLICE)))
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
    }
  if (!res.destroyed) res.end();
}

function tiny(
  res: http.ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

/** One admitted connection, as the accounting sees it. */
interface Conn {
  raw: net.Socket;
  addr: string;
  firstTimer: NodeJS.Timeout | null;
  gate: Gate | null;
  gone: boolean;
  /** When it was admitted (ms). */
  since: number;
  /** It had a request answered: idle now means keep-alive idle. */
  served: boolean;
  /** Its request waits for a bcrypt check: may be closed to make room (the check is dropped if not begun). */
  auth: AbortController | null;
}

/** A connection accepted past the total, not read yet. */
interface Waiter {
  addr: string;
  timer: NodeJS.Timeout;
}

/** Starts the --listen server. Throws E_BAD_INPUT (address, web config), or the listen error. */
export async function serveHttp(o: HttpOptions): Promise<HttpServer> {
  const limits = o.limits ?? HTTP_LIMITS;
  const log: Logger = o.log ?? (() => {});
  const router = o.router ?? defaultRouter;
  const listen = parseListen(o.listen);
  const web = o.web;
  const auth = web && web.users.size > 0 ? new BasicAuth(web.users) : null;
  const refusals = new RateLimitedLog(log, 10);
  /** Failures of request handling: a bug any client can trigger at every request must not flood the log. */
  const failures = new RateLimitedLog(log, 10, 'error');
  const scrapes = new Semaphore(limits.maxScrapes);
  const stats: HttpStats = {
    connections: 0,
    waiting: 0,
    accepted: 0,
    refused: 0,
    evicted: 0,
    firstRequestTimeouts: 0,
    slowOrGreedy: 0,
    requests: 0,
    unauthorized: 0,
    authBusy: 0,
    tlsErrors: 0,
    answerTimeouts: 0,
  };
  const gateLimits: GateLimits = {
    headersTimeoutMs: limits.headersTimeoutMs,
    maxHeaderBytes: limits.maxHeaderBytes,
    maxPipelined: limits.maxPipelined,
    writeStallMs: limits.writeStallMs,
    maxQueuedWriteBytes: limits.maxQueuedWriteBytes,
  };

  /** Admitted connections, oldest first (a Map keeps insertion order), and per remote address. */
  const open = new Map<net.Socket, Conn>();
  const byAddr = new Map<string, Set<Conn>>();
  /** Accepted past the total when none could make room: not read, oldest first. */
  const waiting = new Map<net.Socket, Waiter>();
  /** Of `waiting`, per remote address. */
  const waitingByAddr = new Map<string, number>();
  const unwait = (sock: net.Socket): Waiter | undefined => {
    const w = waiting.get(sock);
    if (!w) return undefined;
    clearTimeout(w.timer);
    waiting.delete(sock);
    const n = (waitingByAddr.get(w.addr) ?? 1) - 1;
    if (n > 0) waitingByAddr.set(w.addr, n);
    else waitingByAddr.delete(w.addr);
    stats.waiting = waiting.size;
    return w;
  };
  const byGate = new WeakMap<Duplex, Conn>();

  const forget = (c: Conn) => {
    if (c.gone) return;
    c.gone = true;
    if (c.firstTimer) clearTimeout(c.firstTimer);
    c.firstTimer = null;
    open.delete(c.raw);
    const mine = byAddr.get(c.addr);
    mine?.delete(c);
    if (mine && mine.size === 0) byAddr.delete(c.addr);
    stats.connections = open.size;
    pumpWaiting();
  };

  const evict = (c: Conn) => {
    stats.evicted++;
    c.auth?.abort();
    c.raw.destroy();
    c.gate?.destroy();
    forget(c);
  };
  /**
   * Closes one connection to make room, from the address holding most
   * first; none that came less than GRACE_MS ago (a burst of newcomers must
   * not close each other before they are read). In this order: the oldest
   * idle one (no request in progress); one whose request waits for a bcrypt
   * check, of an address holding more than `forAddr` (a client without the
   * password must not hold slots with checks queued behind each other); the
   * newest busy one of an address holding more than its share and more than
   * `forAddr` + 1 (a flood from one address cannot hold every slot with slow
   * requests; the connections of one address do not close each other).
   * False if there is none.
   */
  const makeRoom = (forAddr: string): boolean => {
    const now = Date.now();
    const addrs = [...byAddr.values()].sort((x, y) => y.size - x.size);
    for (const conns of addrs)
      for (const c of conns)
        if (!c.gate?.busy && (c.served || now - c.since >= GRACE_MS)) {
          evict(c);
          return true;
        }
    const mine = byAddr.get(forAddr)?.size ?? 0;
    for (const conns of addrs) {
      if (conns.size <= mine) break;
      for (const c of conns)
        if (c.auth && now - c.since >= GRACE_MS) {
          evict(c);
          return true;
        }
    }
    for (const conns of addrs) {
      if (conns.size <= limits.maxConnectionsPerAddress || conns.size <= mine + 1) break;
      const past = [...conns].slice(limits.maxConnectionsPerAddress).reverse();
      for (const c of past)
        if (now - c.since >= GRACE_MS) {
          evict(c);
          return true;
        }
    }
    return false;
  };

  /**
   * The waiting connection to admit next: the oldest of the address with
   * fewest connections admitted (then fewest waiting), so that a flood from
   * one address does not queue ahead of everyone else.
   */
  const nextWaiting = (): net.Socket | undefined => {
    let best: net.Socket | undefined;
    let bestKey = [Infinity, Infinity];
    const seen = new Set<string>();
    for (const [sock, w] of waiting) {
      if (seen.has(w.addr)) continue; // the oldest of each address only
      seen.add(w.addr);
      const key = [byAddr.get(w.addr)?.size ?? 0, waitingByAddr.get(w.addr) ?? 0];
      if (key[0]! < bestKey[0]! || (key[0] === bestKey[0] && key[1]! < bestKey[1]!)) {
        best = sock;
        bestKey = key;
      }
    }
    return best;
  };

  /**
   * The waiting queue is full: closes the oldest waiting connection of the
   * address holding most (admitted + waiting, the newcomer counted); false
   * when that is the newcomer's address and none of it waits (the newcomer
   * is closed). Across addresses: a flood from one address, however steady,
   * cannot push another's connection out. Within one address (a scraper may
   * share 127.0.0.1 with the flood) the oldest goes: after a burst of
   * connections that never send, a scraper that comes next still gets in.
   */
  const dropWaiting = (raw: net.Socket, addr: string): boolean => {
    const held = (a: string) =>
      (byAddr.get(a)?.size ?? 0) + (waitingByAddr.get(a) ?? 0) + (a === addr ? 1 : 0);
    let worst = addr;
    for (const a of waitingByAddr.keys()) if (held(a) > held(worst)) worst = a;
    stats.refused++;
    let oldest: net.Socket | undefined;
    for (const [sock, w] of waiting)
      if (w.addr === worst) {
        oldest = sock;
        break;
      }
    if (!oldest) {
      raw.destroy();
      return false;
    }
    unwait(oldest);
    oldest.destroy();
    return true;
  };

  let pumpTimer: NodeJS.Timeout | null = null;
  /** Admits waiting connections (nextWaiting's order) while there are slots or room can be made. */
  function pumpWaiting(): void {
    while (waiting.size) {
      if (open.size >= limits.maxConnections && !makeRoom(waiting.get(nextWaiting()!)!.addr)) break;
      // makeRoom's forget() may have admitted some already.
      if (!waiting.size || open.size >= limits.maxConnections) continue;
      const sock = nextWaiting()!;
      unwait(sock);
      if (!sock.destroyed) admit(sock);
    }
    // Connections become idle enough to make room with time: look again soon.
    if (waiting.size && !pumpTimer)
      pumpTimer = setTimeout(() => {
        pumpTimer = null;
        pumpWaiting();
      }, 50);
  }

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    // Node refuses a headers timeout longer than the request timeout.
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often the timeouts above are checked (Node's default is 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  });
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleMs, (s) => s.destroy());
  server.on('clientError', (e: NodeJS.ErrnoException, s: Duplex) => {
    // Node's own answers to malformed requests (400, 408, 431), then closed.
    const code = e.code === 'HPE_HEADER_OVERFLOW' ? 431 : e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    if (e.code !== 'ECONNRESET' && s.writable && !(s as Duplex & { _httpMessage?: unknown })._httpMessage)
      s.end(
        `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        () => s.destroy(),
      );
    else s.destroy();
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const gate = req.socket as unknown as Gate;
    const conn = byGate.get(gate);
    if (conn) conn.served = true;
    if (conn?.firstTimer) {
      clearTimeout(conn.firstTimer);
      conn.firstTimer = null;
    }
    stats.requests++;
    gate.pending++;
    // A total deadline per answer: authentication, rendering and sending included.
    const deadline = setTimeout(() => {
      // An event stream (the dashboard's /api/v1/events) is answered for as long as it is open; its
      // route bounds it (clients, queued bytes). It is past authentication once its head is sent.
      // (writeHead's headers are not kept for getHeader: the head as sent says it.)
      const head = (res as http.ServerResponse & { _header?: string | null })._header ?? '';
      if (res.headersSent && /^content-type:[ \t]*text\/event-stream/im.test(head)) return;
      stats.answerTimeouts++;
      refusals.write('HTTP answer not finished in time; connection closed', {
        addr: req.socket.remoteAddress,
        url: req.url?.slice(0, 200),
        ms: limits.answerTimeoutMs,
      });
      if (conn) conn.auth?.abort();
      res.destroy();
      gate.destroy();
    }, limits.answerTimeoutMs);
    res.once('close', () => {
      clearTimeout(deadline);
      gate.pending--;
      if (gate.pending === 0) gate.answered();
    });
    handle(req, res, conn).catch((e: unknown) => {
      failures.write('HTTP request failed', { url: req.url?.slice(0, 200), error: e });
      if (!res.headersSent) tiny(res, 500, 'internal error', { connection: 'close' });
      else res.destroy();
    });
  });

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    conn: Conn | undefined,
  ): Promise<void> {
    for (const [k, v] of Object.entries(web?.headers ?? {})) res.setHeader(k, v);
    if (auth) {
      const addr = req.socket.remoteAddress ?? '?';
      const ac = new AbortController();
      if (conn) conn.auth = ac;
      let r: AuthResult;
      try {
        r = await auth.check(req.headers.authorization, { key: addr, signal: ac.signal });
      } finally {
        if (conn) conn.auth = null;
      }
      if (res.destroyed) return;
      if (r !== 'ok') {
        if (r === 'busy') {
          // Kept open: answered without bcrypt, and a closed one would come back with a TLS handshake.
          stats.authBusy++;
          tiny(res, 503, 'busy, try again', { 'retry-after': '1' });
          return;
        }
        stats.unauthorized++;
        if (r !== 'missing') refusals.write('HTTP request refused: wrong credentials', { addr, reason: r });
        // A failed password closes the connection: no more guesses pipelined on it.
        tiny(res, 401, 'unauthorized', {
          'www-authenticate': 'Basic realm="cgview", charset="UTF-8"',
          ...(r === 'wrong' ? { connection: 'close' } : {}),
        });
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      tiny(res, 405, 'only GET and HEAD', { allow: 'GET, HEAD', connection: 'close' });
      return;
    }
    // No request here has a body: one is refused rather than read.
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (te !== undefined || (cl !== undefined && cl !== '0')) {
      tiny(res, 400, 'no request body is taken', { connection: 'close' });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://cgview.invalid');
    } catch {
      tiny(res, 400, 'bad request target');
      return;
    }
    if (url.pathname === '/metrics') {
      const r = await scrapes.run(() =>
        o.render({
          ...(req.headers.accept !== undefined ? { accept: req.headers.accept } : {}),
          ...(req.headers['accept-encoding'] !== undefined
            ? { acceptEncoding: String(req.headers['accept-encoding']) }
            : {}),
        }),
      );
      const length = r.parts ? r.parts.reduce((n, p) => n + p.length, 0) : r.body.length;
      res.writeHead(r.status, { ...r.headers, 'content-length': String(length) });
      if (req.method === 'HEAD') res.end();
      else await sendBody(res, r.parts ?? r.body);
      return;
    }
    for (const route of router.match(url.pathname)) if (await route(req, res, url)) return;
    tiny(res, 404, 'not found; try /metrics');
  }

  // TLS is terminated here rather than by an https.Server, so that only admitted connections handshake.
  let tlsServer: tls.Server | null = null;
  let tlsCfg: TlsConfig | null = null;
  let tlsMtimes = '';
  let tlsChecked = 0;
  const tlsMtimeKey = (t: TlsConfig) =>
    `${mtimeOf(t.certFile)}/${mtimeOf(t.keyFile)}/${t.clientCaFile ? mtimeOf(t.clientCaFile) : ''}`;
  if (web?.tls) {
    tlsCfg = web.tls;
    tlsMtimes = tlsMtimeKey(tlsCfg);
    tlsServer = new tls.Server({ ...tlsContextOptions(tlsCfg), handshakeTimeout: limits.firstRequestMs });
    tlsServer.on('tlsClientError', (e: Error, s: tls.TLSSocket) => {
      stats.tlsErrors++;
      refusals.write('TLS handshake failed', { addr: s.remoteAddress, error: e.message });
      s.destroy();
    });
    tlsServer.on('secureConnection', (s: tls.TLSSocket) => {
      const raw = (s as tls.TLSSocket & { _parent?: net.Socket })._parent;
      const c = raw ? open.get(raw) : undefined;
      if (!c || c.gone) {
        s.destroy();
        return;
      }
      const mode = tlsCfg!.clientAuth;
      const cert = s.getPeerCertificate();
      const given = cert && Object.keys(cert).length > 0;
      if (
        (mode === 'RequireAnyClientCert' && !given) ||
        (mode === 'VerifyClientCertIfGiven' && given && !s.authorized)
      ) {
        stats.tlsErrors++;
        refusals.write('TLS client certificate refused', { addr: s.remoteAddress, mode });
        s.destroy();
        return;
      }
      s.once('close', () => forget(c));
      attach(c, s);
    });
  }
  /** Certificates re-read when their files change (checked at most every 5 s, at a connection). */
  const maybeReloadTls = () => {
    if (!tlsServer || !tlsCfg || Date.now() - tlsChecked < 5000) return;
    tlsChecked = Date.now();
    const now = tlsMtimeKey(tlsCfg);
    if (now === tlsMtimes) return;
    try {
      tlsServer.setSecureContext(tlsContextOptions(tlsCfg));
      tlsMtimes = now;
      log('info', 'TLS certificate re-read', { cert: tlsCfg.certFile });
    } catch (e) {
      log('warn', 'TLS certificate changed but cannot be used; keeping the old one', { error: e });
      tlsMtimes = now;
    }
  };

  const attach = (c: Conn, inner: net.Socket) => {
    const gate = new Gate(inner, gateLimits);
    c.gate = gate;
    byGate.set(gate, c);
    gate.onGreedy = () => {
      stats.slowOrGreedy++;
    };
    gate.once('close', () => forget(c));
    server.emit('connection', gate);
  };

  const admit = (raw: net.Socket) => {
    const addr = raw.remoteAddress ?? '?';
    const mine = byAddr.get(addr) ?? new Set<Conn>();
    // Past its address's share a connection is not refused (the scraper may
    // share the address, 127.0.0.1, with the user holding the share): it
    // must send its request at once instead.
    const wait =
      mine.size >= limits.maxConnectionsPerAddress
        ? Math.min(limits.firstRequestMs, LATE_FIRST_REQUEST_MS)
        : limits.firstRequestMs;
    const c: Conn = {
      raw,
      addr,
      firstTimer: null,
      gate: null,
      gone: false,
      since: Date.now(),
      served: false,
      auth: null,
    };
    // Not unref'd: the server keeps the process alive anyway; cleared on the first request or close.
    c.firstTimer = setTimeout(() => {
      c.firstTimer = null;
      stats.firstRequestTimeouts++;
      raw.destroy();
      c.gate?.destroy();
    }, wait);
    open.set(raw, c);
    mine.add(c);
    byAddr.set(addr, mine);
    stats.connections = open.size;
    raw.once('close', () => forget(c));
    if (tlsServer) {
      maybeReloadTls();
      tlsServer.emit('connection', raw);
    } else attach(c, raw);
  };

  // Connections are counted here rather than by Node's maxConnections
  // (which resets every newcomer past it): idle connections, of one local
  // user say, would otherwise lock the scraper out.
  const front = net.createServer({ pauseOnConnect: true }, (raw) => {
    stats.accepted++;
    raw.on('error', () => {});
    if (open.size < limits.maxConnections && !waiting.size) {
      admit(raw);
      return;
    }
    // Not read while it waits: its bytes stay in the kernel. A full queue
    // drops the oldest waiting connection of the address holding most.
    const addr = raw.remoteAddress ?? '?';
    if (waiting.size >= limits.maxWaiting && !dropWaiting(raw, addr)) return;
    const timer = setTimeout(() => {
      unwait(raw);
      stats.refused++;
      raw.destroy();
    }, limits.headersTimeoutMs);
    waiting.set(raw, { addr, timer });
    waitingByAddr.set(addr, (waitingByAddr.get(addr) ?? 0) + 1);
    stats.waiting = waiting.size;
    raw.once('close', () => unwait(raw));
    pumpWaiting();
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ port: listen.port, host: listen.host, backlog: limits.backlog }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  front.on('error', (e) => log('warn', 'HTTP accept failed', { error: e }));
  const address = front.address() as net.AddressInfo;
  return {
    url: baseUrl(address, tlsServer !== null),
    address,
    stats,
    loopbackOnly: listen.defaulted,
    close() {
      front.close();
      if (pumpTimer) clearTimeout(pumpTimer);
      for (const [sock, w] of waiting) {
        clearTimeout(w.timer);
        sock.destroy();
      }
      waiting.clear();
      waitingByAddr.clear();
      auth?.close();
      for (const c of [...open.values()]) {
        c.raw.destroy();
        c.gate?.destroy();
        forget(c);
      }
      server.close();
      tlsServer?.close();
    },
  };
}

function mtimeOf(file: string): string {
  try {
    return String(fs.statSync(file).mtimeMs);
  } catch {
    return 'missing';
  }
}

/** The name server.ts re-exports. */
export const serveMetrics = serveHttp;
