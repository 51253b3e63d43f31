/**
 * GET /api/v1/events: Server-Sent Events. After each sample every client gets
 * one `sample` event: the rows that changed, those that went away, and the
 * seq (a client that follows a cgroup asks /api/v1/history?since=seq).
 * Bounded: at most `maxClients` streams (a newcomer past that gets 503), and
 * a client whose unsent data passes `maxQueueBytes` is dropped (it reconnects
 * and reloads the tree, as EventSource does by itself).
 */
import type http from 'node:http';
import type { History, TreeRow } from '../history/store.js';
import { rowSignature, treeColumns } from './tree.js';

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
  private sigs = new Map<string, string>();
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
    // Keep the signatures even without clients, so that the first event after a connect is small.
    const rows = this.history.rows();
    const changed: TreeRow[] = [];
    const live = new Set<string>();
    for (const r of rows) {
      live.add(r.key);
      const sig = rowSignature(r);
      if (this.sigs.get(r.key) !== sig) {
        changed.push(r);
        this.sigs.set(r.key, sig);
      }
    }
    const removed: string[] = [];
    for (const k of this.sigs.keys())
      if (!live.has(k)) {
        removed.push(k);
        this.sigs.delete(k);
      }
    if (this.clients.size === 0) return;
    const data = JSON.stringify({
      seq,
      at: this.history.timeOf(seq),
      rows: rows.length,
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
