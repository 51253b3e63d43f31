/**
 * The control socket: newline-delimited JSON requests and responses on a
 * UNIX socket. Mode 0600 by default: only root talks to the daemon (job
 * owners read their view files directly, with no daemon involved). With
 * --socket-mode opened wider, each request is allowed by the peer's
 * credentials (SO_PEERCRED): others may only read. Every buffer a client can
 * fill is bounded (SocketLimits), and so is the --listen HTTP server.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import { peerCred, peerGroups } from '../kernel/index.js';
import { normalize } from '../tree/paths.js';
import type { ExpectedDir } from '../tree/treefs.js';
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

// --- limits ------------------------------------------------------------------

/** What one client of the control socket may make the daemon hold. */
export interface SocketLimits {
  /** Longest request line; a longer one is answered E_BAD_INPUT and the client closed. */
  maxRequestBytes: number;
  /** Answers buffered for a client past which the daemon stops reading its requests. */
  pauseOutputBytes: number;
  /** Answers buffered past which the client is dropped (one huge answer on top of a full buffer). */
  maxOutputBytes: number;
  /** A client with no traffic either way for this long is closed. */
  idleMs: number;
  /** Clients at once; more are answered E_BUSY and closed. */
  maxClients: number;
  /** Of maxClients, slots only root (uid 0) may take (at most half of them): others filling their share cannot lock root out. */
  rootClients: number;
  /** Clients at once of one uid other than root. */
  maxClientsPerUid: number;
  /**
   * Requests and answers buffered over all clients past which the daemon
   * stops reading every unprivileged client (root's go on); it reads them
   * again below half of it.
   */
  pauseTotalBytes: number;
  /** Buffered over all clients past which the unprivileged clients holding most are dropped. */
  maxTotalBytes: number;
  /** listen(2) backlog (the kernel caps it at net.core.somaxconn). */
  backlog: number;
  /** Bad requests of one client logged in full; the rest are counted (status) and summed up at close. */
  logPerClient: number;
}

/** Limits of the --listen HTTP server. */
export interface HttpLimits {
  /** Time to receive a request's headers (slow clients are answered 408 and closed). */
  headersTimeoutMs: number;
  /** Time to receive a whole request. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic for this long is closed. */
  idleMs: number;
  /** Bytes of request headers (431 beyond). */
  maxHeaderBytes: number;
  /**
   * Connections at once. A newcomer past it makes room by closing the oldest
   * connection with no request in progress of the address holding most
   * connections; if there is none it is closed at once.
   */
  maxConnections: number;
  /**
   * Connections from one remote address that get firstRequestMs to send
   * their request; more must send it within 250 ms.
   */
  maxConnectionsPerAddress: number;
  /**
   * A connection that has not sent a whole request header this long after
   * it was accepted is closed: connections that never send a byte would
   * otherwise hold their slot for idleMs.
   */
  firstRequestMs: number;
  /**
   * Requests of one connection not yet answered (pipelined); past this the
   * connection is closed. A client that pipelines and never reads would
   * otherwise make Node queue a request and a response for each line it sent.
   */
  maxPipelined: number;
  backlog: number;
}

export const SOCKET_LIMITS: SocketLimits = {
  maxRequestBytes: 64 << 10,
  pauseOutputBytes: 1 << 20,
  maxOutputBytes: 64 << 20,
  idleMs: 60_000,
  maxClients: 1000,
  rootClients: 16,
  maxClientsPerUid: 32,
  pauseTotalBytes: 16 << 20,
  maxTotalBytes: 96 << 20,
  backlog: 4096,
  logPerClient: 3,
};

export const HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleMs: 60_000,
  maxHeaderBytes: 16 << 10,
  maxConnections: 16,
  maxConnectionsPerAddress: 8,
  firstRequestMs: 5_000,
  maxPipelined: 16,
  backlog: 4096,
};

