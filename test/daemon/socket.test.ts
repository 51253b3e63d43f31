/**
 * The control socket under hostile and careless clients: malformed and
 * mistyped requests, floods of garbage, pipelining without reading, long
 * lines, idle clients, too many clients, bursts of connects while the daemon
 * is busy; and the same kind of limits on the --listen HTTP server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, waitForAsync } from '../daemon.js';
import { RssPeak, rssBytes, sleep } from '../helpers.js';

/** A raw client of the control socket: lines in, lines out. */
class Raw {
  readonly sock: net.Socket;
  readonly lines: string[] = [];
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  #buf = '';

  constructor(file: string, read = true) {
    this.sock = net.connect(file);
    this.sock.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
    });
    this.sock.on('close', () => {
      this.closed = true;
    });
    if (read) {
      this.sock.setEncoding('latin1');
      this.sock.on('data', (s: string) => {
        this.#buf += s;
        for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
          this.lines.push(this.#buf.slice(0, i));
          this.#buf = this.#buf.slice(i + 1);
        }
      });
    }
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.sock.readyState === 'open') resolve();
      this.sock.once('connect', () => resolve());
      this.sock.once('error', reject);
    });
  }

  /** Sends lines and waits for as many answers, parsed. */
  async ask(...reqs: string[]): Promise<Array<Record<string, unknown>>> {
    const start = this.lines.length;
    this.sock.write(reqs.map((r) => `${r}\n`).join(''), 'latin1');
    await waitForAsync(() => this.lines.length >= start + reqs.length || this.closed, 15000, 'answers');
    return this.lines.slice(start).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  close(): void {
    this.sock.destroy();
  }
}

function errorOf(res: Record<string, unknown>): { code: string; message: string } {
  assert.equal(res['ok'], false, JSON.stringify(res));
  return res['error'] as { code: string; message: string };
}

