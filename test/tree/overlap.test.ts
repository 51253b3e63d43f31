/**
 * Two trees whose cgroups overlap (one on a cgroup, one on a sub-tree of it)
 * share inotify watches (the kernel gives one per directory): both must
 * follow new cgroups, and untagging one must not blind the other.
 */

import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, expectedListing, mkCgroups, treeListing, waitForEqual } from '../daemon.js';
import { tmpBpffsDir } from '../helpers.js';

describe('overlapping trees', () => {
  it('both follow new cgroups, also after the other is untagged', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['sub']);
    const d = await Daemon.start(env);
    const treeB = path.join(tmpBpffsDir(), 'b');
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await d.ok(['pin', 'info', treeB, '--inherit', '--cgroup', path.join(cg, 'sub')]);
    mkCgroups(cg, ['sub/x', 'sub/x/y', 'sub/z']);
    const both = async (what: string) => {
      await waitForEqual(
        () => treeListing(env.bpffs),
        () => expectedListing(cg, [{ name: 'info' }]),
        5000,
        `${what}: tree A`,
      );
      await waitForEqual(
        () => treeListing(treeB),
        () => expectedListing(path.join(cg, 'sub'), [{ name: 'info' }]),
        5000,
        `${what}: tree B`,
      );
    };
    await both('new cgroups');
    // Untagging B leaves A following the sub-tree.
    await d.ok(['unpin', path.join(treeB, 'info')]);
    fs.mkdirSync(path.join(cg, 'sub', 'x', 'late'));
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, [{ name: 'info' }]),
      5000,
      'A after B untagged',
    );
    await d.stop();
  });
});
