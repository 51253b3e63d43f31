/**
 * The control socket: a UNIX socket, mode 0600 by default (only root talks to
 * the daemon; job owners read their view files directly). Every buffer a
 * client can fill is bounded (SocketLimits), alone and over all clients.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import { peerCred, peerGroups } from '../kernel/index.js';
import { SOCKET_LIMITS, type SocketLimits } from './limits.js';
import type { Logger } from './log.js';
import type { Manager } from './manager.js';
import { answer, type Peer } from './policy.js';
import { type Response, toJson } from './protocol.js';

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
