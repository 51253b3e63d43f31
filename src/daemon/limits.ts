/**
 * Limits of the control socket and of the --listen HTTP server: what one
 * client may make the daemon hold, their defaults, and the environment
 * variables that override them.
 */
import { CgviewError } from '../errors.js';

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
   * Connections at once. A newcomer past it makes room by closing, of the
   * address holding most connections, the oldest with no request in
   * progress, else one whose request waits for a bcrypt check, else the
   * newest past the address's share; if there is none it waits (maxWaiting).
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
  /**
   * Connections accepted past maxConnections when none can make room (every
   * one has a request in progress, or came less than 250 ms ago): they wait,
   * not read (their bytes stay in the kernel), for a free slot, at most
   * headersTimeoutMs. The next admitted is the oldest of the address with
   * fewest admitted; past this many waiting, the oldest waiting connection
   * of the address holding most (admitted + waiting) is closed.
   */
  maxWaiting: number;
  /** Time from a request's head to the end of its answer (bcrypt, render and sending); then the connection is closed. */
  answerTimeoutMs: number;
  /** A connection whose answer has not moved for this long (the client stopped reading) is closed. */
  writeStallMs: number;
  /**
   * Bytes of answers queued behind the one being sent, per connection: past
   * it the connection is closed (a route that writes without minding
   * backpressure to a client that does not read).
   */
  maxQueuedWriteBytes: number;
  /** /metrics answers rendered at once; more scrapes wait their turn. */
  maxScrapes: number;
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
  // An admitted idle connection holds a socket and at most one read chunk and one request head (16 KiB).
  maxConnections: 64,
  maxConnectionsPerAddress: 8,
  firstRequestMs: 5_000,
  maxPipelined: 16,
  maxWaiting: 64,
  answerTimeoutMs: 30_000,
  writeStallMs: 10_000,
  maxQueuedWriteBytes: 4 << 20,
  maxScrapes: 2,
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
  maxWaiting: 'CGVIEW_HTTP_MAX_WAITING',
  answerTimeoutMs: 'CGVIEW_HTTP_ANSWER_TIMEOUT_MS',
  writeStallMs: 'CGVIEW_HTTP_WRITE_STALL_MS',
  maxQueuedWriteBytes: 'CGVIEW_HTTP_MAX_QUEUED_WRITE_BYTES',
  maxScrapes: 'CGVIEW_HTTP_MAX_SCRAPES',
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
