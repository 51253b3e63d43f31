/**
 * --socket-mode 0666: anyone may connect, but what a peer may ask depends on
 * its credentials (SO_PEERCRED): an unprivileged peer may read (ping, ls,
 * status, resolve) and may not pin, unpin or rescan.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { peerCred } from '../../src/kernel/index.js';
import { Daemon, daemonEnv, mkCgroups, runAs, waitForAsync } from '../daemon.js';
import { CGVIEW } from '../helpers.js';

const NOBODY = 65534;

/** Sends request lines as `uid` from a child process; its answers, parsed. */
function askAs(uid: number, socket: string, reqs: object[]): Promise<Array<Record<string, unknown>>> {
  const script = `
    const net = require('node:net');
    const reqs = ${JSON.stringify(reqs)};
    const c = net.connect(${JSON.stringify(socket)});
    let buf = '';
    c.on('connect', () => c.write(reqs.map((r) => JSON.stringify(r) + '\\n').join('')));
    c.on('data', (d) => {
      buf += d;
      if (buf.split('\\n').length > reqs.length) { process.stdout.write(buf); c.destroy(); }
    });
    c.on('error', (e) => { process.stderr.write(String(e)); process.exit(3); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      uid,
      gid: uid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`client exited ${code}: ${err}`));
      else
        resolve(
          out
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        );
    });
  });
}

describe('peer credentials', () => {
  it('SO_PEERCRED names the process at the other end', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const net = await import('node:net');
    const c = net.connect(env.socket);
    await new Promise<void>((resolve) => c.once('connect', () => resolve()));
    const fd = (c as unknown as { _handle: { fd: number } })._handle.fd;
    assert.deepEqual(peerCred(fd), { pid: d.pid, uid: 0, gid: 0 });
    c.destroy();
    assert.throws(() => peerCred(-1));
    await d.stop();
  });

  it('on a 0666 socket an unprivileged peer may read but not pin, unpin or rescan', async () => {
    const env = daemonEnv();
    // The socket's directory must be reachable by others for the mode to matter.
    fs.chmodSync(path.dirname(env.socket), 0o711);
    const d = await Daemon.start(env, { args: ['--socket-mode', '666'] });
    assert.equal(fs.statSync(env.socket).mode & 0o777, 0o666);
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    const reads = await askAs(NOBODY, env.socket, [
      { op: 'ping' },
      { op: 'ls', args: {} },
      { op: 'ls', args: { dir: env.bpffs } },
      { op: 'status' },
      { op: 'resolve', args: { cgroup: env.cgroupRoot } },
    ]);
    assert.equal(reads.length, 5);
    for (const r of reads) assert.equal(r['ok'], true, JSON.stringify(r));
    const writes = await askAs(NOBODY, env.socket, [
      { op: 'pin', args: { view: 'info', dir: env.bpffs, name: 'mine' } },
      { op: 'unpin', args: { path: path.join(env.bpffs, 'info') } },
      { op: 'rescan' },
    ]);
    assert.equal(writes.length, 3);
    for (const r of writes) {
      assert.equal(r['ok'], false, JSON.stringify(r));
      assert.equal((r['error'] as { code: string }).code, 'E_PERMISSION', JSON.stringify(r));
    }
    // The CLI run by that user says so.
    const cli = await runAs(NOBODY, NOBODY, process.execPath, [
      CGVIEW,
      'pin',
      'info',
      env.bpffs,
      '--name',
      'other',
      '--socket',
      env.socket,
    ]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /pin needs root \(the peer is uid 65534\)/);
    const st = (await d.status()) as unknown as {
      roots: Array<{ inherit: Array<{ name: string }> }>;
      control: { deniedRequests: number };
    };
    assert.deepEqual(
      st.roots[0]!.inherit.map((p) => p.name),
      ['info'],
      'nothing pinned or unpinned',
    );
    assert.equal(st.control.deniedRequests, 4);
    // Root on the same socket may.
    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    await d.stop();
  });

  it('an unprivileged peer may ls only directories it could list itself; its status has no paths nor errors', async () => {
    const env = daemonEnv();
    fs.chmodSync(path.dirname(env.socket), 0o711);
    const d = await Daemon.start(env, { args: ['--socket-mode', '666'] });
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    // A cgroup delegated to uid 12345, its mirror closed to others (0700).
    const DELEGATE = 12345;
    mkCgroups(env.cgroupRoot, ['deleg']);
    fs.chownSync(path.join(env.cgroupRoot, 'deleg'), DELEGATE, DELEGATE);
    const mine = path.join(env.bpffs, 'deleg');
    await waitForAsync(
      () => fs.existsSync(mine) && fs.statSync(mine).uid === DELEGATE,
      10000,
      'delegated mirror',
    );
    fs.chmodSync(mine, 0o700);
    const [other, owner, top] = [
      await askAs(NOBODY, env.socket, [{ op: 'ls', args: { dir: mine } }]),
      await askAs(DELEGATE, env.socket, [{ op: 'ls', args: { dir: mine } }]),
      await askAs(NOBODY, env.socket, [
        { op: 'ls', args: { dir: env.bpffs } },
        { op: 'status' },
        { op: 'ls', args: { dir: '/etc' } },
      ]),
    ];
    // Outside the trees nothing is opened for them: not a tree.
    assert.equal((top[2]!['error'] as { code: string }).code, 'E_NOT_TAGGED', JSON.stringify(top[2]));
    assert.equal(other[0]!['ok'], false, JSON.stringify(other[0]));
    assert.equal((other[0]!['error'] as { code: string }).code, 'E_PERMISSION');
    assert.doesNotMatch(JSON.stringify(other[0]), /cgroupId/);
    // The delegate lists its own; root lists everything.
    assert.equal(owner[0]!['ok'], true, JSON.stringify(owner[0]));
    assert.ok(JSON.stringify((await d.cli(['ls', mine, '--json'])).stdout).includes('cgroupId'));
    // The tree's root is readable by all (0755 by default here): listed.
    assert.equal(top[0]!['ok'], true, JSON.stringify(top[0]));
    const st = top[1]!['result'] as Record<string, unknown> & { roots: Array<Record<string, unknown>> };
    assert.equal(st['stateFile'], undefined, 'no state path');
    assert.ok(!JSON.stringify(st).includes(env.state), 'no state path anywhere');
    assert.equal(st.roots[0]!['error'], undefined, 'no errors');
    assert.equal(st.roots[0]!['dir'], env.bpffs, 'the public index');
    await d.stop();
  });
});
