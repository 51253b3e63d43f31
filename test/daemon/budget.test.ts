/**
 * The control socket opened to everyone (--socket-mode 666) against many
 * connections of one unprivileged user (`nobody`): root keeps slots of its
 * own, each uid has a cap, what all clients together make the daemon hold is
 * bounded (RSS), and a refused CLI says E_BUSY rather than EPIPE.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Daemon, type DaemonEnv, daemonEnv, runAs, waitForAsync } from '../daemon.js';
import { CGVIEW, RssPeak, rssBytes, sleep } from '../helpers.js';

const NOBODY = 65534;

/**
 * A child process run as `uid` opening `n` connections. `hold`: each sends
 * a ping and keeps its connection; `flood`: each writes `mib` MiB of
 * status requests `times` times and never reads. It prints one JSON line
 * ({served, busy, closed, offered}) once every connection is settled, and
 * keeps the connections until it is killed.
 */
const SCRIPT = `
const net = require('node:net');
const [file, n, kind, mib, times] = process.argv.slice(1);
const chunk = Buffer.from('{"op":"status"}\\n'.repeat(Math.round((Number(mib) * 1048576) / 16)));
const st = { served: 0, busy: 0, closed: 0, offered: 0 };
let settled = 0;
const settle = () => { if (++settled === Number(n)) process.stdout.write(JSON.stringify(st) + '\\n'); };
const socks = [];
for (let i = 0; i < Number(n); i++) {
  const c = net.connect(file);
  socks.push(c);
  let buf = '';
  let done = false;
  const once = (k) => { if (!done) { done = true; st[k]++; settle(); } };
  c.on('error', () => {});
  c.on('close', () => once('closed'));
  c.on('connect', () => {
    if (kind === 'hold') {
      c.setEncoding('latin1');
      c.on('data', (s) => {
        buf += s;
        if (buf.includes('"E_BUSY"')) once('busy');
        else if (buf.includes('"ok":true')) once('served');
      });
      c.write('{"op":"ping"}\\n');
    } else {
      c.pause();
      // The same buffer each time: this process holds it once.
      for (let k = 0; k < Number(times); k++) { c.write(chunk); st.offered += chunk.length; }
      once('served');
    }
  });
}
// SIGUSR2: how many of its connections are open now.
process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ live: socks.filter((c) => !c.destroyed && !c.closed).length }) + '\\n'));
setInterval(() => {}, 1 << 30);
`;

interface Opened {
  served: number;
  busy: number;
  closed: number;
  offered: number;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts the child as `uid`; resolves with its line once every connection settled. */
function openAs(
  uid: number,
  socket: string,
  n: number,
  kind: 'hold' | 'flood',
  mib = 0,
  times = 0,
): Promise<{ child: ChildProcess; opened: Opened }> {
  const child = spawn(process.execPath, ['-e', SCRIPT, socket, String(n), kind, String(mib), String(times)], {
    uid,
    gid: uid,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (s: string) => {
      out += s;
      const i = out.indexOf('\n');
      if (i < 0) return;
      child.stdout!.off('data', on);
      resolve({ child, opened: JSON.parse(out.slice(0, i)) as Opened });
    };
    child.stdout!.setEncoding('utf8').on('data', on);
    child.on('exit', (code) => reject(new Error(`client exited ${code}`)));
  });
}

/** How many connections of a child made by openAs are open now. */
function liveOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    let out = '';
    const on = (s: Buffer | string) => {
      out += s.toString();
      const m = /\{"live":(\d+)\}\n/.exec(out);
      if (m) {
        child.stdout!.off('data', on);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', on);
    child.kill('SIGUSR2');
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
    children.delete(child);
  });
}

/** A daemon on a socket everyone may connect to. */
async function openDaemon(env: DaemonEnv, vars: Record<string, string>): Promise<Daemon> {
  // The socket's directory must be reachable by others for the mode to matter.
  fs.chmodSync(path.dirname(env.socket), 0o711);
  return Daemon.start(env, { args: ['--socket-mode', '666'], env: vars });
}

