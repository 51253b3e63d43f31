/**
 * The --listen server in this process (serveHttp with a render of the
 * test's own): the address rules, the router, pipelining through the Gate,
 * slow and greedy clients, the cap on concurrent scrapes, TLS with basic
 * authentication and client certificates.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { after, describe, it } from 'node:test';
import { webOptions } from '../../src/cli/daemon.js';
import { type HttpServer, parseListen, type Rendered, Router, serveHttp } from '../../src/daemon/http.js';
import { HTTP_LIMITS, type HttpLimits } from '../../src/daemon/limits.js';
import type { Logger } from '../../src/daemon/log.js';
import { parseWebConfig } from '../../src/daemon/webconfig.js';
import { CgviewError } from '../../src/errors.js';
import { waitForAsync } from '../daemon.js';
import { RssPeak, sleep } from '../helpers.js';
import { get, hashOf, makePki, tcp, tmpDir, writeFile } from './http-util.js';

const servers: HttpServer[] = [];
after(() => {
  for (const s of servers) s.close();
});

const text = (s: string): Rendered => ({
  status: 200,
  headers: { 'content-type': 'text/plain; version=0.0.4' },
  body: Buffer.from(s),
});

async function start(
  o: {
    listen?: string;
    limits?: Partial<HttpLimits>;
    render?: (req: { accept?: string }) => Promise<Rendered>;
    router?: Router;
    web?: string;
    log?: Logger;
  } = {},
): Promise<HttpServer> {
  const s = await serveHttp({
    ...(o.log ? { log: o.log } : {}),
    listen: o.listen ?? '127.0.0.1:0',
    limits: { ...HTTP_LIMITS, ...o.limits },
    render: o.render ?? (async () => text('cgview_up 1\n')),
    router: o.router ?? new Router(),
    ...(o.web ? { web: parseWebConfig(o.web, `${tmpDir('web')}/web.yml`) } : {}),
  });
  servers.push(s);
  return s;
}

/** One plain GET from a chosen loopback address (127.0.0.0/8 is all loopback); rejects if closed unanswered. */
function getFrom(
  url: string,
  localAddress: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`no answer from ${url} within 15 s`)));
    req.end();
  });
}

describe('--listen addresses', () => {
  it('parses HOST:PORT, :PORT (loopback), [IPv6]:PORT; refuses the rest', () => {
    assert.deepEqual(parseListen(':9100'), { host: '127.0.0.1', port: 9100, defaulted: true });
    assert.deepEqual(parseListen('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100, defaulted: false });
    assert.deepEqual(parseListen('[::1]:9100'), { host: '::1', port: 9100, defaulted: false });
    assert.deepEqual(parseListen('[::]:0'), { host: '::', port: 0, defaulted: false });
    assert.deepEqual(parseListen('localhost:80'), { host: 'localhost', port: 80, defaulted: false });
    for (const bad of [
      '9100',
      '::1:9100',
      '[::1]9100',
      '[zz]:1',
      'host:',
      'host:65536',
      'host:-1',
      'host:1e3',
      'a b:1',
      '[::1]:',
    ])
      assert.throws(
        () => parseListen(bad),
        (e: unknown) => e instanceof CgviewError && e.code === 'E_BAD_INPUT',
        bad,
      );
  });

  it('a bare :PORT binds 127.0.0.1 only', async (t) => {
    const s = await start({ listen: ':0' });
    assert.equal(s.loopbackOnly, true);
    assert.equal(s.address.address, '127.0.0.1');
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await get(`${s.url}/metrics`)).status, 200);
    // Another loopback address, and every other address of this host, are refused.
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && a.address !== '127.0.0.1')
      .map((a) => a!.address);
    for (const addr of ['127.0.0.2', ...others]) {
      const err = await new Promise<string>((resolve) => {
        const c = net.connect(s.address.port, addr);
        c.on('connect', () => {
          c.destroy();
          resolve('connected');
        });
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
      });
      assert.equal(err, 'ECONNREFUSED', `${addr}:${s.address.port}`);
    }
    t.diagnostic(`refused on ${['127.0.0.2', ...others].join(', ')}`);
  });

  it('serves on [::1]:PORT', async (t) => {
    const lo6 = Object.values(os.networkInterfaces())
      .flat()
      .some((a) => a?.address === '::1');
    if (!lo6) {
      t.skip('no ::1 on this host');
      return;
    }
    const s = await start({ listen: '[::1]:0' });
    assert.match(s.url, /^http:\/\/\[::1\]:\d+$/);
    const a = await get(`${s.url}/metrics`);
    assert.equal(a.status, 200);
  });
});

