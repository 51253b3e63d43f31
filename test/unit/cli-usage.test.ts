/**
 * The command line end to end: bin/cgview as a child process, its arguments
 * passed as raw bytes, talking to a fake daemon on a temporary UNIX socket
 * that records each request (no root, no kernel). Exit status 2 for usage
 * errors, 1 for failures, 0 otherwise (docs/errors.md).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cgviewBytes } from '../bytes.js';

/** A fake daemon: answers every request with `answer` and keeps the requests. */
class FakeDaemon {
  readonly requests: Array<{ op: string; args?: Record<string, unknown> }> = [];
  readonly socket: string;
  #server: net.Server;
  answer: unknown = { dir: '/t', name: 'x', tagged: false, cgroup: '/c', inherit: false, mode: 'auto' };

  constructor(dir: string) {
    this.socket = path.join(dir, 'fake.sock');
    this.#server = net.createServer((s) => {
      let buf = '';
      s.setEncoding('latin1');
      s.on('data', (c: string) => {
        buf += c;
        const i = buf.indexOf('\n');
        if (i < 0) return;
        this.requests.push(JSON.parse(buf.slice(0, i)));
        s.end(`${JSON.stringify({ ok: true, result: this.answer })}\n`, 'latin1');
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.socket, resolve));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

describe('bin/cgview', () => {
  let tmp: string;
  let fake: FakeDaemon;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-args-'));
    fake = new FakeDaemon(tmp);
    await fake.listen();
  });
  after(async () => {
    await fake.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pins under the name "-v" with --name -v (the value is not taken for --verbose)', async () => {
    fake.requests.length = 0;
    const r = await cgviewBytes(['pin', 'info', '/t', '--name', '-v', '--socket', fake.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0]!.args!['name'], '-v');
  });

  it('still takes -v as --verbose where it is an option', async () => {
    fake.requests.length = 0;
    const r = await cgviewBytes(['pin', 'info', '/t', '-v', '--inherit', '--socket', fake.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fake.requests[0]!.args!['name'], undefined);
    assert.equal(fake.requests[0]!.args!['inherit'], true);
  });

  it('sends byte-string paths to the daemon unchanged and prints its answer as bytes', async () => {
    fake.requests.length = 0;
    const dir = '/t/\xff\xfe\n- %x';
    fake.answer = { path: `${dir}/info`, inherited: false, untagged: false };
    const r = await cgviewBytes(['unpin', '--socket', fake.socket, `${dir}/info`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fake.requests[0]!.args!['path'], `${dir}/info`);
    assert.equal(r.stdout, `unpinned ${dir}/info\n`);
  });

  it('exits 2 for usage errors, before anything is asked of the daemon', async () => {
    fake.requests.length = 0;
    for (const argv of [
      ['pin', 'info', '/t', '--bogus', '--socket', fake.socket],
      ['pin', 'info', '/t', '--socket', fake.socket, '--name'],
      ['pin', 'info', '--socket', fake.socket],
      ['pin', 'info', '/t', '--mode', 'sideways', '--socket', fake.socket],
      ['unpin', '/a', '/b', '--socket', fake.socket],
      ['ls', '--inherit', '--socket', fake.socket],
      ['status', 'extra', '--socket', fake.socket],
      ['doctor', 'extra'],
      ['nosuchcommand'],
      ['constructor'],
      ['__proto__'],
      [],
    ]) {
      const r = await cgviewBytes(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /cgview: |usage: /);
    }
    assert.equal(fake.requests.length, 0);
  });

  it('exits 1 for an error of the command itself', async () => {
    const r = await cgviewBytes(['status', '--socket', path.join(tmp, 'nothing.sock')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not running/);
  });

  it('exits 0 for --help', async () => {
    const r = await cgviewBytes(['pin', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: cgview/);
  });
});
