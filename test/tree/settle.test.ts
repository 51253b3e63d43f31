/**
 * settle() (test/daemon.ts), the event barrier negative checks use instead
 * of a fixed sleep: once it returns, the daemon has handled every event that
 * came before it, in auto mode and in manual mode.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, mkCgroups, settle } from '../daemon.js';

describe('settle', () => {
  it('auto mode: cgroups made before it are mirrored when it returns', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    for (let i = 0; i < 5; i++) {
      mkCgroups(env.cgroupRoot, [`a${i}`, `a${i}/b`]);
      await settle(env.bpffs, env.cgroupRoot);
      assert.ok(fs.existsSync(path.join(env.bpffs, `a${i}`, 'b', 'info')), `a${i}/b/info at once`);
    }
    assert.deepEqual(
      fs.readdirSync(env.bpffs).filter((n) => n.startsWith('settle-')),
      [],
      'no sentinel left',
    );
    await d.stop();
  });

  it('manual mode: a directory made before it is populated or refused when it returns', async () => {
    const env = daemonEnv();
    mkCgroups(env.cgroupRoot, ['job']);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--mode', 'manual', '--cgroup', env.cgroupRoot]);
    fs.mkdirSync(path.join(env.bpffs, 'job'));
    fs.mkdirSync(path.join(env.bpffs, 'nomatch'));
    await settle(env.bpffs, null);
    assert.ok(fs.existsSync(path.join(env.bpffs, 'job', 'info')), 'job/info at once');
    assert.ok(!fs.existsSync(path.join(env.bpffs, 'nomatch')), 'nomatch refused at once');
    await d.stop();
  });
});