describe('daemon web options', () => {
  it('--sample-interval and --history in seconds become the history options; paths are made absolute', () => {
    const o = webOptions(new Map());
    assert.deepEqual(o.history, { intervalMs: 5000, retentionMs: 3600_000 });
    assert.equal(o.listen, undefined);
    const p = webOptions(
      new Map([
        ['listen', ':9100'],
        ['web-config', 'web.yml'],
        ['metrics-config', 'm.yml'],
        ['sample-interval', '2.5'],
        ['history', '600'],
      ]),
    );
    assert.deepEqual(p.history, { intervalMs: 2500, retentionMs: 600_000 });
    assert.equal(p.webConfigFile, `${process.cwd()}/web.yml`);
    assert.equal(p.export.configFile, `${process.cwd()}/m.yml`);
    for (const [k, v] of [
      ['sample-interval', '0.5'],
      ['sample-interval', '3601'],
      ['sample-interval', '-1'],
      ['history', '4'],
      ['history', '604801'],
      ['history', 'an hour'],
    ])
      assert.throws(() => webOptions(new Map([[k!, v!]])), /wants seconds from/, `${k} ${v}`);
    assert.throws(() => webOptions(new Map([['web-config', 'x']])), /--web-config needs --listen/);
  });
});

describe('routes', () => {
  it('GET and HEAD of /metrics; 404 and 405 with tiny bodies; no request bodies', async () => {
    const s = await start();
    const m = await get(`${s.url}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.body, 'cgview_up 1\n');
    assert.equal(m.headers['content-length'], '12');
    const head = await get(`${s.url}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '12');
    for (const p of ['/', '/metrics/', '/metricsx', '/api/v1/tree', '/%00', '/..%2f..%2fetc/passwd']) {
      const a = await get(`${s.url}${p}`);
      assert.equal(a.status, 404, p);
      assert.ok(a.body.length < 64, `${p}: ${a.body}`);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const a = await get(`${s.url}/metrics`, { method });
      assert.equal(a.status, 405, method);
      assert.equal(a.headers['allow'], 'GET, HEAD');
      assert.ok(a.body.length < 64);
    }
    const c = tcp(s.address.port);
    c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    await waitForAsync(() => c.closed(), 10000, 'closed after a body');
    assert.match(c.data(), /^HTTP\/1.1 400 /);
    // Bare LF line ends: answered (Node's parser refuses them) rather than left waiting for a CRLF.
    const lf = tcp(s.address.port);
    lf.sock.write('GET /metrics HTTP/1.1\nHost: x\n\n');
    await waitForAsync(() => lf.closed(), 5000, 'closed after bare LFs');
    assert.match(lf.data(), /^HTTP\/1.1 400 /);
  });

  it('a route that fails at every request: 500s, logged at most 10 lines a minute', async () => {
    const router = new Router();
    router.add('/boom', () => {
      throw new Error('boom');
    });
    const lines: string[] = [];
    const s = await start({ router, log: (_level, msg) => lines.push(msg) });
    for (let i = 0; i < 30; i++) assert.equal((await get(`${s.url}/boom`)).status, 500);
    const failed = lines.filter((m) => m.startsWith('HTTP request failed'));
    assert.equal(failed.length, 10, lines.join('\n'));
  });

  it('addRoute: prefixes, the most specific first, false falls through to 404', async () => {
    const router = new Router();
    const seen: string[] = [];
    const answer =
      (tag: string, ok = true) =>
      (_req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
        seen.push(`${tag}:${url.pathname}`);
        if (!ok) return false;
        res.writeHead(200, { 'content-type': 'text/plain' }).end(tag);
        return true;
      };
    router.add('/', (req, res, url) => (url.pathname === '/' ? answer('page')(req, res, url) : false));
    router.add('/assets/', answer('assets'));
    router.add('/api/v1/', async (req, res, url) => {
      await sleep(5);
      return answer('api', url.pathname !== '/api/v1/missing')(req, res, url);
    });
    const s = await start({ router });
    assert.equal((await get(`${s.url}/`)).body, 'page');
    assert.equal((await get(`${s.url}/assets/app.js`)).body, 'assets');
    assert.equal((await get(`${s.url}/api/v1/tree?x=1`)).body, 'api');
    assert.equal((await get(`${s.url}/api/v1/missing`)).status, 404);
    assert.equal((await get(`${s.url}/assetsx`)).status, 404);
    assert.equal((await get(`${s.url}/metrics`)).body, 'cgview_up 1\n', '/metrics is not the routes’');
    const post = await get(`${s.url}/api/v1/tree`, { method: 'POST' });
    assert.equal(post.status, 405, 'only GET and HEAD reach a route');
    assert.ok(
      !seen.includes('api:/api/v1/tree') || seen.filter((x) => x === 'api:/api/v1/tree').length === 1,
    );
    assert.throws(() => router.add('api', answer('x')), /starts with \//);
  });
});

describe('pipelining and slow clients', () => {
  it('pipelined requests are answered in order, one at a time; past the limit the connection is closed unanswered', async () => {
    let n = 0;
    const s = await start({ render: async () => text(`n ${++n}\n`), limits: { maxPipelined: 4 } });
    const c = tcp(s.address.port);
    c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4));
    await waitForAsync(() => c.data().split('HTTP/1.1 200').length - 1 === 4, 10000, 'four answers');
    assert.deepEqual(
      [...c.data().matchAll(/^n (\d+)$/gm)].map((m) => Number(m[1])),
      [1, 2, 3, 4],
    );
    assert.ok(!c.closed());
    // Empty lines between requests are no requests.
    c.sock.write('\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForAsync(() => c.data().includes('n 5'), 10000, 'after empty lines');
    const greedy = tcp(s.address.port);
    greedy.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(5));
    await waitForAsync(() => greedy.closed(), 10000, 'the greedy connection closed');
    assert.equal(greedy.data(), '', 'none of the five answered');
    assert.equal(s.stats.slowOrGreedy, 1);
    c.sock.destroy();
  });

  it('a served connection that trickles its next request head is closed after the headers timeout', async () => {
    const s = await start({ limits: { headersTimeoutMs: 600, keepAliveTimeoutMs: 60000, idleMs: 60000 } });
    const c = tcp(s.address.port);
    c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForAsync(() => c.data().includes('cgview_up 1'), 10000, 'served');
    const head = 'GET /metrics HTTP/1.1\r\nHost: x\r\n';
    let i = 0;
    const timer = setInterval(() => {
      if (!c.closed()) c.sock.write(i < head.length ? head[i++]! : 'X');
    }, 50);
    try {
      await waitForAsync(() => c.closed(), 10000, 'the trickling connection closed');
    } finally {
      clearInterval(timer);
    }
    assert.equal(c.data().split('HTTP/1.1 200').length - 1, 1);
  });

  it('a client that stops reading a big answer is closed after CGVIEW_HTTP_WRITE_STALL_MS; memory stays bounded; others are served', async (t) => {
    // One 16 MiB body for every scrape, as the exporter's scrape cache gives concurrent scrapers
    // (fresh bodies would add one per admitted connection: CGVIEW_HTTP_MAX_CONNECTIONS × the body).
    const big = text('x'.repeat(16 << 20));
    const s = await start({
      render: async (req) => (req.accept === 'small' ? text('ok\n') : big),
      limits: { writeStallMs: 1000, maxConnections: 16, maxWaiting: 64 },
    });
    const mem = new RssPeak(process.pid);
    // Raw sockets that keep nothing: what they would receive stays in the kernel while they are paused.
    const readers = Array.from({ length: 48 }, () => {
      const c = net.connect(s.address.port, '127.0.0.1');
      let closed = false;
      c.on('error', () => {});
      c.on('close', () => {
        closed = true;
      });
      c.pause();
      c.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
      return { sock: c, closed: () => closed };
    });
    try {
      // Others are served while the slow ones hold their slots, or once they are closed.
      await waitForAsync(
        async () => {
          const c = tcp(s.address.port);
          c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: small\r\nConnection: close\r\n\r\n');
          await waitForAsync(() => c.closed(), 20000, 'a small scrape');
          return /^HTTP\/1.1 200/.test(c.data());
        },
        30000,
        'a scrape served beside stalled readers',
      );
      // The daemon's side: every reader was served and closed for stalling.
      await waitForAsync(() => s.stats.slowOrGreedy >= 48, 30000, 'every stalled reader closed');
      mem.stop();
      // A paused socket sees its close only when it reads again.
      for (const r of readers) r.sock.on('data', () => {}).resume();
      await waitForAsync(() => readers.every((r) => r.closed()), 30000, 'every reader saw its close');
    } finally {
      mem.stop();
      for (const r of readers) r.sock.destroy();
    }
    t.diagnostic(
      `RSS ${mem.base >> 20} MiB -> peak ${mem.peak >> 20} MiB with 48 readers of 16 MiB answers that never read; closed for stalling: ${s.stats.slowOrGreedy}`,
    );
    // The body is held once; what each connection adds is bounded (a slice and the socket's buffer).
    assert.ok(mem.peak - mem.base < 100 << 20, `RSS grew by ${(mem.peak - mem.base) >> 20} MiB`);
  });

  it('a route that writes without minding backpressure to a client that does not read is closed past CGVIEW_HTTP_MAX_QUEUED_WRITE_BYTES', async () => {
    const router = new Router();
    let closed = 0;
    router.add('/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = Buffer.alloc(64 << 10, 'e');
      const timer = setInterval(() => {
        for (let i = 0; i < 16; i++) res.write(chunk);
      }, 5);
      res.on('close', () => {
        clearInterval(timer);
        closed++;
      });
      return true;
    });
    const s = await start({ router, limits: { maxQueuedWriteBytes: 2 << 20, writeStallMs: 60000 } });
    const c = tcp(s.address.port);
    c.sock.pause();
    c.sock.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForAsync(() => closed === 1, 20000, 'the stream closed');
    assert.equal(s.stats.slowOrGreedy, 1);
    assert.equal((await get(`${s.url}/metrics`)).status, 200);
    c.sock.destroy();
  });

  it('at most CGVIEW_HTTP_MAX_SCRAPES renders at once', async () => {
    let now = 0;
    let most = 0;
    const s = await start({
      limits: { maxScrapes: 2 },
      render: async () => {
        now++;
        most = Math.max(most, now);
        await sleep(50);
        now--;
        return text('ok\n');
      },
    });
    const all = await Promise.all(Array.from({ length: 10 }, () => get(`${s.url}/metrics`)));
    assert.ok(all.every((a) => a.status === 200));
    assert.equal(most, 2);
  });

  it('connections past the total wait unread for a slot instead of being reset', async () => {
    const s = await start({ limits: { maxConnections: 2, maxWaiting: 8, keepAliveTimeoutMs: 200 } });
    // A burst of eight new connections for two slots: none closes another before it was read.
    const many = await Promise.all(Array.from({ length: 8 }, () => get(`${s.url}/metrics`)));
    assert.ok(many.every((a) => a.status === 200));
    assert.equal(s.stats.refused, 0);
  });

  it('a steady flood of idle connections from one address cannot push another address out of the waiting queue', async () => {
    const s = await start({ limits: { maxConnections: 2, maxWaiting: 2 } });
    const port = s.address.port;
    const idle: Array<ReturnType<typeof tcp>> = [];
    const flood = (n: number) => {
      for (let i = 0; i < n; i++) idle.push(tcp(port, '127.0.0.1', '127.0.0.2'));
    };
    try {
      flood(2);
      await waitForAsync(() => s.stats.connections === 2, 10000, 'two idle connections admitted');
      flood(2);
      await waitForAsync(() => s.stats.waiting === 2, 10000, 'two idle connections waiting');
      // The queue is full when the scraper comes, and fills again behind it.
      const first = getFrom(`${s.url}/metrics`, '127.0.0.1');
      await waitForAsync(() => s.stats.refused === 1, 10000, 'one refused for the scraper');
      flood(4);
      assert.equal((await first).status, 200);
      // And with the flood kept up: 8 idle connections of 127.0.0.2, reopened as they are closed.
      let on = true;
      const keep = (async () => {
        while (on) {
          const live = idle.filter((c) => !c.closed()).length;
          flood(Math.max(0, 8 - live));
          await sleep(10);
        }
      })();
      try {
        for (let i = 0; i < 5; i++)
          assert.equal((await getFrom(`${s.url}/metrics`, '127.0.0.1')).status, 200);
      } finally {
        on = false;
        await keep;
      }
      assert.ok(s.stats.refused + s.stats.evicted > 4, JSON.stringify(s.stats));
    } finally {
      for (const c of idle) c.sock.destroy();
    }
  });

  it('an address holding every slot with requests in progress, past its share, makes room for another address', async () => {
    const router = new Router();
    router.add('/hang', () => true); // takes the request, never answers
    const s = await start({ router, limits: { maxConnections: 4, maxConnectionsPerAddress: 2 } });
    const hogs = Array.from({ length: 4 }, () => {
      const c = tcp(s.address.port, '127.0.0.1', '127.0.0.2');
      c.sock.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
      return c;
    });
    try {
      await waitForAsync(() => s.stats.requests === 4, 10000, 'four requests in progress');
      await sleep(300); // past the grace of newcomers
      const a = await getFrom(`${s.url}/metrics`, '127.0.0.1');
      assert.equal(a.status, 200);
      assert.equal(s.stats.evicted, 1);
      assert.equal(hogs.filter((c) => c.closed()).length, 1, 'one of the four closed');
    } finally {
      for (const c of hogs) c.sock.destroy();
    }
  });

  it('an answer not finished within CGVIEW_HTTP_ANSWER_TIMEOUT_MS closes its connection; event streams are exempt', async () => {
    const router = new Router();
    router.add('/hang', () => true); // takes the request, never answers
    router.add('/events', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(':\n\n');
      return true;
    });
    const s = await start({ router, limits: { answerTimeoutMs: 300, idleMs: 600_000 } });
    const hang = tcp(s.address.port);
    hang.sock.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
    const events = tcp(s.address.port);
    events.sock.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForAsync(() => hang.closed(), 10000, 'the unanswered request closed');
    assert.equal(hang.data(), '');
    assert.equal(s.stats.answerTimeouts, 1);
    await sleep(600);
    assert.ok(!events.closed(), 'the event stream is still open');
    assert.match(events.data(), /^HTTP\/1.1 200/);
    events.sock.destroy();
  });
});

