/**
 * --web-config: the exporter-toolkit YAML subset cgview takes (strict: file,
 * line and what is wrong), and basic authentication against bcrypt hashes
 * (remembered right passwords, unknown users checked as dearly as known ones,
 * a bounded bcrypt queue).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { threadId } from 'node:worker_threads';
import { BasicAuth, loadWebConfig, parseWebConfig } from '../../src/daemon/webconfig.js';
import { CgviewError } from '../../src/errors.js';
import { hashOf, makePki, tmpDir, writeFile } from './http-util.js';

const HASH = hashOf('s3cret');

function rejects(text: string, re: RegExp, file = '/etc/cgview/web.yml'): void {
  assert.throws(
    () => parseWebConfig(text, file),
    (e: unknown) => {
      assert.ok(e instanceof CgviewError, String(e));
      assert.equal(e.code, 'E_BAD_INPUT');
      assert.match(e.message, re);
      return true;
    },
  );
}

describe('web config parsing', () => {
  it('takes TLS (paths relative to the file), users and headers', () => {
    const pki = makePki();
    const file = path.join(pki.dir, 'web.yml');
    const cfg = parseWebConfig(
      [
        '# a comment',
        'tls_server_config:',
        '  cert_file: server.pem',
        `  key_file: ${pki.keyFile}`,
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_ca_file: "ca.pem"',
        '  min_version: TLS13',
        'basic_auth_users:',
        `  prometheus: ${HASH}`,
        `  "other user": '${HASH.replace('$2b$', '$2y$')}'`,
        'http_server_config:',
        '  http2: false',
        '  headers:',
        '    x-frame-options: deny',
        '    Strict-Transport-Security: max-age=31536000',
        '',
      ].join('\n'),
      file,
    );
    assert.deepEqual(cfg.tls, {
      certFile: pki.certFile,
      keyFile: pki.keyFile,
      clientAuth: 'RequireAndVerifyClientCert',
      clientCaFile: pki.caFile,
      minVersion: 'TLSv1.3',
      maxVersion: undefined,
    });
    assert.deepEqual([...cfg.users.keys()], ['prometheus', 'other user']);
    assert.deepEqual(cfg.headers, {
      'X-Frame-Options': 'deny',
      'Strict-Transport-Security': 'max-age=31536000',
    });
  });

  it('a user name of digits is a name', () => {
    const cfg = parseWebConfig(`basic_auth_users:\n  1234: ${HASH}\n`, '/x/web.yml');
    assert.deepEqual([...cfg.users.keys()], ['1234']);
  });

  it('user names that YAML would read as numbers keep their spelling (0x10, 1.50, 007, true)', () => {
    const cfg = parseWebConfig(
      `basic_auth_users:\n  0x10: ${HASH}\n  1.50: ${HASH}\n  007: ${HASH}\n  true: ${HASH}\n  "0x11": ${HASH}\n`,
      '/x/web.yml',
    );
    assert.deepEqual([...cfg.users.keys()], ['0x10', '1.50', '007', 'true', '0x11']);
  });

  it('bcrypt hashes: only $2a$, $2b$, $2y$ with cost 04-31', () => {
    const body = HASH.slice(7); // past "$2b$04$"
    for (const bad of [`$2$04$${body}`, `$2x$04$${body}`])
      rejects(`basic_auth_users:\n  prom: '${bad}'\n`, /:2: basic_auth_users.prom is not a bcrypt hash/);
    for (const c of ['00', '03', '32', '99'])
      rejects(
        `basic_auth_users:\n  prom: '$2b$${c}$${body}'\n`,
        new RegExp(`:2: basic_auth_users.prom: bcrypt cost ${c} is outside 04-31`),
      );
    for (const ok of [`$2a$04$${body}`, `$2y$31$${body}`, `$2b$10$${body}`])
      assert.equal(parseWebConfig(`basic_auth_users:\n  prom: '${ok}'\n`, '/x/web.yml').users.size, 1);
  });

  it('header values Node would refuse at every answer are refused at start-up, with the line', () => {
    rejects(
      'http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: "default-src \u2014 self"\n',
      /^--web-config \/etc\/cgview\/web.yml:4: http_server_config.headers.Content-Security-Policy: not a valid header value/,
    );
    rejects(
      'http_server_config:\n  headers:\n    X-Frame-Options: "a\\x01b"\n',
      /:3: http_server_config.headers.X-Frame-Options: not a valid header value/,
    );
    rejects(
      'http_server_config:\n  headers:\n    X-Frame-Options: "a\\nb"\n',
      /:3: http_server_config.headers.X-Frame-Options: not a valid header value/,
    );
    // Latin-1 and tabs are what Node sends.
    assert.equal(
      parseWebConfig('http_server_config:\n  headers:\n    X-Frame-Options: "d\\tény"\n', '/x/web.yml')
        .headers['X-Frame-Options'],
      'd\tény',
    );
  });

  it('an empty file, or empty sections, configure nothing', () => {
    for (const text of ['', '# nothing\n', 'basic_auth_users:\ntls_server_config:\n']) {
      const cfg = parseWebConfig(text, '/x/web.yml');
      assert.equal(cfg.tls, undefined);
      assert.equal(cfg.users.size, 0);
    }
  });

  it('names the file, the line and what is wrong', () => {
    const f = '/etc/cgview/web.yml';
    rejects(
      `basic_auth_users:\n  a: ${HASH}\ntls_config:\n  cert_file: x\n`,
      /^--web-config \/etc\/cgview\/web.yml:3: unknown key "tls_config"/,
      f,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n',
      /:4: unknown key "tls_server_config.certfile"/,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n',
      /:4: tls_server_config.cipher_suites is an exporter-toolkit option cgview does not support/,
    );
    rejects('basic_auth_users:\n  prom: plaintext\n', /:2: basic_auth_users.prom is not a bcrypt hash/);
    rejects('basic_auth_users:\n  prom: [a, b]\n', /:2: basic_auth_users.prom must be a non-empty string/);
    rejects(
      'tls_server_config:\n  cert_file: a.pem\n',
      /:1: tls_server_config needs both cert_file and key_file/,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n',
      /:4: tls_server_config.client_auth_type must be one of NoClientCert, /,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n',
      /:4: .*min_version must be one of TLS10/,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n',
      /client_ca_file but client_auth_type NoClientCert/,
    );
    rejects(
      'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n',
      /needs client_ca_file/,
    );
    rejects(
      'http_server_config:\n  headers:\n    Set-Cookie: a=b\n',
      /:3: http_server_config.headers: Set-Cookie cannot be set/,
    );
    rejects('http_server_config:\n  timeout: 5\n', /:2: unknown key "http_server_config.timeout"/);
    rejects('- a\n- b\n', /the file must be a mapping/);
    // YAML errors: with their line.
    rejects(`basic_auth_users:\n  a: ${HASH}\n  a: ${HASH}\n`, /:3: not valid YAML: .*unique/i);
    rejects('basic_auth_users:\n  a: "unclosed\n', /:[23]: not valid YAML: .*quote/);
    rejects('tls_server_config:\n\tcert_file: a\n', /:2: not valid YAML/);
  });

  it('reads the certificate and key at start-up: missing files, a key of another certificate', () => {
    const pki = makePki();
    rejects(
      `tls_server_config:\n  cert_file: ${pki.certFile}\n  key_file: /nonexistent/k.pem\n`,
      /key_file \/nonexistent\/k.pem: ENOENT/,
    );
    rejects(
      `tls_server_config:\n  cert_file: ${pki.certFile}\n  key_file: ${pki.clientKey}\n`,
      /cert_file .* key_file .*: .*(key values mismatch|KEY_VALUES_MISMATCH)/i,
    );
  });

  it('loadWebConfig: a missing file is E_NOT_FOUND with its path; a directory is refused', () => {
    const d = tmpDir('webcfg');
    assert.throws(() => loadWebConfig(path.join(d, 'nope.yml')), /--web-config .*nope.yml: ENOENT/);
    assert.throws(() => loadWebConfig(d), /not a regular file/);
    const f = writeFile(d, 'web.yml', `basic_auth_users:\n  u: ${HASH}\n`);
    assert.equal(loadWebConfig(f).users.get('u'), HASH);
  });
});

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('basic authentication', () => {
  it('right, wrong, unknown, missing and malformed credentials', async () => {
    const auth = new BasicAuth(new Map([['prom', HASH]]));
    assert.equal(await auth.check(basic('prom', 's3cret')), 'ok');
    assert.equal(await auth.check(basic('prom', 'wrong')), 'wrong');
    assert.equal(await auth.check(basic('prom', '')), 'wrong');
    assert.equal(await auth.check(basic('nobody', 's3cret')), 'wrong');
    assert.equal(await auth.check(undefined), 'missing');
    assert.equal(await auth.check('Bearer abc'), 'malformed');
    assert.equal(await auth.check('Basic !!!'), 'malformed');
    assert.equal(await auth.check(`Basic ${Buffer.from('nocolon').toString('base64')}`), 'malformed');
    // A password with a colon: only the first one separates.
    const auth2 = new BasicAuth(new Map([['u', hashOf('a:b')]]));
    assert.equal(await auth2.check(basic('u', 'a:b')), 'ok');
  });

  it('htpasswd -B hashes ($2y$) verify', async () => {
    const auth = new BasicAuth(new Map([['prom', HASH.replace(/^\$2b\$/, '$2y$')]]));
    assert.equal(await auth.check(basic('prom', 's3cret')), 'ok');
  });

  it('a right password is remembered; wrong ones and unknown users pay bcrypt each time', async () => {
    const auth = new BasicAuth(new Map([['prom', HASH]]));
    assert.equal(await auth.verify('prom', 's3cret'), 'ok');
    assert.equal(auth.bcryptRuns, 1);
    for (let i = 0; i < 5; i++) assert.equal(await auth.verify('prom', 's3cret'), 'ok');
    assert.equal(auth.bcryptRuns, 1, 'remembered: no bcrypt for the same user and password');
    assert.equal(await auth.verify('prom', 's3cre'), 'wrong');
    assert.equal(auth.bcryptRuns, 2, 'a wrong password is checked by bcrypt');
    assert.equal(await auth.verify('nobody', 's3cret'), 'wrong');
    assert.equal(auth.bcryptRuns, 3, 'an unknown user costs a bcrypt check as well');
    assert.equal(await auth.verify('nobody', 's3cret'), 'wrong');
    assert.equal(auth.bcryptRuns, 4);
    // The remembered pair is the user's: the same password under another name is no key.
    assert.equal(await auth.verify('prom', 's3cret'), 'ok');
    assert.equal(auth.bcryptRuns, 4);
  });

  it('an unknown user is checked against the costliest configured hash', async () => {
    const cheap = hashOf('x', 4);
    const dear = hashOf('y', 6);
    const auth = new BasicAuth(
      new Map([
        ['a', cheap],
        ['b', dear],
      ]),
    );
    // Verified against `dear`: its own password still fails for a user that is not there.
    assert.equal(await auth.verify('c', 'y'), 'wrong');
    assert.equal(await auth.verify('b', 'y'), 'ok');
  });

  it('bcrypt runs one at a time with a bounded queue; past it the answer is busy', async () => {
    const auth = new BasicAuth(new Map([['prom', hashOf('pw', 8)]]), {
      maxCached: 4,
      maxQueued: 2,
      concurrency: 1,
    });
    const all = await Promise.all(Array.from({ length: 6 }, () => auth.verify('prom', 'nope')));
    assert.deepEqual(
      all.slice().sort(),
      ['busy', 'busy', 'busy', 'wrong', 'wrong', 'wrong'],
      'one running, two queued, three refused',
    );
    // A remembered password does not queue behind bcrypt.
    assert.equal(await auth.verify('prom', 'pw'), 'ok');
    const during = Promise.all([auth.verify('x', 'a'), auth.verify('x', 'b'), auth.verify('x', 'c')]);
    assert.equal(await auth.verify('prom', 'pw'), 'ok');
    await during;
  });

  it('bcrypt runs in a worker thread, not on the event loop', async () => {
    const auth = new BasicAuth(new Map([['prom', HASH]]));
    try {
      assert.equal(await auth.verify('prom', 's3cret'), 'ok');
      assert.equal(typeof auth.lastThreadId, 'number');
      assert.notEqual(auth.lastThreadId, threadId);
    } finally {
      auth.close();
    }
  });

  it('one check at a time per key (remote address): the others wait their turn outside the queue; dropped checks never run', async () => {
    const auth = new BasicAuth(new Map([['prom', hashOf('pw', 6)]]), {
      maxCached: 4,
      maxQueued: 1,
      concurrency: 1,
    });
    try {
      // A1 runs, A2 and A3 wait for A's turn (not in the queue), B takes the one queue place, C finds it full.
      const all = await Promise.all([
        auth.verify('prom', 'a1', { key: 'A' }),
        auth.verify('prom', 'a2', { key: 'A' }),
        auth.verify('prom', 'a3', { key: 'A' }),
        auth.verify('prom', 'b', { key: 'B' }),
        auth.verify('prom', 'c', { key: 'C' }),
      ]);
      assert.deepEqual(all, ['wrong', 'wrong', 'wrong', 'wrong', 'busy']);
      assert.equal(auth.bcryptRuns, 4);
      // Dropped from the queue, and dropped while waiting for its key's turn: neither runs.
      const ac = new AbortController();
      const ac2 = new AbortController();
      const first = auth.verify('prom', 'd', { key: 'D' });
      const queued = auth.verify('prom', 'e', { key: 'E', signal: ac.signal });
      const turn = auth.verify('prom', 'd2', { key: 'D', signal: ac2.signal });
      const after = auth.verify('prom', 'd3', { key: 'D' });
      ac.abort();
      ac2.abort();
      assert.deepEqual(await Promise.all([first, queued, turn, after]), ['wrong', 'busy', 'busy', 'wrong']);
      assert.equal(auth.bcryptRuns, 6, 'the dropped checks never ran');
    } finally {
      auth.close();
    }
  });

  it('every check costs the same: known users of any cost and unknown users', async () => {
    const auth = new BasicAuth(
      new Map([
        ['a', hashOf('x', 4)],
        ['b', hashOf('y', 6)],
        ['b2', hashOf('z', 6)],
      ]),
    );
    try {
      const work: number[] = [];
      for (const [u, p] of [
        ['a', 'x'],
        ['a', 'nope'],
        ['b', 'nope'],
        ['nobody', 'x'],
      ] as const) {
        const before = auth.bcryptRounds;
        await auth.verify(u, p);
        work.push(auth.bcryptRounds - before);
      }
      assert.deepEqual(work, [2 ** 4 + 2 ** 6, 2 ** 4 + 2 ** 6, 2 ** 4 + 2 ** 6, 2 ** 4 + 2 ** 6]);
      assert.equal(await auth.verify('a', 'x'), 'ok', 'the padding does not change the answer');
      assert.equal(await auth.verify('b', 'y'), 'ok');
    } finally {
      auth.close();
    }
  });

  it('remembers a bounded number of right passwords', async () => {
    const users = new Map(
      Array.from({ length: 4 }, (_, i) => [`u${i}`, hashOf(`p${i}`)] as [string, string]),
    );
    const auth = new BasicAuth(users, { maxCached: 2, maxQueued: 8, concurrency: 1 });
    for (let i = 0; i < 4; i++) assert.equal(await auth.verify(`u${i}`, `p${i}`), 'ok');
    const runs = auth.bcryptRuns;
    assert.equal(await auth.verify('u3', 'p3'), 'ok');
    assert.equal(auth.bcryptRuns, runs, 'the newest is remembered');
    assert.equal(await auth.verify('u0', 'p0'), 'ok');
    assert.equal(auth.bcryptRuns, runs + 1, 'the oldest was forgotten');
  });
});