/** Environment variables that override a limit (operations.md lists them). */
const SOCKET_ENV: Record<keyof SocketLimits, string> = {
  maxRequestBytes: 'CGVIEW_MAX_REQUEST_BYTES',
  pauseOutputBytes: 'CGVIEW_PAUSE_OUTPUT_BYTES',
  maxOutputBytes: 'CGVIEW_MAX_OUTPUT_BYTES',
  idleMs: 'CGVIEW_CLIENT_IDLE_MS',
  maxClients: 'CGVIEW_MAX_CLIENTS',
  rootClients: 'CGVIEW_ROOT_CLIENTS',
  maxClientsPerUid: 'CGVIEW_MAX_CLIENTS_PER_UID',
  pauseTotalBytes: 'CGVIEW_PAUSE_TOTAL_BYTES',
  maxTotalBytes: 'CGVIEW_MAX_TOTAL_BYTES',
  backlog: 'CGVIEW_BACKLOG',
  logPerClient: 'CGVIEW_LOG_PER_CLIENT',
};
const HTTP_ENV: Record<keyof HttpLimits, string> = {
  headersTimeoutMs: 'CGVIEW_HTTP_HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'CGVIEW_HTTP_REQUEST_TIMEOUT_MS',
  keepAliveTimeoutMs: 'CGVIEW_HTTP_KEEPALIVE_MS',
  idleMs: 'CGVIEW_HTTP_IDLE_MS',
  maxHeaderBytes: 'CGVIEW_HTTP_MAX_HEADER_BYTES',
  maxConnections: 'CGVIEW_HTTP_MAX_CONNECTIONS',
  maxConnectionsPerAddress: 'CGVIEW_HTTP_MAX_CONNECTIONS_PER_ADDRESS',
  firstRequestMs: 'CGVIEW_HTTP_FIRST_REQUEST_MS',
  maxPipelined: 'CGVIEW_HTTP_MAX_PIPELINED',
  backlog: 'CGVIEW_BACKLOG',
};

function fromEnv<T extends object>(defaults: T, names: Record<keyof T, string>, env: NodeJS.ProcessEnv): T {
  const out = { ...defaults };
  for (const k of Object.keys(names) as Array<keyof T>) {
    const raw = env[names[k]];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new CgviewError(
        'E_BAD_INPUT',
        `${names[k]} wants a positive integer, got ${JSON.stringify(raw)}`,
      );
    (out as Record<keyof T, number>)[k] = n;
  }
  return out;
}

/** The socket's limits, with overrides from the environment. Throws E_BAD_INPUT. */
export function socketLimits(env: NodeJS.ProcessEnv = process.env): SocketLimits {
  return fromEnv(SOCKET_LIMITS, SOCKET_ENV, env);
}

/** The HTTP server's limits, with overrides from the environment. Throws E_BAD_INPUT. */
export function httpLimits(env: NodeJS.ProcessEnv = process.env): HttpLimits {
  return fromEnv(HTTP_LIMITS, HTTP_ENV, env);
}

/** Counters of the control socket (in `status`). */
export interface ControlStats {
  /** Clients connected now. */
  clients: number;
  /** Malformed requests: not JSON, not a request, unknown op, fields of the wrong type, too long. */
  badRequests: number;
  /** Requests an unprivileged peer may not make. */
  deniedRequests: number;
  /** Requests that failed on a bug (E_INTERNAL). */
  internalErrors: number;
  /** Clients refused because maxClients (or, for others than root, their share or maxClientsPerUid) were connected. */
  refusedClients: number;
  /** Clients dropped for not reading their answers (alone, or when all clients together held maxTotalBytes). */
  droppedClients: number;
  /** Bytes of requests and answers the daemon holds for all clients now. */
  heldBytes: number;
  /** Times the daemon stopped reading unprivileged clients because all together held pauseTotalBytes. */
  totalPauses: number;
  /** Clients closed after idleMs without traffic. */
  idleClosed: number;
  /** Idle clients of the uid holding most connections closed to make room for another uid (the share of others full). */
  evictedClients: number;
  /** Log lines about bad requests left out (rate limit). */
  logSuppressed: number;
}

export function newControlStats(): ControlStats {
  return {
    clients: 0,
    badRequests: 0,
    deniedRequests: 0,
    internalErrors: 0,
    refusedClients: 0,
    droppedClients: 0,
    heldBytes: 0,
    totalPauses: 0,
    idleClosed: 0,
    evictedClients: 0,
    logSuppressed: 0,
  };
}

// --- requests ----------------------------------------------------------------

type FieldType = 'string' | 'boolean' | 'integer' | 'mode';
/** Every request and its fields: [type, required]. Anything else is refused. */
const OPS: Record<string, Record<string, [FieldType, boolean]>> = {
  ping: {},
  pin: {
    view: ['string', true],
    dir: ['string', true],
    cgroup: ['string', false],
    inherit: ['boolean', false],
    name: ['string', false],
    mode: ['mode', false],
    fileMode: ['integer', false],
  },
  unpin: { path: ['string', true] },
  ls: { dir: ['string', false] },
  resolve: { cgroup: ['string', true] },
  status: {},
  rescan: {},
};

