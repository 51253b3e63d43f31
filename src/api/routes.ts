/**
 * The dashboard's HTTP side: the JSON API under /api/v1/ (docs/api.md) and
 * the page's assets at / and /assets/, as Routes for the daemon's --listen
 * server (src/daemon/http.ts addRoute), which applies auth and TLS first.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { wantsGzip } from '../export/negotiate.js';
import type { Sampler } from '../history/sampler.js';
import type { History } from '../history/store.js';
import { EventHub, type EventLimits } from './events.js';
import { treeColumns } from './tree.js';

export type Route = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
) => boolean | Promise<boolean>;

/** Every answer: nothing but this origin (the page makes no other request), no framing, no sniffing. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Where scripts/build-web.mjs writes the page (build/web in the repository). */
export const WEB_DIR = path.resolve(import.meta.dirname, '../../../build/web');

export interface ApiOptions {
  history: History;
  sampler?: Sampler;
  version?: string;
  eventLimits?: EventLimits;
}

export interface Api {
  route: Route;
  events: EventHub;
  close(): void;
}

function send(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  body: Buffer | string,
  type: string,
  extra: Record<string, string> = {},
  gz?: Buffer,
): true {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  // q=0 refuses gzip (RFC 9110 12.5.3): the same parser as /metrics.
  const wantGzip = wantsGzip(req.headers['accept-encoding']);
  const zipped = wantGzip && buf.length > 1024 ? (gz ?? zlib.gzipSync(buf, { level: 4 })) : undefined;
  const out = zipped ?? buf;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': type,
    'content-length': String(out.length),
    vary: 'accept-encoding',
    ...(zipped ? { 'content-encoding': 'gzip' } : {}),
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : out);
  return true;
}

function json(req: http.IncomingMessage, res: http.ServerResponse, status: number, v: unknown): true {
  return send(req, res, status, JSON.stringify(v), 'application/json; charset=utf-8', {
    'cache-control': 'no-store',
  });
}

function bad(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
): true {
  return json(req, res, status, { error: { code, message } });
}

/** The seq of the first sample at or after `ms` (wall clock). */
function seqAtOrAfter(h: History, ms: number): number {
  let lo = h.oldestSeq;
  let hi = h.seq + 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (h.timeOf(mid) < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const num = (v: string | null): number | undefined => {
  if (v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : Number.NaN;
};

export function dashboardApi(opts: ApiOptions): Api {
  const { history } = opts;
  const events = new EventHub(history, opts.eventLimits);
  let treeCache: { seq: number; body: Buffer; gz: Buffer } | null = null;

  const route: Route = (req, res, url) => {
    if (!url.pathname.startsWith('/api/v1/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD' }).end();
      return true;
    }
    const what = url.pathname.slice('/api/v1/'.length);
    if (what === 'info') {
      const mem = history.memory();
      return json(req, res, 200, {
        version: opts.version ?? null,
        sampleIntervalMs: history.intervalMs,
        retentionMs: history.retentionMs,
        samplesKept: history.capacity,
        seq: history.seq,
        oldestSeq: history.oldestSeq,
        now: Date.now(),
        lastSampleAt: history.seq ? history.timeOf(history.seq) : null,
        memory: mem,
        budgetDrops: history.budgetDrops,
        dropped: history.drops,
        sampler: opts.sampler?.stats ?? null,
        events: {
          clients: events.clientCount,
          dropped: events.dropped,
          refused: events.refused,
          evicted: events.evicted,
          expired: events.expired,
        },
        metricPrefix: 'cgview_',
      });
    }
    if (what === 'tree') {
      if (!treeCache || treeCache.seq !== history.seq) {
        const body = Buffer.from(
          JSON.stringify({
            seq: history.seq,
            at: history.seq ? history.timeOf(history.seq) : null,
            intervalMs: history.intervalMs,
            ...treeColumns(history.rows()),
          }),
        );
        treeCache = { seq: history.seq, body, gz: zlib.gzipSync(body, { level: 4 }) };
      }
      return send(
        req,
        res,
        200,
        treeCache.body,
        'application/json; charset=utf-8',
        { 'cache-control': 'no-store' },
        treeCache.gz,
      );
    }
    if (what === 'history') {
      const key = url.searchParams.get('key');
      const p = url.searchParams.get('path');
      if (!key && p === null)
        return bad(req, res, 400, 'E_BAD_INPUT', 'history wants key=HIERARCHY:ID or path=PATH');
      const s = history.find(
        key ? { key } : { path: p!, hierarchy: url.searchParams.get('hierarchy') ?? 'v2' },
      );
      if (!s) return bad(req, res, 404, 'E_NOT_FOUND', `no history for ${key ?? p}`);
      const since = num(url.searchParams.get('since'));
      const from = num(url.searchParams.get('from'));
      const to = num(url.searchParams.get('to'));
      if ([since, from, to].some((v) => Number.isNaN(v)))
        return bad(req, res, 400, 'E_BAD_INPUT', 'since, from and to are numbers (seq, ms, ms)');
      const range: { from?: number; to?: number } = {};
      if (since !== undefined) range.from = since + 1;
      else if (from !== undefined) range.from = seqAtOrAfter(history, from);
      if (to !== undefined) range.to = seqAtOrAfter(history, to + 1) - 1;
      return json(req, res, 200, history.query(s, range));
    }
    if (what === 'events') {
      events.serve(req, res, SECURITY_HEADERS);
      return true;
    }
    return bad(
      req,
      res,
      404,
      'E_NOT_FOUND',
      `no API ${url.pathname}; try /api/v1/info, tree, history, events`,
    );
  };
  return { route, events, close: () => events.close() };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * `/` and `/assets/NAME`: the files scripts/build-web.mjs wrote, read once
 * into memory (a fixed set: no path from a request ever reaches the file system).
 */
export function assetsRoute(dir = WEB_DIR): Route {
  const files = new Map<string, { body: Buffer; gz: Buffer; type: string; etag: string }>();
  const load = (name: string, file: string) => {
    const body = fs.readFileSync(file);
    const etag = `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(name, {
      body,
      gz: zlib.gzipSync(body, { level: 9 }),
      type: TYPES[path.extname(file)] ?? 'application/octet-stream',
      etag,
    });
  };
  let missing: string | null = null;
  try {
    load('/', path.join(dir, 'index.html'));
    for (const f of fs.readdirSync(path.join(dir, 'assets')))
      load(`/assets/${f}`, path.join(dir, 'assets', f));
  } catch (e) {
    missing = `the dashboard is not built (${(e as Error).message}); run: node scripts/build-web.mjs`;
  }
  return (req, res, url) => {
    const p = url.pathname;
    if (p !== '/' && p !== '/index.html' && !p.startsWith('/assets/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD' }).end();
      return true;
    }
    if (missing && (p === '/' || p === '/index.html'))
      return send(req, res, 503, `${missing}\n`, 'text/plain; charset=utf-8');
    const f = files.get(p === '/index.html' ? '/' : p);
    if (!f) return send(req, res, 404, 'not found\n', 'text/plain; charset=utf-8');
    if (req.headers['if-none-match'] === f.etag) {
      res.writeHead(304, { ...SECURITY_HEADERS, etag: f.etag }).end();
      return true;
    }
    // Asset names carry a content hash: cached for good; the page itself is revalidated.
    const cache = p.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    return send(req, res, 200, f.body, f.type, { etag: f.etag, 'cache-control': cache }, f.gz);
  };
}