describe('control socket', () => {
  it('answers malformed JSON, non-requests and mistyped fields with E_BAD_INPUT and no stack', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const c = new Raw(env.socket);
    // A directory of the test's own: were a mistyped pin taken, it would land (and be cleaned up) there.
    const dir = JSON.stringify(path.join(env.bpffsParent, 'x'));
    const res = await c.ask(
      'this is not json',
      '[1,2]',
      '{"op":42}',
      '{"op":"ls","args":{"dir":123}}',
      '{"op":"ls","args":"x"}',
      '{"op":"pin","args":{"view":"info"}}',
      `{"op":"pin","args":{"view":"info","dir":${dir},"inherit":"yes"}}`,
      `{"op":"pin","args":{"view":"info","dir":${dir},"fileMode":1.5}}`,
      '{"op":"unpin","args":{"path":"/x","extra":1}}',
      '{"op":"no-such-op"}',
    );
    assert.equal(res.length, 10);
    for (const r of res) assert.equal(errorOf(r).code, 'E_BAD_INPUT', JSON.stringify(r));
    assert.match(errorOf(res[3]!).message, /dir must be a string/);
    // The connection still serves good requests.
    const [ok] = await c.ask('{"op":"ls","args":{}}');
    assert.equal(ok!['ok'], true);
    c.close();
    assert.ok(!d.stderr.includes('"stack"'), `no stack for bad input:\n${d.stderr}`);
    const st = (await d.status()) as unknown as { badRequests: number };
    assert.equal(st.badRequests, 10);
    await d.stop();
  });

  it('10 MB of garbage: answered, counted, a few log lines, the daemon stays responsive', async (t) => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const logBefore = d.stderr.split('\n').length;
    const c = new Raw(env.socket);
    await c.connected();
    const lines = 100_000;
    const t0 = Date.now();
    let sent = 0;
    // Lines of random bytes (no newline in them), not JSON: each is one bad request.
    while (sent < lines) {
      const batch: Buffer[] = [];
      for (let i = 0; i < 1000; i++, sent++) {
        const b = randomBytes(99);
        for (let j = 0; j < b.length; j++) if (b[j] === 0x0a) b[j] = 0x20;
        b[0] = 0x23; // '#': never JSON
        batch.push(b, Buffer.from('\n'));
      }
      if (!c.sock.write(Buffer.concat(batch)))
        await new Promise<void>((resolve) => c.sock.once('drain', () => resolve()));
    }
    await waitForAsync(() => c.lines.length >= lines || c.closed, 120000, 'every garbage line answered');
    assert.equal(c.lines.length, lines);
    t.diagnostic(`${lines} garbage lines (${(lines * 100) >> 20} MiB) answered in ${Date.now() - t0} ms`);
    assert.equal(errorOf(JSON.parse(c.lines[lines - 1]!) as Record<string, unknown>).code, 'E_BAD_INPUT');
    assert.equal((await d.cli(['status'])).code, 0, 'responsive');
    c.close();
    await waitForAsync(() => d.stderr.includes('were not logged'), 10000, 'the summary line at close');
    const logged = d.stderr.split('\n').length - logBefore;
    assert.ok(logged <= 10, `${logged} log lines for 100,000 bad requests:\n${d.stderr.slice(-3000)}`);
    const st = (await d.status()) as unknown as {
      badRequests: number;
      control: { logSuppressed: number };
    };
    assert.equal(st.badRequests, lines);
    assert.ok(st.control.logSuppressed >= lines - 10);
    await d.stop();
  });

  it('a client that pipelines requests and never reads the answers keeps the daemon bounded', async (t) => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const base = rssBytes(d.pid);
    const c = new Raw(env.socket, false); // never reads
    await c.connected();
    const req = Buffer.from('{"op":"status"}\n'.repeat(65536)); // 1 MiB of requests
    let written = 0;
    let peak = base;
    // 40 MiB of requests offered (what the daemon does not take waits in this
    // process); stop early if the daemon grew too much, so that a broken
    // daemon does not eat the host.
    for (let i = 0; i < 40; i++) {
      c.sock.write(req);
      written += req.length;
      await sleep(50);
      peak = Math.max(peak, rssBytes(d.pid));
      if (peak - base > 200 << 20) break;
    }
    await sleep(1000);
    peak = Math.max(peak, rssBytes(d.pid));
    const taken = written - c.sock.writableLength;
    t.diagnostic(
      `RSS ${base >> 20} -> peak ${peak >> 20} MiB; ${written >> 20} MiB written, ${taken >> 20} MiB left the client`,
    );
    assert.ok(
      peak - base < 100 << 20,
      `daemon RSS grew by ${((peak - base) >> 20).toString()} MiB (from ${base >> 20} MiB) after ${taken >> 20} MiB of requests`,
    );
    // Others are still served.
    assert.equal((await d.cli(['status'])).code, 0);
    c.close();
    await d.stop();
  });

  it('refuses a request line longer than the limit, with an answer', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const c = new Raw(env.socket);
    await c.connected();
    c.sock.write(`{"op":"ls","args":{"dir":"${'a'.repeat(200 << 10)}`);
    await waitForAsync(() => c.lines.length > 0, 10000, 'an answer');
    const e = errorOf(JSON.parse(c.lines[0]!) as Record<string, unknown>);
    assert.equal(e.code, 'E_BAD_INPUT');
    assert.match(e.message, /at most 65536 bytes/);
    await waitForAsync(() => c.closed, 10000, 'the client closed');
    await d.stop();
  });

  it('refuses clients over the cap', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { env: { CGVIEW_MAX_CLIENTS: '4' } });
    const four = [0, 1, 2, 3].map(() => new Raw(env.socket));
    // Accepted and served: each answers a ping.
    for (const r of await Promise.all(four.map((c) => c.ask('{"op":"ping"}'))))
      assert.equal(r[0]!['ok'], true);
    const fifth = new Raw(env.socket);
    await waitForAsync(() => fifth.lines.length > 0 || fifth.closed, 10000, 'the fifth client answered');
    assert.equal(errorOf(JSON.parse(fifth.lines[0]!) as Record<string, unknown>).code, 'E_BUSY');
    await waitForAsync(() => fifth.closed, 10000, 'the fifth client closed');
    // One goes: there is room again.
    four[0]!.close();
    await waitForAsync(
      async () => {
        const c = new Raw(env.socket);
        const [r] = await c.ask('{"op":"ping"}');
        c.close();
        return r?.['ok'] === true;
      },
      10000,
      'a client served again',
    );
    for (const c of four) c.close();
    const st = (await d.status()) as unknown as { control: { refusedClients: number } };
    assert.ok(st.control.refusedClients >= 1);
    await d.stop();
  });

  it('closes idle clients, also one that stopped reading its answers', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { env: { CGVIEW_CLIENT_IDLE_MS: '500' } });
    const silent = new Raw(env.socket);
    await silent.connected();
    // Asks a lot, never reads: its answers back up, the daemon stops reading it, then nothing moves.
    const deaf = new Raw(env.socket, false);
    await deaf.connected();
    deaf.sock.write('{"op":"status"}\n'.repeat(1 << 17));
    await waitForAsync(() => silent.closed, 15000, 'the silent client closed');
    const idleClosed = async () =>
      ((await d.status()) as unknown as { control: { idleClosed: number } }).control.idleClosed;
    await waitForAsync(async () => (await idleClosed()) === 2, 15000, 'both idle clients closed');
    deaf.close();
    await d.stop();
  });

  it('takes a burst of connects while the daemon is busy without refusing any', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    // More than Node's default backlog (511), within what the kernel allows.
    const n = Math.min(900, somaxconn - 10);
    assert.ok(n > 600, `net.core.somaxconn=${somaxconn} is too small for this test`);
    // Busy: the daemon takes nothing from its listen queue while stopped.
    d.signal('SIGSTOP');
    const clients: Raw[] = [];
    try {
      for (let i = 0; i < n; i++) clients.push(new Raw(env.socket));
      // Every connect is done or refused by the kernel while the daemon is stopped.
      await Promise.all(clients.map((c) => c.connected().catch(() => {})));
    } finally {
      d.signal('SIGCONT');
    }
    const refused = clients.filter((c) => c.error !== null);
    assert.equal(refused.length, 0, `${refused.length} of ${n} refused: ${refused[0]?.error?.code}`);
    const answers = await Promise.all(clients.map((c) => c.ask('{"op":"ping"}')));
    assert.ok(answers.every((a) => a[0]?.['ok'] === true));
    for (const c of clients) c.close();
    await d.stop();
  });
});

