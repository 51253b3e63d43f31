/**
 * GET /api/v1/events: Server-Sent Events. After each sample every client gets
 * one `sample` event: the rows that changed, those that went away, and the
 * seq (a client that follows a cgroup asks /api/v1/history?since=seq).
 * Bounded: at most `maxClients` streams (a newcomer past that gets 503), and
 * a client whose unsent data passes `maxQueueBytes` is dropped (it reconnects
 * and reloads the tree, as EventSource does by itself).
 */
import type http from 'node:http';
import type { History } from '../history/store.js';
import { treeColumns } from './tree.js';

export interface EventLimits {
  maxClients: number;
  maxQueueBytes: number;
  heartbeatMs: number;
}

export const EVENT_LIMITS: EventLimits = {
  maxClients: 8,
  maxQueueBytes: 4 * 1024 * 1024,
  heartbeatMs: 10_000,
};

export class EventHub {
  private clients = new Set<http.ServerResponse>();
  /** Series key → the version the clients have. */
  private versions = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private unsubscribe: () => void;
  dropped = 0;
  refused = 0;
  sent = 0;

  constructor(
    private readonly history: History,
    readonly limits: EventLimits = EVENT_LIMITS,
  ) {
    this.unsubscribe = history.onSample((seq) => this.publish(seq));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Serves one stream; false when refused. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string>): boolean {
    if (this.clients.size >= this.limits.maxClients) {
      this.refused++;
      res
        .writeHead(503, { ...headers, 'content-type': 'text/plain', 'retry-after': '10' })
        .end('too many event streams\n');
      return false;
    }
    // A stream stays open by design: no idle timeout on this socket; the heartbeat keeps proxies from closing it.
    req.socket.setTimeout(0);
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 3000\n: cgview seq ${this.history.seq}\n\n`);
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
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
    for (const res of this.clients) {
      if (res.writableLength + chunk.length > this.limits.maxQueueBytes) {
        // Too slow to keep up: dropped rather than buffered without bound.
        this.dropped++;
        this.clients.delete(res);
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
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