describe('control socket shared with unprivileged users', () => {
  it('root can pin while nobody holds every connection others may have', async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, {
      CGVIEW_MAX_CLIENTS: '6',
      CGVIEW_ROOT_CLIENTS: '2',
      CGVIEW_MAX_CLIENTS_PER_UID: '100',
    });
    const { child, opened } = await openAs(NOBODY, env.socket, 10, 'hold');
    const r = await d.cli(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    assert.equal(r.code, 0, `root's pin while nobody holds its share:\n${r.stderr}`);
    assert.equal(opened.served, 4, `nobody got its share (6 - 2 kept for root): ${JSON.stringify(opened)}`);
    assert.equal(opened.busy, 6, JSON.stringify(opened));
    await stopChild(child);
    await d.stop();
  });

  it('caps the connections of one uid other than root', async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, { CGVIEW_MAX_CLIENTS_PER_UID: '3' });
    const { child, opened } = await openAs(NOBODY, env.socket, 10, 'hold');
    assert.equal(opened.served, 3, JSON.stringify(opened));
    assert.equal(opened.busy, 7, JSON.stringify(opened));
    // What the refused are told, through the CLI of that user.
    const cli = await runAs(NOBODY, NOBODY, process.execPath, [CGVIEW, 'ls', '--socket', env.socket]);
    assert.equal(cli.code, 1, cli.stdout);
    assert.match(cli.stderr, /uid 65534 has 3 connections to the daemon already \(at most 3\)/);
    assert.match(cli.stderr, /hint: try again later/);
    // Root is not counted with them.
    assert.equal((await d.cli(['ls'])).code, 0);
    await stopChild(child);
    // Gone: the uid may connect again.
    await waitForAsync(
      async () =>
        (await runAs(NOBODY, NOBODY, process.execPath, [CGVIEW, 'ls', '--socket', env.socket])).code === 0,
      10000,
      'nobody served again',
    );
    await d.stop();
  });

  it('a uid holding the whole share of others gives up idle connections to other uids', async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, {
      CGVIEW_MAX_CLIENTS: '12',
      CGVIEW_ROOT_CLIENTS: '2',
      CGVIEW_MAX_CLIENTS_PER_UID: '100',
    });
    // One uid (of many a user may have) takes the 10 slots of others.
    const hog = await openAs(60001, env.socket, 10, 'hold');
    const newcomers: ChildProcess[] = [];
    try {
      assert.equal(hog.opened.served, 10, JSON.stringify(hog.opened));
      // Six other uids come, one connection each: each is served, the hog's oldest idle one makes room.
      for (let uid = 60002; uid <= 60007; uid++) {
        const o = await openAs(uid, env.socket, 1, 'hold');
        newcomers.push(o.child);
        assert.equal(o.opened.served, 1, `uid ${uid}: ${JSON.stringify(o.opened)}`);
      }
      await waitForAsync(async () => (await liveOf(hog.child)) === 4, 10000, 'the hog down to 4 connections');
      // The hog itself gets no more: no uid holds more than its own 4 + 1.
      const more = await openAs(60001, env.socket, 1, 'hold');
      newcomers.push(more.child);
      assert.equal(more.opened.busy, 1, JSON.stringify(more.opened));
      const control = ((await d.status()) as unknown as { control: Record<string, number> }).control;
      assert.equal(control['evictedClients'], 6, JSON.stringify(control));
      // Root is unaffected.
      assert.equal((await d.cli(['ls'])).code, 0);
    } finally {
      await stopChild(hog.child);
      for (const c of newcomers) await stopChild(c);
    }
    await d.stop();
  });

  it('a refused CLI reports the E_BUSY answer, not EPIPE', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { env: { CGVIEW_MAX_CLIENTS: '2' } });
    const held: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const c = net.connect(env.socket);
      c.on('error', () => {});
      held.push(c);
      await new Promise<void>((resolve) => {
        c.once('data', () => resolve());
        c.write('{"op":"ping"}\n');
      });
    }
    try {
      // The race between the daemon's close and the client's write is lost
      // often, not always: a few tries.
      for (let i = 0; i < 5; i++) {
        const r = await d.cli(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot]);
        assert.equal(r.code, 1, r.stdout);
        assert.doesNotMatch(r.stderr, /EPIPE|ECONNRESET/);
        assert.match(r.stderr, /the daemon serves 2 clients already\n {2}hint: try again later/);
      }
    } finally {
      for (const c of held) c.destroy();
    }
    await d.stop();
  });

  it('300 unprivileged clients pipelining without reading keep the daemon bounded; it still answers', async (t) => {
    const env = daemonEnv();
    const d = await openDaemon(env, { CGVIEW_MAX_CLIENTS_PER_UID: '1000' });
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    const mem = new RssPeak(d.pid);
    const base = mem.base;
    let child: ChildProcess | null = null;
    try {
      // 300 connections × 3 MiB = 900 MiB offered.
      const started = openAs(NOBODY, env.socket, 300, 'flood', 1, 3);
      const { child: c, opened } = await started;
      child = c;
      assert.equal(opened.served + opened.closed, 300);
      // Let the daemon take what it will; a broken daemon is stopped before it eats the host.
      for (let i = 0; i < 40 && mem.peak - base < 600 << 20; i++) await sleep(100);
      // Root is still served meanwhile.
      const st = await d.cli(['status', '--json']);
      assert.equal(st.code, 0, st.stderr);
      const control = (JSON.parse(st.stdout) as { control: Record<string, number> }).control;
      t.diagnostic(
        `RSS ${base >> 20} MiB -> peak ${mem.peak >> 20} MiB with 300 clients offering ${(opened.offered / 1048576).toFixed(0)} MiB; control ${JSON.stringify(control)}`,
      );
    } finally {
      if (child) await stopChild(child);
    }
    // The flood gone (what the daemon had read of it is answered to nobody), unprivileged peers are served again.
    const r = await runAs(NOBODY, NOBODY, process.execPath, [CGVIEW, 'status', '--socket', env.socket]);
    await sleep(1000);
    mem.stop();
    t.diagnostic(
      `peak ${mem.peak >> 20} MiB, also while the flood was gone; ${rssBytes(d.pid) >> 20} MiB after`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      mem.peak - base < 200 << 20,
      `daemon RSS grew by ${(mem.peak - base) >> 20} MiB (from ${base >> 20} MiB) under 300 flooding clients`,
    );
    await d.stop();
  });

  it('past CGVIEW_MAX_TOTAL_BYTES the clients holding most are dropped; other users are still answered', async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, {
      CGVIEW_MAX_CLIENTS_PER_UID: '1000',
      CGVIEW_PAUSE_TOTAL_BYTES: String(1 << 20),
      CGVIEW_MAX_TOTAL_BYTES: String(4 << 20),
    });
    // Another user holding idle connections (0 bytes held): never dropped.
    const idle = await openAs(4243, env.socket, 5, 'hold');
    assert.equal(idle.opened.served, 5, JSON.stringify(idle.opened));
    const { child } = await openAs(NOBODY, env.socket, 80, 'flood', 1, 1);
    try {
      const dropped = async () =>
        ((await d.status()) as unknown as { control: { droppedClients: number } }).control.droppedClients;
      await waitForAsync(async () => (await dropped()) > 0, 15000, 'clients dropped past the total');
      // Another user, reading its answers, gets a whole status while the flood holds the budget.
      const other = await runAs(4242, 4242, process.execPath, [
        CGVIEW,
        'status',
        '--json',
        '--socket',
        env.socket,
      ]);
      assert.equal(other.code, 0, other.stderr);
      assert.ok((JSON.parse(other.stdout) as { roots: unknown[] }).roots, other.stdout);
      // Settled: each drop counted once, and only clients that held something.
      await sleep(1000);
      const n = await dropped();
      const floodLive = await liveOf(child);
      assert.equal(n, 80 - floodLive, `droppedClients ${n}, flood connections closed ${80 - floodLive}`);
      assert.equal(await liveOf(idle.child), 5, 'the idle connections of another user survive');
    } finally {
      await stopChild(child);
      await stopChild(idle.child);
    }
    await d.stop();
  });

  it('a client waiting for the budget is read again once it has read its answers, while others keep the total high', async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, {
      CGVIEW_PAUSE_TOTAL_BYTES: String(64 << 10),
      CGVIEW_MAX_TOTAL_BYTES: String(64 << 20),
    });
    // Root keeps the total high: it pipelines status requests and does not read.
    const root = net.connect(env.socket);
    root.on('error', () => {});
    try {
      await new Promise<void>((resolve) => root.once('connect', () => resolve()));
      root.pause();
      root.write('{"op":"status"}\n'.repeat(4000));
      await waitForAsync(
        async () =>
          ((await d.status()) as unknown as { control: { heldBytes: number } }).control.heldBytes > 64 << 10,
        15000,
        "root's answers held past the pause",
      );
      // nobody pipelines 3000 status requests, reads nothing for a second (its
      // answers pile up: it waits for the budget), then reads every answer.
      const script = `
        const c = require('node:net').connect(${JSON.stringify(env.socket)});
        let n = 0;
        c.on('connect', () => { c.pause(); c.write('{"op":"status"}\\n'.repeat(3000)); setTimeout(() => c.resume(), 1000); });
        c.setEncoding('latin1');
        c.on('data', (s) => { n += s.split('\\n').length - 1; if (n >= 3000) { console.log(n); process.exit(0); } });
        setTimeout(() => { console.log(n); process.exit(0); }, 12000);`;
      const r = await runAs(NOBODY, NOBODY, process.execPath, ['-e', script]);
      assert.equal(
        r.stdout.trim(),
        '3000',
        `answers nobody got while root held the total: ${r.stdout}${r.stderr}`,
      );
    } finally {
      root.destroy();
    }
    await d.stop();
  });

  it("root's own backlog past CGVIEW_MAX_TOTAL_BYTES drops no other client", async () => {
    const env = daemonEnv();
    const d = await openDaemon(env, {
      CGVIEW_PAUSE_TOTAL_BYTES: String(64 << 10),
      CGVIEW_MAX_TOTAL_BYTES: String(256 << 10),
    });
    const idle = await openAs(NOBODY, env.socket, 5, 'hold');
    assert.equal(idle.opened.served, 5, JSON.stringify(idle.opened));
    // Root pipelines 4000 status requests and does not read the answers.
    const root = net.connect(env.socket);
    root.on('error', () => {});
    try {
      await new Promise<void>((resolve) => root.once('connect', () => resolve()));
      root.pause();
      root.write('{"op":"status"}\n'.repeat(4000));
      await waitForAsync(
        async () =>
          ((await d.status()) as unknown as { control: { heldBytes: number } }).control.heldBytes > 256 << 10,
        15000,
        "root's answers held past the total",
      );
      await sleep(500);
      const control = ((await d.status()) as unknown as { control: { droppedClients: number } }).control;
      assert.equal(control.droppedClients, 0, JSON.stringify(control));
      assert.equal(await liveOf(idle.child), 5, "nobody's idle connections survive root's backlog");
      const log = d.stderr.split('\n').filter((l) => l.includes('dropped')).length;
      assert.equal(log, 0, 'no drop logged');
    } finally {
      root.destroy();
      await stopChild(idle.child);
    }
    await d.stop();
  });
});