describe('TLS and basic authentication', () => {
  const pki = makePki();
  const hash = hashOf('right');
  const webTls = (extra = '') =>
    `tls_server_config:\n  cert_file: ${pki.certFile}\n  key_file: ${pki.keyFile}\n${extra}basic_auth_users:\n  prom: ${hash}\n`;

  it('wrong and missing credentials get 401 with WWW-Authenticate, right ones 200, over TLS', async () => {
    const s = await start({
      web: `${webTls()}http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n`,
    });
    assert.match(s.url, /^https:\/\/127\.0\.0\.1:/);
    const url = `${s.url}/metrics`;
    const ca = pki.caFile;
    for (const o of [
      {},
      { user: 'prom', password: 'wrong' },
      { user: 'nobody', password: 'right' },
      { user: 'prom', password: '' },
    ]) {
      const a = await get(url, { ca, ...o });
      assert.equal(a.status, 401, JSON.stringify(o));
      assert.equal(a.headers['www-authenticate'], 'Basic realm="cgview", charset="UTF-8"');
      assert.equal(a.headers['x-content-type-options'], 'nosniff');
      assert.ok(!a.body.includes('cgview_up'));
    }
    const ok = await get(url, { ca, user: 'prom', password: 'right' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'cgview_up 1\n');
    // Routes and 404s are behind the same check.
    assert.equal((await get(`${s.url}/nope`, { ca })).status, 401);
    assert.equal((await get(`${s.url}/nope`, { ca, user: 'prom', password: 'right' })).status, 404);
    assert.equal(s.stats.unauthorized, 5);
    // Plain HTTP to the TLS port gets no answer of ours.
    const plain = tcp(s.address.port);
    plain.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForAsync(() => plain.closed(), 10000, 'plain HTTP closed');
    assert.ok(!plain.data().includes('cgview_up'));
  });

  it('client certificates: RequireAndVerifyClientCert refuses a client without one or with an unknown one', async () => {
    const s = await start({
      web: webTls(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${pki.caFile}\n`),
    });
    const url = `${s.url}/metrics`;
    await assert.rejects(get(url, { ca: pki.caFile, user: 'prom', password: 'right' }));
    // A certificate the CA did not sign: the server's own key pair, self-signed by another CA.
    const other = makePki();
    await assert.rejects(
      get(url, {
        ca: pki.caFile,
        user: 'prom',
        password: 'right',
        cert: other.clientCert,
        key: other.clientKey,
      }),
    );
    const ok = await get(url, {
      ca: pki.caFile,
      user: 'prom',
      password: 'right',
      cert: pki.clientCert,
      key: pki.clientKey,
    });
    assert.equal(ok.status, 200);
    assert.ok(s.stats.tlsErrors >= 1);
  });

  it('VerifyClientCertIfGiven: no certificate is fine, a bad one is not', async () => {
    const s = await start({
      web: webTls(`  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ${pki.caFile}\n`),
    });
    const url = `${s.url}/metrics`;
    assert.equal((await get(url, { ca: pki.caFile, user: 'prom', password: 'right' })).status, 200);
    const other = makePki();
    await assert.rejects(
      get(url, {
        ca: pki.caFile,
        user: 'prom',
        password: 'right',
        cert: other.clientCert,
        key: other.clientKey,
      }),
    );
  });

  it('a failed password closes the connection after its 401: no guesses pipelined; a missing one keeps it', async () => {
    const s = await start({ web: `basic_auth_users:\n  prom: ${hash}\n` });
    const auth = `Basic ${Buffer.from('prom:guess').toString('base64')}`;
    const c = tcp(s.address.port);
    c.sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`.repeat(3));
    await waitForAsync(() => c.closed(), 10000, 'closed after the first 401');
    assert.equal(c.data().split('HTTP/1.1 401').length - 1, 1, c.data());
    assert.match(c.data(), /\r\nconnection: close\r\n/i);
    const m = tcp(s.address.port);
    m.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
    await waitForAsync(() => m.data().split('HTTP/1.1 401').length - 1 === 2, 10000, 'two 401s');
    assert.ok(!m.closed());
    m.sock.destroy();
  });

  it('after a Connection: close answer the slot is freed even if the client never ends its side', async () => {
    const s = await start({ web: `basic_auth_users:\n  prom: ${hash}\n` });
    const auth = `Basic ${Buffer.from('prom:guess').toString('base64')}`;
    // Half-open client: it never sends its FIN; the rest of what it pipelined waits unread.
    const c = net.connect({ port: s.address.port, host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    c.on('data', (b) => {
      data += b;
    });
    c.on('error', () => {});
    c.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`.repeat(4));
    try {
      await waitForAsync(() => data.includes('401'), 10000, 'the 401');
      await waitForAsync(() => s.stats.connections === 0, 10000, 'the slot freed');
      assert.equal(data.split('HTTP/1.1 ').length - 1, 1, 'nothing it pipelined after is answered');
    } finally {
      c.destroy();
    }
  });

  it('connections waiting for a bcrypt check make room for others; one check at a time per address', async () => {
    // Cost 13: long enough that the checks are still running when the newcomer comes.
    const s = await start({
      web: `basic_auth_users:\n  prom: ${hashOf('right', 13)}\n`,
      limits: { maxConnections: 2, maxWaiting: 8 },
    });
    const guess = { authorization: `Basic ${Buffer.from('prom:guess').toString('base64')}` };
    let answered = 0;
    const guesses = ['127.0.0.2', '127.0.0.3'].map((from) =>
      getFrom(`${s.url}/metrics`, from, guess).then(
        () => answered++,
        () => null, // closed to make room
      ),
    );
    await waitForAsync(() => s.stats.connections === 2 && s.stats.requests === 2, 10000, 'two checks');
    // No credentials: no bcrypt, an answer as soon as it has a slot.
    const other = await getFrom(`${s.url}/metrics`, '127.0.0.1');
    assert.equal(other.status, 401);
    assert.equal(answered, 0, 'served before either check was done');
    assert.ok(s.stats.evicted >= 1, JSON.stringify(s.stats));
    await Promise.all(guesses);
    // One address, two guesses at once: checked one after the other, each closed after its 401.
    const two = await Promise.all([
      getFrom(`${s.url}/metrics`, '127.0.0.4', guess),
      getFrom(`${s.url}/metrics`, '127.0.0.4', guess),
    ]);
    assert.deepEqual(
      two.map((a) => [a.status, a.headers.connection]),
      [
        [401, 'close'],
        [401, 'close'],
      ],
    );
  });

  it('a changed certificate is used for new connections', async () => {
    const d = tmpDir('reload');
    const cert = writeFile(d, 'cert.pem', (await import('node:fs')).readFileSync(pki.certFile, 'utf8'));
    const key = writeFile(d, 'key.pem', (await import('node:fs')).readFileSync(pki.keyFile, 'utf8'));
    const s = await start({ web: `tls_server_config:\n  cert_file: ${cert}\n  key_file: ${key}\n` });
    assert.equal((await get(`${s.url}/metrics`, { ca: pki.caFile })).status, 200);
    const next = makePki();
    const fs = await import('node:fs');
    fs.copyFileSync(next.keyFile, key);
    fs.copyFileSync(next.certFile, cert);
    // Checked at most every 5 s, at a connection.
    await waitForAsync(
      async () => {
        try {
          return (await get(`${s.url}/metrics`, { ca: next.caFile })).status === 200;
        } catch {
          return false;
        }
      },
      20000,
      'the new certificate served',
    );
  });
});