/**
 * What an unprivileged peer may ask: nothing that loads or removes. What
 * they answer it is cut to what it could read anyway: `ls DIR` only of a
 * directory it may list itself, `status` without paths, errors and objects.
 */
export const UNPRIVILEGED_OPS: ReadonlySet<string> = new Set(['ping', 'ls', 'status', 'resolve']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOk(t: FieldType, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'integer':
      return Number.isSafeInteger(v);
    case 'mode':
      return v === 'auto' || v === 'manual';
  }
}

const TYPE_WORDS: Record<FieldType, string> = {
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  mode: '"auto" or "manual"',
};

/** Checks the shape of a decoded request line. Throws E_BAD_INPUT saying what is wrong. */
export function checkRequest(v: unknown): Request {
  if (!isPlainObject(v) || typeof v['op'] !== 'string')
    throw new CgviewError('E_BAD_INPUT', 'a request is a JSON object {"op": NAME, "args": {...}}');
  const op = v['op'];
  const fields = Object.hasOwn(OPS, op) ? OPS[op] : undefined;
  if (!fields)
    throw new CgviewError('E_BAD_INPUT', `unknown request ${JSON.stringify(op.slice(0, 64))}`, {
      hint: `requests: ${Object.keys(OPS).join(', ')}`,
    });
  for (const k of Object.keys(v))
    if (k !== 'op' && k !== 'args')
      throw new CgviewError('E_BAD_INPUT', `${op}: unknown key ${JSON.stringify(k.slice(0, 64))}`);
  const args = v['args'] ?? {};
  if (!isPlainObject(args)) throw new CgviewError('E_BAD_INPUT', `${op}: args must be an object`);
  for (const [k, x] of Object.entries(args)) {
    const f = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!f) throw new CgviewError('E_BAD_INPUT', `${op}: unknown field ${JSON.stringify(k.slice(0, 64))}`);
    if (!typeOk(f[0], x)) throw new CgviewError('E_BAD_INPUT', `${op}: ${k} must be ${TYPE_WORDS[f[0]]}`);
  }
  for (const [k, [, required]] of Object.entries(fields))
    if (required && !(k in args)) throw new CgviewError('E_BAD_INPUT', `${op}: ${k} is missing`);
  return { op, args };
}

/** Who asks. */
export interface Peer {
  /** uid 0: may make every request; others only UNPRIVILEGED_OPS. */
  privileged: boolean;
  uid: number | null;
  pid: number | null;
  /** Primary and supplementary groups (SO_PEERCRED, SO_PEERGROUPS): what the peer could read by its groups. */
  gids: number[];
}

export const ROOT_PEER: Peer = { privileged: true, uid: 0, pid: null, gids: [0] };

/** Whether `st`'s mode bits give the peer every bit of `want` (4 read, 2 write, 1 search), as the kernel would. */
function modeAllows(st: fs.Stats, peer: Peer, want: number): boolean {
  const bits = peer.uid === st.uid ? st.mode >> 6 : peer.gids.includes(st.gid) ? st.mode >> 3 : st.mode;
  return (bits & want) === want;
}

/**
 * Throws E_PERMISSION unless an unprivileged peer could list `dir` itself:
 * read and search on it, search on every directory above it, and no symlink
 * on the way. The directory is opened (O_NOFOLLOW) and judged by its
 * descriptor; the path that descriptor has is checked to be the one asked,
 * before and after its ancestors are looked at. Returns the normalized path
 * and the inode judged: the listing (Manager.ls) opens the directory again
 * from the tree's root fd and refuses another inode, so a directory swapped
 * in after the check is not listed.
 */