/** The metrics URL a daemon logged at start. */
async function metricsUrl(d: Daemon): Promise<URL> {
  await waitForAsync(() => /"metrics":"http:/.test(d.stderr), 10000, 'metrics url in the log');
  return new URL(/"metrics":"(http:[^"]+)"/.exec(d.stderr)![1]!);
}

/** A raw TCP client: what it received, and whether it was closed. */
function tcp(
  url: URL,
  localAddress?: string,
): { sock: net.Socket; data: () => string; closed: () => boolean } {
  const sock = net.connect({
    port: Number(url.port),
    host: url.hostname,
    ...(localAddress ? { localAddress } : {}),
  });
  let data = '';
  let closed = false;
  sock.setEncoding('latin1');
  sock.on('data', (s: string) => {
    data += s;
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
  });
  return { sock, data: () => data, closed: () => closed };
}

const GET = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';

describe('--listen limits', () => {
  it('caps connections and header size', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0'],
      env: {
        CGVIEW_HTTP_MAX_CONNECTIONS: '3',
        CGVIEW_HTTP_MAX_HEADER_BYTES: '4096',
        CGVIEW_HTTP_KEEPALIVE_MS: '60000',
      },
    });
    const url = await metricsUrl(d);
    // Headers over the limit: 431.
    const big = tcp(url);
    big.sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(6000)}\r\n\r\n`);
    await waitForAsync(() => big.data().length > 0 || big.closed(), 10000, 'an answer to big headers');
    assert.match(big.data(), /^HTTP\/1.1 431/);
    await waitForAsync(() => big.closed(), 10000, 'the big-header connection closed');
    // Three keep-alive connections, each served once and kept open.
    const three = [tcp(url), tcp(url), tcp(url)];
    for (const c of three) {
      c.sock.write(GET);
      await waitForAsync(() => c.data().includes('cgview_up 1'), 10000, 'a served request');
    }
    assert.ok(three.every((c) => !c.closed()));
    // The fourth makes room: the oldest idle one is closed and the fourth served.
    const fourth = tcp(url);
    fourth.sock.on('connect', () => fourth.sock.write(GET));
    await waitForAsync(() => fourth.data().includes('cgview_up 1'), 10000, 'the fourth connection served');
    await waitForAsync(() => three[0]!.closed(), 10000, 'the oldest idle connection closed');
    assert.ok(!three[1]!.closed() && !three[2]!.closed());
    for (const c of [...three, fourth]) c.sock.destroy();
    await d.stop();
  });

  /** Connections from `addr` that send nothing and are opened again as soon as they are closed. */
  function idleFlood(url: URL, addr: string, n: number): { stop: () => void; reopened: () => number } {
    let stopped = false;
    let reopened = 0;
    const socks = new Set<net.Socket>();
    const open = () => {
      if (stopped) return;
      const c = tcp(url, addr);
      socks.add(c.sock);
      c.sock.on('close', () => {
        socks.delete(c.sock);
        reopened++;
        setImmediate(open);
      });
    };
    for (let i = 0; i < n; i++) open();
    return {
      stop: () => {
        stopped = true;
        for (const s of socks) s.destroy();
      },
      reopened: () => reopened,
    };
  }

  async function scrape(url: URL): Promise<string> {
    const c = tcp(url);
    c.sock.on('connect', () => c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    await waitForAsync(() => c.closed(), 10000, 'a scrape answered or closed');
    return c.data();
  }

  it('idle connections of other users, reopened as they close, do not lock the scraper out', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0'],
      env: { CGVIEW_HTTP_MAX_CONNECTIONS: '16', CGVIEW_HTTP_FIRST_REQUEST_MS: '300' },
    });
    const url = await metricsUrl(d);
    // One address over its cap (8), and three more filling the total (16) with idle connections.
    const floods = [
      idleFlood(url, '127.0.0.2', 20),
      ...['127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => idleFlood(url, a, 8)),
    ];
    try {
      await sleep(1000);
      for (let i = 0; i < 5; i++) {
        const got = await scrape(url);
        assert.match(
          got,
          /^HTTP\/1.1 200/,
          `scrape ${i} under the idle flood: ${JSON.stringify(got.slice(0, 80))}`,
        );
      }
      // Idle connections were closed after the first-request timeout and came back.
      assert.ok(floods[1]!.reopened() > 8, `idle connections closed: ${floods[1]!.reopened()}`);
    } finally {
      for (const f of floods) f.stop();
    }
    await d.stop();
  });

  it('idle connections from the address of the scraper, reopened as they close, do not lock it out', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { args: ['--listen', '127.0.0.1:0'] });
    const url = await metricsUrl(d);
    // Another local user on 127.0.0.1 too: more than the cap per address (8) and than the total (16).
    const flood = idleFlood(url, '127.0.0.1', 40);
    try {
      await sleep(1000);
      for (let i = 0; i < 5; i++) {
        const got = await scrape(url);
        assert.match(
          got,
          /^HTTP\/1.1 200/,
          `scrape ${i} under the idle flood: ${JSON.stringify(got.slice(0, 80))}`,
        );
      }
    } finally {
      flood.stop();
    }
    await d.stop();
  });

  it('closes a connection that sends nothing within CGVIEW_HTTP_FIRST_REQUEST_MS', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0'],
      env: { CGVIEW_HTTP_FIRST_REQUEST_MS: '500' },
    });
    const url = await metricsUrl(d);
    const idle = tcp(url);
    // A served keep-alive connection is not closed by it.
    const served = tcp(url);
    served.sock.write(GET);
    await waitForAsync(() => served.data().includes('cgview_up 1'), 10000, 'a served request');
    // Well under the 60 s idle timeout.
    await waitForAsync(() => idle.closed(), 10000, 'the idle connection closed');
    assert.equal(idle.data(), '');
    assert.ok(!served.closed(), 'the served connection is kept (keep-alive 5 s)');
    served.sock.destroy();
    await d.stop();
  });

  it('closes a client that sends its headers too slowly', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0'],
      env: { CGVIEW_HTTP_HEADERS_TIMEOUT_MS: '800' },
    });
    const url = await metricsUrl(d);
    const slow = tcp(url);
    const header = 'GET /metrics HTTP/1.1\r\nHost: x\r\n';
    let i = 0;
    // A byte every 100 ms, never finishing: no idle gap, only the headers timeout ends it.
    const timer = setInterval(() => {
      if (!slow.closed()) slow.sock.write(i < header.length ? header[i++]! : 'X');
    }, 100);
    try {
      await waitForAsync(() => slow.closed(), 15000, 'the slow client closed');
    } finally {
      clearInterval(timer);
    }
    assert.ok(!slow.data().includes('200 OK'));
    await d.stop();
  });

  it('closes a connection that pipelines more requests than the limit without reading', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, {
      args: ['--listen', '127.0.0.1:0'],
      env: { CGVIEW_HTTP_MAX_PIPELINED: '4' },
    });
    const url = await metricsUrl(d);
    const c = tcp(url);
    c.sock.pause();
    c.sock.write(GET.repeat(100));
    await sleep(1000);
    c.sock.resume();
    await waitForAsync(() => c.closed(), 10000, 'the pipelining connection closed');
    const served = c.data().split('cgview_up 1').length - 1;
    assert.ok(served <= 4, `${served} of 100 pipelined requests answered`);
    // Others are served.
    const other = tcp(url);
    other.sock.write(GET);
    await waitForAsync(() => other.data().includes('cgview_up 1'), 10000, 'another client served');
    other.sock.destroy();
    await d.stop();
  });

  it('many connections pipelining without reading keep the daemon bounded', async (t) => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { args: ['--listen', '127.0.0.1:0'] });
    const url = await metricsUrl(d);
    const mem = new RssPeak(d.pid);
    const base = mem.base;
    // 320 connections (more than the default cap, 16) from 40 addresses (8 each, the cap per address) × 3 MiB of GETs, never read.
    const chunk = Buffer.from(GET.repeat(30000));
    const conns = Array.from({ length: 320 }, (_, i) => tcp(url, `127.0.1.${1 + (i % 40)}`));
    try {
      for (const c of conns) {
        c.sock.pause();
        c.sock.on('connect', () => {
          for (let k = 0; k < 3; k++) c.sock.write(chunk);
        });
      }
      for (let i = 0; i < 50 && mem.peak - base < 600 << 20; i++) await sleep(100);
    } finally {
      mem.stop();
      for (const c of conns) c.sock.destroy();
    }
    t.diagnostic(`RSS ${base >> 20} MiB -> peak ${mem.peak >> 20} MiB under 320 pipelining connections`);
    // Typically 80-100 MiB here; once in seven whole-suite runs 355 MiB (what
    // Node had parsed of connections already closed, before a GC). Before the
    // pipelining cap the same load grew the daemon by gigabytes.
    assert.ok(mem.peak - base < 450 << 20, `daemon RSS grew by ${(mem.peak - base) >> 20} MiB`);
    const ok = tcp(url);
    ok.sock.write(GET);
    await waitForAsync(() => ok.data().includes('cgview_up 1'), 10000, 'served after the flood');
    ok.sock.destroy();
    await d.stop();
  });
});
