/**
 * A view pin is adopted on restart only if it reads the collector that runs
 * now: if the collector had to be started afresh (its pins were lost), the
 * old pins (which would show the old maps' frozen numbers) are replaced.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, pinnedLinkId } from '../daemon.js';
import { removeTree } from '../helpers.js';

describe('collector replaced while the daemon was down', () => {
  it('re-pins the views that read it; keeps the ones that do not', async () => {
    const env = daemonEnv();
    fs.mkdirSync(path.join(env.cgroupRoot, 'a'));
    let d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    const sl = path.join(env.bpffs, 'a', 'sched_lat');
    const info = path.join(env.bpffs, 'a', 'info');
    const before = { sl: pinnedLinkId(sl), info: pinnedLinkId(info) };
    await d.stop();

    // The collector's pins are lost (as after an unclean reboot of bpffs state, or by hand).
    removeTree(path.join(env.privateDir, 'sched_lat@0'));
    d = await Daemon.start(env);
    const st = await d.status();
    const c = (st as unknown as { collectors: Record<string, { adopted: boolean }> }).collectors[
      'sched_lat@0'
    ];
    assert.equal(c?.adopted, false, 'a new collector was started');
    assert.notEqual(pinnedLinkId(sl), before.sl, 'the sched_lat pin was replaced');
    assert.equal(pinnedLinkId(info), before.info, 'the info pin was adopted');
    assert.match(fs.readFileSync(sl, 'utf8'), /^cgroup_id: \d+$/m);

    // A plain restart adopts everything.
    const again = { sl: pinnedLinkId(sl), info: pinnedLinkId(info) };
    await d.stop();
    d = await Daemon.start(env);
    assert.deepEqual({ sl: pinnedLinkId(sl), info: pinnedLinkId(info) }, again);
    await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);
    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    await d.stop();
  });
});
