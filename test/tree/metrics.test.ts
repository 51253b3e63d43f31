/** --listen HOST:PORT serves the daemon's own counters for Prometheus. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv } from '../daemon.js';
import { waitFor } from '../helpers.js';

describe('--listen', () => {
  it('serves /metrics on the address asked for (port 0: any free port, logged)', async () => {
    const env = daemonEnv();
    fs.mkdirSync(path.join(env.cgroupRoot, 'a'));
    const d = await Daemon.start(env, { args: ['--listen', '127.0.0.1:0'] });
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    const url = await waitFor(
      () => /"metrics":"(http:[^"]+)"/.exec(d.stderr)?.[1],
      5000,
      'metrics url in the log',
    );
    assert.ok(url);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^cgview_daemon_up 1$/m);
    assert.match(text, new RegExp(`^cgview_daemon_tree_dirs\\{root="${env.bpffs}"\\} 2$`, 'm'));
    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
    const bad = await Daemon.start(daemonEnv(), { args: ['--listen', 'nonsense'], waitReady: false });
    const exit = await bad.exited;
    assert.equal(exit.code, 1);
    assert.match(bad.stderr, /--listen wants HOST:PORT/);
    await d.stop();
  });
});
