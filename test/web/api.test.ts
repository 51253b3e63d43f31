/**
 * The dashboard's HTTP API (src/api) on a loopback server of the test's own,
 * fed synthetic snapshots: info, tree, history, events (bounded), assets
 * and their headers. No root needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { assetsRoute, dashboardApi, type Route } from '../../src/api/routes.js';
import { History } from '../../src/history/store.js';
import type { CgroupSnapLike } from '../../src/history/types.js';
import { schedLat } from './fixtures.js';

let server: http.Server;
let base: string;
let history: History;
let api: ReturnType<typeof dashboardApi>;
let webDir: string;
let at = 1_700_000_000_000;

function snap(n: number, v: number): CgroupSnapLike[] {
  const out: CgroupSnapLike[] = [];
  for (let i = 0; i < n; i++) {
    const id = String(100 + i);
    const views = new Map([['sched_lat', schedLat(id, { self: v * (i + 1), other: v, buckets: [v, v] })]]);
    out.push({
      path: i === 0 ? '/' : `/svc${i}.service`,
      hierarchy: 'v2',
      id,
      level: i === 0 ? 0 : 1,
      views,
    });
  }
  return out;
}
function ingest(n: number, v: number): void {
  at += 5000;
  history.ingest({ at, cgroups: snap(n, v) });
}

async function get(
  p: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const port = (server.address() as net.AddressInfo).port;
    // A raw path: no client-side resolution of '..'.
    http
      .get({ host: '127.0.0.1', port, path: p, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      })
      .on('error', reject);
  });
}

describe('dashboard API', () => {
  before(async () => {
    webDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-web-'));
    fs.mkdirSync(path.join(webDir, 'assets'));
    fs.writeFileSync(path.join(webDir, 'index.html'), '<!doctype html><title>t</title>');
    fs.writeFileSync(path.join(webDir, 'assets', 'app-X.js'), 'console.log(1)');
    history = new History({ intervalMs: 5000, retentionMs: 3600_000 });
    api = dashboardApi({
      history,
      eventLimits: { maxClients: 2, maxQueueBytes: 64 * 1024, heartbeatMs: 60_000 },
    });
    const routes: Route[] = [api.route, assetsRoute(webDir)];
    server = http.createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      for (const r of routes) if (await r(req, res, url)) return;
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    ingest(3, 0);
    ingest(3, 1000);
  });
  after(() => {
    api.close();
    server.closeAllConnections();
    server.close();
    fs.rmSync(webDir, { recursive: true, force: true });
  });

  it('info: interval, retention, memory', async () => {
    const r = await get('/api/v1/info');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    const j = JSON.parse(r.body.toString());
    assert.equal(j.sampleIntervalMs, 5000);
    assert.equal(j.retentionMs, 3600_000);
    assert.equal(j.samplesKept, 720);
    assert.equal(j.seq, 2);
    assert.equal(j.memory.series, 3);
    assert.equal(j.memory.maxSeries, 50_000);
    assert.equal(j.memory.endedSeries, 0);
    assert.ok(j.memory.overheadBytes > 0);
    assert.deepEqual(j.dropped, {
      budgetRecords: 0,
      endedSeries: 0,
      emptyEndedSeries: 0,
      untrackedCgroups: 0,
      refusedSeries: 0,
      freedColumns: 0,
      refusedColumnValues: 0,
    });
  });

  it('tree: columns of the live cgroups with figures; gzip when asked', async () => {
    const r = await get('/api/v1/tree');
    const j = JSON.parse(r.body.toString());
    assert.deepEqual(j.path, ['/', '/svc1.service', '/svc2.service']);
    assert.deepEqual(j.hierarchies, ['v2']);
    // svc2: self 3000 + other 1000 ns of wait over 5 s; two waits in it (one per bucket shown).
    assert.equal(j.wait[2], 4000e-9 / 5);
    assert.equal(j.self[2], 75);
    assert.deepEqual(j.viewSets, [['sched_lat']]);
    const z = await get('/api/v1/tree', { 'accept-encoding': 'gzip' });
    if (z.headers['content-encoding'] === 'gzip')
      assert.deepEqual(JSON.parse(zlib.gunzipSync(z.body).toString()), j);
  });

  it('gzip only when Accept-Encoding allows it: q=0 refuses it', async () => {
    // A body past the 1 KiB gzip threshold.
    const u = '/api/v1/history?path=/';
    const plain = await get(u);
    assert.ok(plain.body.length > 1024, `history body ${plain.body.length} B`);
    assert.equal((await get(u, { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip');
    for (const ae of ['gzip;q=0', 'gzip; q=0.0, identity', 'deflate, br', 'x-gzip;q=0']) {
      const r = await get(u, { 'accept-encoding': ae });
      assert.equal(r.headers['content-encoding'], undefined, ae);
      assert.deepEqual(JSON.parse(r.body.toString()), JSON.parse(plain.body.toString()), ae);
    }
    assert.equal((await get(u, { 'accept-encoding': 'gzip;q=0.5' })).headers['content-encoding'], 'gzip');
  });

  it('history: by path or key, since a seq; 404 and 400 name the problem', async () => {
    ingest(3, 3000);
    const r = JSON.parse((await get('/api/v1/history?path=/svc1.service')).body.toString());
    assert.equal(r.id, '101');
    assert.deepEqual(r.seq, [1, 2, 3]);
    const sl = r.views.find((v: { view: string }) => v.view === 'sched_lat');
    const self = sl.counters.find((c: { key: string }) => c.key === 'queue_self_ns_total');
    assert.deepEqual(self.values, [null, 2000, 4000]);
    const since = JSON.parse((await get('/api/v1/history?key=v2:101&since=2')).body.toString());
    assert.deepEqual(since.seq, [3]);
    const nf = await get('/api/v1/history?path=/nope');
    assert.equal(nf.status, 404);
    assert.equal(JSON.parse(nf.body.toString()).error.code, 'E_NOT_FOUND');
    assert.equal((await get('/api/v1/history')).status, 400);
    assert.equal((await get('/api/v1/history?path=/&since=x')).status, 400);
    assert.equal((await get('/api/v1/what')).status, 404);
  });

  it('events: one `sample` event per sample with the changed and removed rows', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${base}/api/v1/events`, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          if (buf.includes('event: sample')) {
            const end = buf.indexOf('\n\n', buf.indexOf('event: sample'));
            if (end > 0) {
              req.destroy();
              resolve(buf);
            }
          }
        });
        setImmediate(() => ingest(2, 9000));
      });
      req.on('error', (e) => {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
      });
    });
    const data = JSON.parse(/data: (.*)\n/.exec(got.slice(got.indexOf('event: sample')))![1]!);
    assert.deepEqual(data.removed, ['v2:102']);
    assert.equal(data.rows, 2);
    assert.ok(data.changed.path.includes('/svc1.service'));
  });

  it('events: past maxClients a newcomer gets 503; a client that does not read is dropped', async () => {
    // Two raw clients that never read what they are sent, from two addresses (one stream each: no eviction).
    const socks: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = net.connect({
        port: (server.address() as net.AddressInfo).port,
        host: '127.0.0.1',
        localAddress: `127.0.0.${2 + i}`,
      });
      s.write('GET /api/v1/events HTTP/1.1\r\nhost: x\r\n\r\n');
      s.pause();
      socks.push(s);
    }
    for (let i = 0; i < 100 && api.events.clientCount < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(api.events.clientCount, 2);
    assert.equal((await get('/api/v1/events')).status, 503);
    // Many big samples: the unread streams pass the 64 KiB queue bound and are dropped.
    for (let i = 0; i < 200 && api.events.dropped < 2; i++) {
      ingest(3000, 10_000 + i);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(api.events.dropped, 2);
    assert.equal(api.events.clientCount, 0);
    for (const s of socks) s.destroy();
  });

  it('assets: the page and its files with CSP; nothing else reaches the file system', async () => {
    const r = await get('/');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/html/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    const js = await get('/assets/app-X.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['cache-control']), /immutable/);
    assert.equal((await get('/assets/app-X.js', { 'if-none-match': String(js.headers.etag) })).status, 304);
    // Names are looked up in the set built at start ('..' is resolved by the URL parser before, to '/index.html').
    for (const p of [
      '/assets/..%2findex.html',
      '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/assets/nope.js',
      '/assets/',
    ])
      assert.equal((await get(p)).status, 404, p);
    const post = await new Promise<number>((resolve) => {
      const req = http.request(`${base}/`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.end();
    });
    assert.equal(post, 405);
  });
});

describe('event streams: per-address share, eviction, lifetime, HEAD', () => {
  let srv: http.Server;
  let hub: ReturnType<typeof dashboardApi>;
  let h: History;
  const open: net.Socket[] = [];
  before(async () => {
    h = new History({ intervalMs: 5000, retentionMs: 60_000 });
    hub = dashboardApi({
      history: h,
      eventLimits: {
        maxClients: 3,
        maxPerAddress: 2,
        maxLifetimeMs: 60_000,
        maxQueueBytes: 64 * 1024,
        heartbeatMs: 60_000,
      },
    });
    srv = http.createServer(async (req, res) => {
      if (!(await hub.route(req, res, new URL(req.url ?? '/', 'http://x')))) res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  });
  after(() => {
    for (const s of open) s.destroy();
    hub.close();
    srv.closeAllConnections();
    srv.close();
  });

  /** A raw stream from a local address: resolves with its status line and a promise of its end. */
  function stream(from: string, method = 'GET'): Promise<{ status: number; ended: Promise<string> }> {
    return new Promise((resolve, reject) => {
      const s = net.connect({
        port: (srv.address() as net.AddressInfo).port,
        host: '127.0.0.1',
        localAddress: from,
      });
      open.push(s);
      let buf = '';
      let done: (v: string) => void = () => {};
      const ended = new Promise<string>((r) => {
        done = r;
      });
      let status = 0;
      s.on('data', (c: Buffer) => {
        buf += c.toString();
        if (!status && buf.includes('\r\n\r\n')) {
          status = Number(/^HTTP\/1\.1 (\d+)/.exec(buf)?.[1]);
          // A GET stream is "in" once its first event-stream bytes came; HEAD and refusals have none.
          if (status !== 200 || method === 'HEAD') resolve({ status, ended });
        }
        if (status === 200 && method === 'GET' && buf.includes('retry: 3000')) resolve({ status, ended });
        // The chunked body's terminator: the server ended the stream.
        if (buf.endsWith('0\r\n\r\n')) done(buf);
      });
      s.on('end', () => done(buf));
      s.on('close', () => done(buf));
      s.on('error', reject);
      s.write(`${method} /api/v1/events HTTP/1.1\r\nhost: x\r\n\r\n`);
    });
  }

  it('HEAD: the headers only, no stream held', { timeout: 15_000 }, async () => {
    const r = await stream('127.0.0.9', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(hub.events.clientCount, 0);
    const all = await new Promise<string>((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: (srv.address() as net.AddressInfo).port,
          path: '/api/v1/events',
          method: 'HEAD',
        },
        (res) => {
          res.resume();
          // The response completes (before the fix it never did).
          res.on('end', () => resolve(String(res.headers['content-type'])));
        },
      );
      req.end();
    });
    assert.equal(all, 'text/event-stream; charset=utf-8');
    assert.equal(hub.events.clientCount, 0);
  });

  it('two streams an address: a third from it replaces its oldest; a newcomer takes from the busiest address', {
    timeout: 15_000,
  }, async () => {
    const a1 = await stream('127.0.0.2');
    const a2 = await stream('127.0.0.2');
    assert.equal(a1.status, 200);
    assert.equal(a2.status, 200);
    const a3 = await stream('127.0.0.2');
    assert.equal(a3.status, 200);
    await a1.ended; // its own oldest went
    assert.equal(hub.events.addressCount('127.0.0.2'), 2);
    assert.equal(hub.events.evicted, 1);
    const b1 = await stream('127.0.0.3');
    assert.equal(b1.status, 200);
    assert.equal(hub.events.clientCount, 3);
    // Full: a newcomer from an address with none takes the oldest of the address holding two.
    const c1 = await stream('127.0.0.4');
    assert.equal(c1.status, 200);
    await a2.ended;
    assert.equal(hub.events.addressCount('127.0.0.2'), 1);
    assert.equal(hub.events.evicted, 2);
    // Full, one each: equals do not evict each other; the newcomer is refused.
    const d1 = await stream('127.0.0.5');
    assert.equal(d1.status, 503);
    assert.equal(hub.events.clientCount, 3);
    hub.close();
    await Promise.all([a3.ended, b1.ended, c1.ended]);
    assert.equal(hub.events.clientCount, 0);
  });
});

describe('event streams: a stream ends at its lifetime', () => {
  it('ends by itself (EventSource reconnects) and frees its slot', { timeout: 15_000 }, async () => {
    const h = new History({ intervalMs: 5000, retentionMs: 60_000 });
    const hub = dashboardApi({
      history: h,
      eventLimits: { maxClients: 1, maxLifetimeMs: 200, maxQueueBytes: 64 * 1024, heartbeatMs: 60_000 },
    });
    const srv = http.createServer(async (req, res) => {
      if (!(await hub.route(req, res, new URL(req.url ?? '/', 'http://x')))) res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/api/v1/events`, (res) => {
            assert.equal(res.statusCode, 200);
            let b = '';
            res.on('data', (c: Buffer) => {
              b += c.toString();
            });
            res.on('end', () => resolve(b));
          })
          .on('error', reject);
      });
      assert.match(body, /^retry: 3000\n/);
      assert.equal(hub.events.expired, 1);
      assert.equal(hub.events.clientCount, 0);
    } finally {
      hub.close();
      srv.closeAllConnections();
      srv.close();
    }
  });
});
