/**
 * --default-views: the views the default tree inherits (the README's first
 * command gives `info,sched_lat`), and a view added to the list later is
 * added to the default tree made by an earlier start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cgview, Daemon, daemonEnv, mkCgroups, settle, treeName, viewCgroupId } from '../daemon.js';
import { uniq } from '../helpers.js';

describe('daemon --default-views', () => {
  it('makes the default tree with the views listed, and adds a missing one at a later start', async () => {
    const env = daemonEnv();
    const leaf = uniq('dv');
    mkCgroups(env.cgroupRoot, [leaf]);
    let d = await Daemon.start(env, { defaultViews: true, args: ['--default-views', 'info'] });
    await settle(env.bpffs, env.cgroupRoot);
    const dir = path.join(env.bpffs, treeName(leaf));
    assert.ok(fs.existsSync(path.join(dir, 'info')));
    assert.ok(!fs.existsSync(path.join(dir, 'sched_lat')));
    await d.stop();

    d = await Daemon.start(env, { defaultViews: true, args: ['--default-views', 'info,sched_lat'] });
    await settle(env.bpffs, env.cgroupRoot);
    // Inherited: in the tree's root, in the leaf, and in a cgroup made now.
    const late = uniq('dv');
    mkCgroups(env.cgroupRoot, [late]);
    await settle(env.bpffs, env.cgroupRoot);
    const id = fs.statSync(path.join(env.cgroupRoot, leaf)).ino.toString();
    assert.equal(viewCgroupId(path.join(dir, 'sched_lat')), id);
    assert.ok(fs.existsSync(path.join(env.bpffs, treeName(late), 'sched_lat')));
    assert.ok(fs.existsSync(path.join(env.bpffs, 'sched_lat')));
    const ls = JSON.parse(await d.ok(['ls', '--json'])) as {
      roots: Array<{ dir: string; inherit: string[] }>;
    };
    const mine = ls.roots.find((r) => r.dir === env.bpffs);
    assert.deepEqual(mine?.inherit.slice().sort(), ['info', 'sched_lat']);
    await d.stop();
  });

  it('refuses an unknown view, a view named twice, and --no-default-views beside it (exit 2)', async () => {
    for (const [list, re] of [
      ['info,nope', /"nope" is not a built-in view/],
      ['info,info', /named twice/],
    ] as const) {
      const r = await cgview(['daemon', '--default-views', list]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
    }
    const r = await cgview(['daemon', '--default-views', 'info', '--no-default-views']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exclude each other/);
  });
});