function checkPeerMayList(m: Manager, dir: string, peer: Peer): { dir: string; expect: ExpectedDir } {
  const denied = () =>
    new CgviewError('E_PERMISSION', `uid ${peer.uid ?? 'unknown'} may not list ${JSON.stringify(dir)}`, {
      hint: 'other users than root may ls the directories they can read themselves',
    });
  const d = normalize(dir);
  if (!d || peer.uid === null) throw denied();
  // Only directories of the trees are opened for others (never, say, a path of a slow mount).
  const roots = (m.ls() as { roots: Array<{ dir: string }> }).roots.map((r) => r.dir);
  if (!roots.some((r) => d === r || d.startsWith(r === '/' ? r : `${r}/`)))
    throw new CgviewError('E_NOT_TAGGED', `${JSON.stringify(dir)} is not in a tagged view tree`, {
      path: dir,
    });
  let fd: number;
  try {
    fd = fs.openSync(
      Buffer.from(d, 'latin1'),
      fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW,
    );
  } catch {
    throw denied();
  }
  try {
    const where = () => fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).toString('latin1');
    if (where() !== d || !modeAllows(fs.fstatSync(fd), peer, 5)) throw denied();
    for (let a = path.posix.dirname(d); ; a = path.posix.dirname(a)) {
      const st = fs.lstatSync(Buffer.from(a, 'latin1'));
      if (!st.isDirectory() || !modeAllows(st, peer, 1)) throw denied();
      if (a === '/') break;
    }
    if (where() !== d) throw denied();
    const st = fs.fstatSync(fd, { bigint: true });
    return { dir: d, expect: { dev: st.dev, ino: st.ino } };
  } catch (e) {
    if (e instanceof CgviewError) throw e;
    throw denied();
  } finally {
    fs.closeSync(fd);
  }
}

/** `status` for a peer other than root: counts and the public index of trees; no paths of files, errors or objects. */
function peerStatus(s: Record<string, unknown>): Record<string, unknown> {
  const { stateFile: _f, collectors, roots, ...rest } = s;
  return {
    ...rest,
    roots: (
      roots as Array<Record<string, unknown> & { inherit: Array<{ name: string }>; conflicts: unknown[] }>
    ).map((r) => ({
      dir: r['dir'],
      cgroup: r['cgroup'],
      hierarchy: r['hierarchy'],
      mode: r['mode'],
      inherit: r.inherit.map((p) => ({ name: p.name })),
      dirs: r['dirs'],
      pins: r['pins'],
      conflicts: r.conflicts.length,
      failing: r['error'] !== null && r['error'] !== undefined,
    })),
    collectors: Object.fromEntries(
      Object.entries((collectors ?? {}) as Record<string, Record<string, unknown>>).map(([k, v]) => [
        k,
        { start: v['start'], since: v['since'] },
      ]),
    ),
  };
}

/** Runs one checked request. `control` (the socket's counters) is added to `status`. */
export function handle(m: Manager, req: Request, peer: Peer = ROOT_PEER, control?: ControlStats): unknown {
  const a = req.args ?? {};
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  if (!peer.privileged && !UNPRIVILEGED_OPS.has(req.op)) {
    if (control) control.deniedRequests++;
    throw new CgviewError('E_PERMISSION', `${req.op} needs root (the peer is uid ${peer.uid ?? 'unknown'})`, {
      hint: `run it as root; other users may ${[...UNPRIVILEGED_OPS].join(', ')}`,
    });
  }
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
    case 'ls': {
      const dir = str('dir');
      if (dir === undefined || peer.privileged) return m.ls(dir);
      const checked = checkPeerMayList(m, dir, peer);
      return m.ls(checked.dir, checked.expect);
    }
    case 'resolve': {
      const p = str('cgroup');
      if (!p) throw new CgviewError('E_BAD_INPUT', 'resolve needs a cgroup directory');
      return m.resolve(p);
    }
    case 'status': {
      const s = peer.privileged ? m.status() : peerStatus(m.status());
      return control ? { ...s, badRequests: control.badRequests, control: { ...control } } : s;
    }
    case 'rescan':
      m.rescanAll('requested');
      return { ok: true };
    default:
      throw new CgviewError('E_BAD_INPUT', `unknown request ${JSON.stringify(req.op)}`);
  }
}

/** Decodes, checks and runs one request line; never throws. */
export function answer(
  m: Manager,
  line: string,
  peer: Peer,
  control: ControlStats,
): { res: Response; bad?: CgviewError; internal?: Error } {
  let req: Request;
  try {
    req = checkRequest(JSON.parse(line));
  } catch (e) {
    const bad =
      e instanceof CgviewError
        ? e
        : new CgviewError('E_BAD_INPUT', 'a request line is not JSON', { cause: e });
    control.badRequests++;
    return { res: errorResponse(bad), bad };
  }
  try {
    return { res: { ok: true, result: handle(m, req, peer, control) } };
  } catch (e) {
    if (e instanceof CgviewError) return { res: errorResponse(e) };
    control.internalErrors++;
    const internal = e instanceof Error ? e : new Error(String(e));
    return {
      res: { ok: false, error: { code: 'E_INTERNAL', message: `${req.op}: ${internal.message}` } },
      internal,
    };
  }
}

