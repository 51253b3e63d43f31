/**
 * GET /api/v1/events: Server-Sent Events. After each sample every client gets
 * one `sample` event: the rows that changed, those that went away, and the
 * seq (a client that follows a cgroup asks /api/v1/history?since=seq).
 * Bounded: at most `maxClients` streams and `maxPerAddress` per remote
 * address (a newcomer past its address' share replaces that address' oldest
 * stream; past maxClients it replaces the oldest stream of the address holding
 * most, if that one holds at least two more than the newcomer's, else gets 503),
 * a stream lives at most `maxLifetimeMs` (then it ends; EventSource reconnects
 * by itself after `retry`), and a client whose unsent data passes
 * `maxQueueBytes` is dropped (it reconnects and reloads the tree). HEAD gets
 * the headers only.
 */
import type http from 'node:http';
import type { History } from '../history/store.js';
import { treeColumns } from './tree.js';

export interface EventLimits {
  maxClients: number;
  /** Streams per remote address (default 2). */
  maxPerAddress?: number;
  /** A stream ends after this long, ms (default 10 min); the client reconnects. */
  maxLifetimeMs?: number;
  maxQueueBytes: number;
  heartbeatMs: number;
}

export const EVENT_LIMITS: Required<EventLimits> = {
  maxClients: 8,
  maxPerAddress: 2,
  maxLifetimeMs: 600_000,
  maxQueueBytes: 4 * 1024 * 1024,
  heartbeatMs: 10_000,
};

interface Client {
  res: http.ServerResponse;
  addr: string;
  timer: NodeJS.Timeout;
}

export class EventHub {
  /** In the order they connected (oldest first). */
  private clients = new Map<http.ServerResponse, Client>();
  private byAddr = new Map<string, Client[]>();
  readonly limits: Required<EventLimits>;
  /** Series key → the version the clients have. */
  private versions = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private unsubscribe: () => void;
  dropped = 0;
  refused = 0;
  /** Streams closed to make room for a newcomer (its own address' oldest, or the busiest address'). */
  evicted = 0;
  /** Streams ended at maxLifetimeMs. */
  expired = 0;
  sent = 0;

  constructor(
    private readonly history: History,
    limits: EventLimits = EVENT_LIMITS,
  ) {
    this.limits = { ...EVENT_LIMITS, ...limits };
    this.unsubscribe = history.onSample((seq) => this.publish(seq));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Streams open from one remote address. */
  addressCount(addr: string): number {
    return this.byAddr.get(addr)?.length ?? 0;
  }

  /** Makes room for a newcomer from `addr`; false when there is none for it. */
  private admit(addr: string): boolean {
    const mine = this.byAddr.get(addr) ?? [];
    if (mine.length >= this.limits.maxPerAddress) {
      // Its own address' share is full: its oldest stream goes (a reload, a new tab), nobody else's.
      this.evict(mine[0]!);
      return true;
    }
    if (this.clients.size < this.limits.maxClients) return true;
    let most: Client[] | undefined;
    for (const cs of this.byAddr.values()) if (!most || cs.length > most.length) most = cs;
    // Only from an address holding at least two more: equals do not take turns evicting each other.
    if (most && most.length >= mine.length + 2) {
      this.evict(most[0]!);
      return true;
    }
    return false;
  }

  private evict(c: Client): void {
    this.evicted++;
    this.forget(c);
    c.res.end();
  }

  private forget(c: Client): void {
    if (!this.clients.delete(c.res)) return;
    clearTimeout(c.timer);
    const cs = this.byAddr.get(c.addr);
    if (!cs) return;
    const i = cs.indexOf(c);
    if (i >= 0) cs.splice(i, 1);
    if (cs.length === 0) this.byAddr.delete(c.addr);
  }

  /** Serves one stream; false when refused. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>): boolean {
    const head = {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    };
    if (req.method === 'HEAD') {
      // The headers a GET would get, and no stream.
      res.writeHead(200, head).end();
      return false;
    }
    const addr = req.socket.remoteAddress ?? '';
    if (!this.admit(addr)) {
      this.refused++;
      res
        .writeHead(503, { ...headers, 'content-type': 'text/plain', 'retry-after': '10' })
        .end('too many event streams\n');
      return false;
    }
    // A stream stays open by design: no idle timeout on this socket; the heartbeat keeps proxies from closing it.
    // It ends at maxLifetimeMs (EventSource reconnects after `retry`), so that no client holds a slot for good.
    req.socket.setTimeout(0);
    res.writeHead(200, head);
    res.write(`retry: 3000\n: cgview seq ${this.history.seq}\n\n`);
    const c: Client = {
      res,
      addr,
      timer: setTimeout(() => {
        this.expired++;
        this.forget(c);
        res.end();
      }, this.limits.maxLifetimeMs),
    };
    c.timer.unref();
    this.clients.set(res, c);
    let cs = this.byAddr.get(addr);
    if (!cs) {
      cs = [];
      this.byAddr.set(addr, cs);
    }
    cs.push(c);
    res.once('close', () => this.forget(c));
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.broadcast(': ping\n\n'), this.limits.heartbeatMs);
      this.heartbeat.unref();
    }
    return true;
  }

  private publish(seq: number): void {
    // Versions are kept even without clients, so that the first event after a connect is small.
    const changed = this.history.rows((s) => {
      if (this.versions.get(s.key) === s.version) return false;
      this.versions.set(s.key, s.version);
      return true;
    });
    const removed: string[] = [];
    let rows = 0;
    for (const k of this.versions.keys()) {
      const s = this.history.series.get(k);
      if (!s || s.ended) {
        removed.push(k);
        this.versions.delete(k);
      } else rows++;
    }
    if (this.clients.size === 0) return;
    const data = JSON.stringify({
      seq,
      at: this.history.timeOf(seq),
      rows,
      changed: treeColumns(changed),
      removed,
    });
    this.broadcast(`event: sample\nid: ${seq}\ndata: ${data}\n\n`);
  }

  private broadcast(chunk: string): void {
    for (const [res, c] of this.clients) {
      if (res.writableLength + chunk.length > this.limits.maxQueueBytes) {
        // Too slow to keep up: dropped rather than buffered without bound.
        this.dropped++;
        this.forget(c);
        res.destroy();
        continue;
      }
      res.write(chunk);
      this.sent++;
    }
  }

  close(): void {
    this.unsubscribe();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    for (const c of [...this.clients.values()]) {
      this.forget(c);
      c.res.end();
    }
  }
}
