/**
 * The daemon's --listen server as a process: what it says at start, the
 * flags that stop start-up, a real Prometheus scraping over TLS with basic
 * authentication, and hostile clients (garbage, huge headers, 1,000
 * connections at once, connections that never send): the daemon stays up,
 * its RSS stays bounded and scrapes are served.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, waitForAsync } from '../daemon.js';
import { RssPeak, sleep } from '../helpers.js';
import { get, hashOf, makePki, Prometheus, tcp, tmpDir, writeFile } from './http-util.js';

/** The metrics URL a daemon logged when ready. */
async function metricsUrl(d: Daemon): Promise<URL> {
  await waitForAsync(() => /"metrics":"https?:/.test(d.stderr), 15000, 'metrics url in the log');
  return new URL(/"metrics":"(https?:[^"]+)"/.exec(d.stderr)![1]!);
}

/** Starts a daemon that should refuse to start; its exit code and what it said. */
async function refused(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const d = await Daemon.start(daemonEnv(), { args, waitReady: false });
  const exit = await d.waitExit(15000);
  return { code: exit.code, stderr: d.stderr };
}

describe('daemon --listen', () => {
  it('a bare :PORT binds 127.0.0.1 only and says so, in the log and at start', async () => {
    const d = await Daemon.start(daemonEnv(), { args: ['--listen', ':0'] });
    const url = await metricsUrl(d);
    assert.equal(url.hostname, '127.0.0.1');
    await waitForAsync(
      () => /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics; loopback only/.test(d.stdout),
      10000,
      'the start message',
    );
    const listening = d.logs().find((r) => r['msg'] === 'listening');
    assert.ok(listening, d.stderr);
    assert.equal(listening['loopbackOnly'], true);
    assert.equal(listening['tls'], false);
    // Not on another loopback address.
    const err = await new Promise<string>((resolve) => {
      const c = net.connect(Number(url.port), '127.0.0.2');
      c.on('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
    });
    assert.equal(err, 'ECONNREFUSED');
    assert.equal((await get(url.href)).status, 200);
    await d.stop();
  });

  it('beyond loopback without --web-config it warns', async () => {
    const d = await Daemon.start(daemonEnv(), { args: ['--listen', '0.0.0.0:0'] });
    await waitForAsync(() => d.logs().some((r) => r['msg'] === 'listening'), 10000, 'listening');
    const warn = d
      .logs()
      .find((r) => String(r['msg']).startsWith('listening beyond loopback without --web-config'));
    assert.ok(warn, d.stderr);
    assert.equal(d.logs().find((r) => r['msg'] === 'listening')!['loopbackOnly'], false);
    await d.stop();
    const quiet = await Daemon.start(daemonEnv(), { args: ['--listen', '127.0.0.1:0'] });
    await waitForAsync(() => quiet.logs().some((r) => r['msg'] === 'listening'), 10000, 'listening');
    assert.ok(!quiet.stderr.includes('beyond loopback'));
    await quiet.stop();
  });

  it('beyond loopback with a --web-config of neither TLS nor users it warns; with users it does not', async () => {
    const dir = tmpDir('webwarn');
    const headersOnly = writeFile(
      dir,
      'h.yml',
      'http_server_config:\n  headers:\n    X-Frame-Options: deny\n',
    );
    const d = await Daemon.start(daemonEnv(), {
      args: ['--listen', '0.0.0.0:0', '--web-config', headersOnly],
    });
    await waitForAsync(() => d.logs().some((r) => r['msg'] === 'listening'), 10000, 'listening');
    assert.ok(
      d.logs().some((r) => String(r['msg']).startsWith('listening beyond loopback without --web-config')),
      d.stderr,
    );
    await d.stop();
    const users = writeFile(dir, 'u.yml', `basic_auth_users:\n  prom: ${hashOf('x')}\n`);
    const quiet = await Daemon.start(daemonEnv(), { args: ['--listen', '0.0.0.0:0', '--web-config', users] });
    await waitForAsync(() => quiet.logs().some((r) => r['msg'] === 'listening'), 10000, 'listening');
    assert.ok(!quiet.stderr.includes('beyond loopback'), quiet.stderr);
    await quiet.stop();
  });

  it('bad flags and web configs stop start-up with a clear message', async () => {
    const dir = tmpDir('webcfg');
    const unknown = writeFile(
      dir,
      'unknown.yml',
      `basic_auth_users:\n  prom: ${hashOf('x')}\ntls_server_cfg:\n  cert_file: a\n`,
    );
    let r = await refused(['--listen', '127.0.0.1:0', '--web-config', unknown]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`cgview: --web-config ${unknown}:3: unknown key "tls_server_cfg"`));
    assert.match(r.stderr, /hint: the format is the Prometheus exporter toolkit web config/);
    const badHash = writeFile(dir, 'hash.yml', 'basic_auth_users:\n  prom: hunter2\n');
    r = await refused(['--listen', '127.0.0.1:0', '--web-config', badHash]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hash.yml:2: basic_auth_users.prom is not a bcrypt hash/);
    r = await refused(['--listen', '127.0.0.1:0', '--web-config', `${dir}/missing.yml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--web-config .*missing.yml: ENOENT/);
    const noKey = writeFile(
      dir,
      'nokey.yml',
      `tls_server_config:\n  cert_file: ${dir}/c.pem\n  key_file: ${dir}/k.pem\n`,
    );
    r = await refused(['--listen', '127.0.0.1:0', '--web-config', noKey]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cert_file .*c.pem: ENOENT/);
    // Usage errors: exit 2.
    for (const [args, re] of [
      [['--web-config', unknown], /--web-config needs --listen/],
      [['--sample-interval', '0'], /--sample-interval wants seconds from 1 to 3600, got 0/],
      [['--sample-interval', 'fast'], /--sample-interval wants seconds/],
      [['--sample-interval', '10', '--history', '5'], /--history wants seconds from 10 to 604800, got 5/],
      [['--history', '1e9'], /--history wants seconds/],
    ] as Array<[string[], RegExp]>) {
      r = await refused(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    r = await refused(['--listen', '::1:9100']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /put an IPv6 address in brackets/);
    r = await refused(['--metrics-config', `${dir}/nope.yml`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--metrics-config .*nope.yml: ENOENT/);
  });

  it('Prometheus scrapes over TLS with basic auth; wrong and missing credentials get 401', async (t) => {
    const pki = makePki();
    const dir = tmpDir('webcfg');
    const cfg = writeFile(
      dir,
      'web.yml',
      [
        'tls_server_config:',
        `  cert_file: ${pki.certFile}`,
        `  key_file: ${pki.keyFile}`,
        'basic_auth_users:',
        `  prometheus: ${hashOf('scrape-me', 10)}`,
        '',
      ].join('\n'),
    );
    const d = await Daemon.start(daemonEnv(), { args: ['--listen', '127.0.0.1:0', '--web-config', cfg] });
    const url = await metricsUrl(d);
    assert.equal(url.protocol, 'https:');
    await waitForAsync(
      () => /metrics at https:.* \(TLS, basic auth\)/.test(d.stdout),
      10000,
      'the start message',
    );
    const target = `127.0.0.1:${url.port}`;
    const tls = { caFile: pki.caFile, serverName: 'localhost' };
    const prom = await Prometheus.start([
      { name: 'right', targets: [target], tls, basicAuth: { username: 'prometheus', password: 'scrape-me' } },
      { name: 'wrong', targets: [target], tls, basicAuth: { username: 'prometheus', password: 'guess' } },
      { name: 'nobody', targets: [target], tls, basicAuth: { username: 'nobody', password: 'scrape-me' } },
      { name: 'none', targets: [target], tls },
    ]);
    try {
      await prom.waitTargets('right', (ts) => ts.every((x) => x.health === 'up'));
      for (const job of ['wrong', 'nobody', 'none'])
        await prom.waitTargets(job, (ts) => ts.every((x) => x.health === 'down' && /401/.test(x.lastError)));
      // Prometheus' own up series: 1 where the scrape succeeded, 0 where it was refused.
      await waitForAsync(
        async () => (await prom.query('up{job="right"}')).some((x) => x.value === 1),
        30000,
        'up 1 over TLS with the right password',
      );
      for (const job of ['wrong', 'nobody', 'none'])
        assert.deepEqual(
          (await prom.query(`up{job="${job}"}`)).map((x) => x.value),
          [0],
          job,
        );
      // What the daemon serves reached Prometheus (the metric names are the exporter's: any cgview_ series).
      const names = (await prom.query('count by (__name__) ({__name__=~"cgview_.+", job="right"})')).map(
        (x) => x.metric['__name__'],
      );
      assert.ok(names.length > 0, 'cgview series scraped');
      assert.deepEqual(await prom.query('count({__name__=~"cgview_.+", job!="right"})'), []);
      const wrong = (await prom.targets()).find((x) => x.labels['job'] === 'wrong');
      t.diagnostic(`wrong password: ${wrong?.lastError}`);
    } finally {
      await prom.stop();
    }
    // The same from a plain client.
    assert.equal((await get(url.href, { ca: pki.caFile })).status, 401);
    assert.equal((await get(url.href, { ca: pki.caFile, user: 'prometheus', password: 'x' })).status, 401);
    assert.equal(
      (await get(url.href, { ca: pki.caFile, user: 'prometheus', password: 'scrape-me' })).status,
      200,
    );
    // Refusals are logged, at most 10 lines a minute.
    const lines = d.logs().filter((r) => String(r['msg']).startsWith('HTTP request refused'));
    assert.ok(lines.length >= 1 && lines.length <= 11, `${lines.length} refusal lines`);
    assert.ok(!d.stderr.includes('guess'), 'no password in the log');
    await d.stop();
  });

  it('garbage, huge headers, 1,000 connections at once: the daemon stays up, bounded, and serves scrapes', async (t) => {
    const d = await Daemon.start(daemonEnv(), { args: ['--listen', '127.0.0.1:0'] });
    const url = await metricsUrl(d);
    const port = Number(url.port);
    const mem = new RssPeak(d.pid);
    const ok = async () => {
      const c = tcp(port);
      c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await waitForAsync(() => c.closed(), 20000, 'a scrape');
      return /^HTTP\/1.1 200/.test(c.data());
    };
    try {
      // Garbage: random bytes, and lines that look like HTTP but are not.
      const junk = [
        ...Array.from({ length: 40 }, () => randomBytes(64 << 10)),
        Buffer.from('GET\r\n\r\n'),
        Buffer.from('GET /metrics HTTP/9.9\r\n\r\n'),
        Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
        Buffer.from('\0\0\0\0'.repeat(1000)),
        Buffer.from('GET /metrics HTTP/1.1\r\n' + 'X: y\r\n'.repeat(5000) + '\r\n'),
      ];
      const answers = await Promise.all(
        junk.map(async (b) => {
          const c = tcp(port);
          c.sock.on('connect', () => c.sock.write(b));
          await waitForAsync(() => c.closed(), 20000, 'garbage closed');
          return c.data().slice(0, 12);
        }),
      );
      assert.ok(
        answers.every((a) => !a.includes('200')),
        JSON.stringify(answers),
      );
      assert.ok(await ok(), 'served after garbage');
      // Huge headers: 1 MiB in one header line, and a header block that never ends.
      const huge = tcp(port);
      huge.sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Huge: ${'h'.repeat(1 << 20)}\r\n\r\n`);
      await waitForAsync(() => huge.closed(), 20000, 'huge headers closed');
      assert.match(huge.data(), /^HTTP\/1.1 431/);
      const endless = tcp(port);
      endless.sock.write('GET /metrics HTTP/1.1\r\n');
      for (let i = 0; i < 64 && !endless.closed(); i++) {
        endless.sock.write(`X-${i}: ${'e'.repeat(1000)}\r\n`);
        await sleep(2);
      }
      await waitForAsync(() => endless.closed(), 20000, 'endless headers closed');
      // 1,000 connections at once, each sending a scrape.
      const many = Array.from({ length: 1000 }, () => {
        const c = tcp(port);
        c.sock.on('connect', () =>
          c.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        );
        return c;
      });
      await waitForAsync(() => many.every((c) => c.closed()), 60000, '1,000 connections closed');
      const served = many.filter((c) => /^HTTP\/1.1 200/.test(c.data())).length;
      t.diagnostic(`1,000 connections at once: ${served} served, the rest closed unanswered`);
      assert.ok(served >= 16, `${served} of 1,000 served`);
      assert.ok(await ok(), 'served after 1,000 connections');
      // 1,000 that connect and never send: held unread, closed, and the scraper is served meanwhile.
      const silent = Array.from({ length: 1000 }, () => tcp(port));
      await sleep(500);
      assert.ok(await ok(), 'served beside 1,000 silent connections');
      for (const c of silent) c.sock.destroy();
    } finally {
      mem.stop();
    }
    t.diagnostic(`daemon RSS ${mem.base >> 20} MiB -> peak ${mem.peak >> 20} MiB`);
    assert.equal(d.exit, null, 'the daemon is up');
    assert.ok(mem.peak - mem.base < 100 << 20, `daemon RSS grew by ${(mem.peak - mem.base) >> 20} MiB`);
    await d.stop();
  });
});