function errorResponse(e: CgviewError): Response {
  return { ok: false, error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
}

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

/** The descriptor under a net.Socket (libuv keeps it on the handle); -1 when there is none. */
function socketFd(sock: net.Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** Who is at the other end; a peer whose credentials cannot be read is treated as unprivileged. */
function peerOf(sock: net.Socket): Peer {
  try {
    const fd = socketFd(sock);
    const c = peerCred(fd);
    let groups: number[] = [];
    try {
      groups = peerGroups(fd);
    } catch {
      // Known by its primary group only: it may be shown less than it could read, never more.
    }
    return { privileged: c.uid === 0, uid: c.uid, pid: c.pid, gids: [c.gid, ...groups] };
  } catch {
    return { privileged: false, uid: null, pid: null, gids: [] };
  }
}

/**
 * Logs bad requests and internal errors: the first few of each client in
 * full, the rest counted; and at most `perMinute` such lines a minute over
 * all clients, so that a flood of garbage cannot flood the log.
 */
class ErrorLog {
  #windowStart = 0;
  #inWindow = 0;
  constructor(
    private readonly log: Logger,
    private readonly stats: ControlStats,
    private readonly perMinute = 60,
  ) {}

  /** Writes the line if the global budget allows; false when it was left out. */
  write(level: 'warn' | 'error', msg: string, fields: Record<string, unknown>): boolean {
    const now = Date.now();
    if (now - this.#windowStart >= 60_000) {
      if (this.#inWindow > this.perMinute)
        this.log('warn', 'bad requests not logged (rate limit)', { count: this.#inWindow - this.perMinute });
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (++this.#inWindow > this.perMinute) {
      this.stats.logSuppressed++;
      return false;
    }
    this.log(level, msg, fields);
    return true;
  }
}

/** One connection of the control socket, as the budget over all clients sees it. */
interface Conn {
  sock: net.Socket;
  peer: Peer;
  /** Requests read and not yet answered (one char per byte). */
  buf: string;
  /** Bytes of answers counted for it in the total now. */
  heldOut: number;
  /** Bytes of requests counted for it in the total now. */
  heldIn: number;
  /** Stopped until the total comes down (pauseTotalBytes). */
  waitingForBudget: boolean;
  /** Answers what it has buffered and reads again, unless something stops it. */
  pump: () => void;
}

/** The key of a peer in the per-uid count: a peer of unknown uid counts as one uid of its own. */
function uidKey(p: Peer): number {
  return p.uid ?? -1;
}

/** Serves the control socket. `mode` opens it to others; what they may ask is decided per request. */
export async function serveSocket(
  m: Manager,
  file: string,
  log: Logger,
  mode = 0o600,
  limits: SocketLimits = SOCKET_LIMITS,
  stats: ControlStats = newControlStats(),
): Promise<net.Server & { stats: ControlStats }> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  await ensureSocketFree(file);
  const conns = new Set<Conn>();
  /** Connections of each uid other than root. */
  const perUid = new Map<number, number>();
  let others = 0;
  let refusing = 0;
  const errors = new ErrorLog(log, stats);

  // --- the budget over all clients ---------------------------------------------
  // Each client is bounded alone (SocketLimits), but many of them together
  // could still hold gigabytes. Answers waiting for all clients are summed,
  // and past pauseTotalBytes no unprivileged client is read (nor are its
  // buffered requests answered) until that sum is below half of it again:
  // answers go as clients read them, or their clients are closed. Requests
  // read and not answered are few per client (a paused client is read at
  // most one chunk more), but they count too for maxTotalBytes, past which
  // the unprivileged clients holding most are dropped. The sums are kept as
  // clients read and write, and counted again exactly while any client
  // waits (a socket says when its output is empty, not when it shrinks).
  let outTotal = 0;
  let inTotal = 0;
  /** Of the sum, what clients other than root hold: what maxTotalBytes caps (root's own flood drops nobody). */
  let othersTotal = 0;
  const waiting = new Set<Conn>();
  let budgetTimer: NodeJS.Timeout | null = null;
  // Drops are logged apart from bad requests (their own budget), one line per shedding.
  const dropLog = new ErrorLog(log, stats, 10);
  const setHeld = (c: Conn) => {
    const out = c.sock.destroyed ? 0 : c.sock.writableLength;
    const inp = c.sock.destroyed ? 0 : c.buf.length;
    const delta = out - c.heldOut + inp - c.heldIn;
    outTotal += out - c.heldOut;
    inTotal += inp - c.heldIn;
    if (!c.peer.privileged) othersTotal += delta;
    c.heldOut = out;
    c.heldIn = inp;
    stats.heldBytes = outTotal + inTotal;
  };
  const recount = () => {
    outTotal = 0;
    inTotal = 0;
    othersTotal = 0;
    for (const c of conns) {
      c.heldOut = 0;
      c.heldIn = 0;
      setHeld(c);
    }
  };
  /**
   * Past maxTotalBytes held by clients other than root: drop those holding
   * most until they hold less. A client destroyed already (it stays in
   * `conns` until 'close') or holding nothing is never dropped.
   */
  const shed = () => {
    recount();
    if (othersTotal <= limits.maxTotalBytes) return;
    const before = othersTotal;
    const held = (c: Conn) => c.heldOut + c.heldIn;
    const big = [...conns]
      .filter((c) => !c.peer.privileged && !c.sock.destroyed && held(c) > 0)
      .sort((x, y) => held(y) - held(x));
    let dropped = 0;
    let most = 0;
    for (const c of big) {
      if (othersTotal <= limits.maxTotalBytes) break;
      stats.droppedClients++;
      dropped++;
      most = Math.max(most, held(c));
      c.sock.destroy();
      setHeld(c);
    }
    if (dropped > 0)
      dropLog.write('warn', 'clients other than root hold too much together; those holding most dropped', {
        dropped,
        mostBuffered: most,
        totalBefore: before,
        totalAfter: othersTotal,
      });
  };
  const sync = (c: Conn) => {
    setHeld(c);
    if (othersTotal > limits.maxTotalBytes) shed();
  };
  /**
   * Reads again the clients waiting for the budget: all of them once the
   * total is below half of pauseTotalBytes, and meanwhile those that read
   * every answer they had (they hold nothing: others keeping the total high
   * must not stop them for good).
   */
  const release = () => {
    recount();
    const all = outTotal <= limits.pauseTotalBytes / 2;
    for (const c of [...waiting]) {
      if (!all && !c.sock.destroyed && c.sock.writableLength > 0) continue;
      waiting.delete(c);
      c.waitingForBudget = false;
      c.pump();
    }
    if (waiting.size === 0 && budgetTimer) {
      clearInterval(budgetTimer);
      budgetTimer = null;
    }
  };
  const waitForBudget = (c: Conn) => {
    if (c.waitingForBudget) return;
    if (waiting.size === 0) stats.totalPauses++;
    c.waitingForBudget = true;
    c.sock.pause();
    waiting.add(c);
    budgetTimer ??= setInterval(release, 50);
  };

  /** Takes a client out of the counts, once (at its close, or earlier when it is evicted). */
  const forget = (c: Conn) => {
    if (!conns.delete(c)) return;
    waiting.delete(c);
    c.buf = '';
    setHeld(c);
    if (!c.peer.privileged) {
      others--;
      const k = uidKey(c.peer);
      const n = (perUid.get(k) ?? 1) - 1;
      if (n > 0) perUid.set(k, n);
      else perUid.delete(k);
    }
    stats.clients = conns.size;
  };
  /**
   * The share of others is full: one uid is not one person (subuid ranges,
   * user namespaces give a user many), so a uid with more connections than
   * the newcomer's will have gives up its oldest idle one (nothing asked
   * nor waiting). False when there is none: the newcomer is refused.
   */
  const makeRoomFor = (peer: Peer): boolean => {
    const mine = perUid.get(uidKey(peer)) ?? 0;
    let top = 0;
    let topKey: number | null = null;
    for (const [k, n] of perUid)
      if (n > top) {
        top = n;
        topKey = k;
      }
    // Strictly more than the newcomer's uid will hold: two uids of equal share do not take turns.
    if (topKey === null || top <= mine + 1) return false;
    for (const c of conns) {
      if (c.peer.privileged || uidKey(c.peer) !== topKey || c.sock.destroyed) continue;
      if (c.buf !== '' || c.sock.writableLength > 0 || c.waitingForBudget) continue;
      stats.evictedClients++;
      c.sock.destroy();
      forget(c);
      return true;
    }
    return false;
  };

  /** Why a new peer may not connect now, or null. */
  const refusal = (peer: Peer): string | null => {
    if (peer.privileged)
      return conns.size >= limits.maxClients
        ? `the daemon serves ${limits.maxClients} clients already`
        : null;
    // At most half of all slots are kept: a small maxClients still leaves others some.
    const kept = Math.min(limits.rootClients, Math.floor(limits.maxClients / 2));
    const mine = perUid.get(uidKey(peer)) ?? 0;
    if (mine >= limits.maxClientsPerUid)
      return `uid ${peer.uid ?? 'unknown'} has ${mine} connections to the daemon already (at most ${limits.maxClientsPerUid})`;
    // Full with others within their share: root holds more than it is kept; nothing of others to take.
    if (conns.size >= limits.maxClients && others < limits.maxClients - kept)
      return `the daemon serves ${limits.maxClients} clients already`;
    if (others >= limits.maxClients - kept && !makeRoomFor(peer))
      return `the daemon serves ${others} clients other than root already (${kept} of its ${limits.maxClients} are kept for root)`;
    return null;
  };

  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    const peer = peerOf(sock);
    const why = refusal(peer);
    if (why !== null) {
      stats.refusedClients++;
      const res: Response = {
        ok: false,
        error: { code: 'E_BUSY', message: why, hint: 'try again later' },
      };
      // Answer, then keep reading (and throwing away) until the client
      // closes or a second passes: closed at once, the client's request
      // would fail with EPIPE before it read why. Refusals being answered at
      // once are bounded too.
      if (++refusing > limits.maxClients) {
        refusing--;
        sock.destroy();
        return;
      }
      sock.on('close', () => refusing--);
      sock.setTimeout(1000, () => sock.destroy());
      sock.on('end', () => sock.destroy());
      sock.end(`${toJson(res)}\n`, 'latin1');
      sock.resume();
      return;
    }
    const c: Conn = { sock, peer, buf: '', heldOut: 0, heldIn: 0, waitingForBudget: false, pump: () => {} };
    conns.add(c);
    if (!peer.privileged) {
      others++;
      perUid.set(uidKey(peer), (perUid.get(uidKey(peer)) ?? 0) + 1);
    }
    stats.clients = conns.size;
    const who = { peerPid: peer.pid, peerUid: peer.uid };
    let logged = 0;
    let unlogged = 0;
    const report = (level: 'warn' | 'error', msg: string, fields: Record<string, unknown>) => {
      if (logged >= limits.logPerClient) {
        unlogged++;
        stats.logSuppressed++;
        return;
      }
      logged++;
      if (!errors.write(level, msg, { ...who, ...fields })) unlogged++;
    };
    sock.on('close', () => {
      forget(c);
      if (unlogged > 0)
        errors.write('warn', 'client closed; some of its bad requests were not logged', {
          ...who,
          notLogged: unlogged,
        });
    });
    // No traffic either way for idleMs (a client that neither asks nor reads
    // its answers counts too): close it.
    sock.setTimeout(limits.idleMs, () => {
      stats.idleClosed++;
      sock.destroy();
    });
    // Bytes as they came (one char per byte): paths need not be UTF-8.
    sock.setEncoding('latin1');
    let waitingForDrain = false;
    let closing = false;
    const refuse = (res: Response) => {
      closing = true;
      c.buf = '';
      sock.pause();
      sock.end(`${toJson(res)}\n`, 'latin1', () => sock.destroy());
    };
    // Waiting for the budget with every answer taken: go on now rather than at the next check.
    const written = () => {
      if (!c.waitingForBudget || sock.destroyed || sock.writableLength > 0) return;
      waiting.delete(c);
      c.waitingForBudget = false;
      setHeld(c);
      c.pump();
    };
    const work = () => {
      let pos = 0;
      // A write that failed (the peer is gone) marks the socket at once, before it is destroyed.
      while (!closing && !sock.destroyed && !sock.errored) {
        // Answers are piling up: stop reading until the client takes them.
        if (sock.writableLength > limits.pauseOutputBytes) {
          if (!waitingForDrain) {
            waitingForDrain = true;
            sock.pause();
            sock.once('drain', () => {
              waitingForDrain = false;
              c.pump();
            });
          }
          break;
        }
        // All clients together hold too much: others than root wait, unless
        // nothing waits for this one (it reads its answers: one more is
        // made, so that a flood by some cannot starve the others). One
        // answer, however big, is always made: this is checked before it.
        if (!peer.privileged && outTotal > limits.pauseTotalBytes && sock.writableLength > 0) {
          waitForBudget(c);
          break;
        }
        const i = c.buf.indexOf('\n', pos);
        if (i < 0 ? c.buf.length - pos > limits.maxRequestBytes : i - pos > limits.maxRequestBytes) {
          stats.badRequests++;
          report('warn', 'request too long; client closed', { limit: limits.maxRequestBytes });
          refuse({
            ok: false,
            error: { code: 'E_BAD_INPUT', message: `a request is at most ${limits.maxRequestBytes} bytes` },
          });
          return;
        }
        if (i < 0) break;
        const line = c.buf.slice(pos, i);
        pos = i + 1;
        const { res, bad, internal } = answer(m, line, peer, stats);
        if (bad) report('warn', 'bad request', { error: bad.message });
        if (internal) report('error', 'request failed', { error: internal });
        sock.write(`${toJson(res)}\n`, 'latin1', written);
        if (sock.writableLength > limits.maxOutputBytes) {
          stats.droppedClients++;
          report('warn', 'client does not read its answers; dropped', { buffered: sock.writableLength });
          sock.destroy();
          return;
        }
        sync(c);
      }
      // A copy, not a slice: a slice would keep the whole chunk it came from alive.
      if (pos === c.buf.length) c.buf = '';
      else if (pos > 0) c.buf = Buffer.from(c.buf.slice(pos), 'latin1').toString('latin1');
      sync(c);
    };
    c.pump = () => {
      if (closing || sock.destroyed || waitingForDrain || c.waitingForBudget) return;
      work();
      if (!closing && !sock.destroyed && !waitingForDrain && !c.waitingForBudget) sock.resume();
    };
    sock.on('data', (chunk: string) => {
      if (closing) return;
      c.buf += chunk;
      if (!waitingForDrain && !c.waitingForBudget) work();
      // Paused, a chunk already read can still arrive: bounded all the same.
      else if (c.buf.length > 4 * limits.maxRequestBytes + (64 << 10)) {
        stats.droppedClients++;
        sock.destroy();
      } else sync(c);
    });
  });
  // Create the socket with no access for anyone but root, then open it up as asked.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: file, backlog: limits.backlog }, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(file, mode);
  // Stopping the daemon must not wait for idle clients.
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    if (budgetTimer) clearInterval(budgetTimer);
    budgetTimer = null;
    for (const c of conns) c.sock.destroy();
    return close(cb);
  };
  return Object.assign(server, { stats });
}

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
        ...(control
          ? [
              '# TYPE cgview_control_bad_requests_total counter',
              `cgview_control_bad_requests_total ${control.badRequests}`,
              '# TYPE cgview_control_clients gauge',
              `cgview_control_clients ${control.clients}`,
            ]
          : []),
      ];
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
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
    let answered = false;
    let writeFailed: string | null = null;
    /** Settles on the first whole answer line; false while there is none. */
    const done = (): boolean => {
      const i = buf.indexOf('\n');
      if (answered || i < 0) return answered;
      clearTimeout(timer);
      answered = true;
      sock.end();
      let res: Response;
      try {
        res = JSON.parse(buf.slice(0, i)) as Response;
      } catch {
        reject(
          new CgviewError('E_NO_DAEMON', `what answers on ${file} is not a cgview daemon (not a JSON line)`),
        );
        return true;
      }
      if (res.ok) resolve(res.result);
      else
        reject(
          new CgviewError(
            res.error.code as 'E_BAD_INPUT',
            res.error.message,
            res.error.hint ? { hint: res.error.hint } : {},
          ),
        );
      return true;
    };
    sock.on('data', (c: string) => {
      buf += c;
      done();
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (done()) return;
      answered = true;
      reject(
        new CgviewError(
          'E_NO_DAEMON',
          `the daemon on ${file} closed the connection without answering${writeFailed ? ` (${writeFailed})` : ''}`,
          {
            hint: 'it may be busy (too many clients: try again later), or it stopped or crashed: see its log',
          },
        ),
      );
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (answered) return;
      // The daemon closed while the request was being written: it may have
      // answered first (a daemon that refuses a client says why, E_BUSY),
      // and that answer is what to report, not the write's EPIPE. Node
      // stops reading at a write error, so the answer is only here if it
      // was read already; otherwise 'close' reports it as a closed connection.
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') {
        if (!done()) writeFailed = e.code;
        return;
      }
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
