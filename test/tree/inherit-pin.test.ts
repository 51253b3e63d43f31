/**
 * A pin (and unpin) of an inherited view over a tree mirrored already visits
 * only that file of each directory (issue 7: the fast path): the result must
 * be the same tree as a full mirror would make — the view in every mirrored
 * directory, for its cgroup, with its owner and mode; nothing in the
 * directories of manual mode that no user made; and a cgroup made or chowned
 * meanwhile followed as well.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, expectedListing, treeListing, waitForAsync, waitForEqual } from '../daemon.js';
import { waitFor } from '../helpers.js';

const WAIT = 5000;
const USER = 1000;

describe('pin and unpin of an inherited view over a mirrored tree', () => {
  it('auto mode: the same tree as a full mirror, delegated directories included', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    for (const r of ['a', 'a/b', 'a/b/c', 'd', 'sys.slice', 'sys.slice/x']) fs.mkdirSync(path.join(cg, r));
    fs.chownSync(path.join(cg, 'a', 'b'), USER, USER);
    fs.chownSync(path.join(cg, 'a', 'b', 'c'), USER, USER);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'mirrored',
    );

    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--name', 'more', '--file-mode', '0444']);
    // The pin answers once its files are in place: no wait.
    assert.deepEqual(
      treeListing(env.bpffs),
      expectedListing(cg, [{ name: 'info' }, { name: 'more', mode: 0o444 }]),
    );

    // Changes after the pin are followed for both views.
    fs.mkdirSync(path.join(cg, 'd', 'e'));
    fs.chownSync(path.join(cg, 'd'), USER, USER);
    const both = [{ name: 'info' }, { name: 'more', mode: 0o444 }];
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, both),
      WAIT,
      'd/e, and d re-owned',
    );

    // A cgroup made under the view's name is not mirrored (the view wins)...
    fs.mkdirSync(path.join(cg, 'a', 'more'));
    await waitForAsync(
      async () => (await d.status()).roots[0]!.conflicts.includes('a/more'),
      WAIT,
      'the conflict',
    );
    // ...until the view goes: then it is.
    await d.ok(['unpin', path.join(env.bpffs, 'more')]);
    assert.deepEqual(treeListing(env.bpffs), expectedListing(cg, [{ name: 'info' }]));
    assert.deepEqual((await d.status()).roots[0]!.conflicts, []);
    const st = await d.status();
    assert.equal(st.opsFailed, 0, d.stderr);
    await d.stop();
  });

  it('manual mode: only the directories users made get the view', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    for (const r of ['a', 'a/b', 'c']) fs.mkdirSync(path.join(cg, r));
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg, '--mode', 'manual']);
    fs.mkdirSync(path.join(env.bpffs, 'a'));
    await waitFor(() => fs.existsSync(path.join(env.bpffs, 'a', 'info')), WAIT, 'a/info');
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--name', 'more']);
    const views = [{ name: 'info' }, { name: 'more' }];
    assert.deepEqual(treeListing(env.bpffs), expectedListing(cg, views, ['', 'a']));
    // A directory made after the pin gets both.
    fs.mkdirSync(path.join(env.bpffs, 'a', 'b'));
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, views, ['', 'a', 'a/b']),
      WAIT,
      'a/b with both views',
    );
    await d.ok(['unpin', path.join(env.bpffs, 'more')]);
    assert.deepEqual(treeListing(env.bpffs), expectedListing(cg, [{ name: 'info' }], ['', 'a', 'a/b']));
    await d.stop();
  });
});
