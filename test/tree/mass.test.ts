/**
 * Auto mode over a nested tree of 120 cgroups created at once and removed at
 * once: the mirror equals cgroupfs, every view file prints its own cgroup's
 * id, and no iter link is left behind. Links are counted by the test's own
 * cgroup ids and the daemon's own descriptors, never host-wide.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  cgroupId,
  cgroupRels,
  Daemon,
  daemonEnv,
  dirRels,
  expectedListing,
  linksFor,
  mkCgroups,
  rmCgroups,
  treeListing,
  treeRel,
  under,
  viewCgroupId,
  waitForEqual,
} from '../daemon.js';
import { heldBpf, waitFor } from '../helpers.js';

/** 10 parents x 10 children, and 10 grandchildren under one child: 120 cgroups. */
function nestedRels(): string[] {
  const rels: string[] = [];
  for (let p = 0; p < 10; p++) {
    rels.push(`p${p}`);
    for (let c = 0; c < 10; c++) rels.push(`p${p}/c${c}`);
  }
  for (let g = 0; g < 10; g++) rels.push(`p0/c0/g${g}`);
  return rels;
}

describe('auto mode, many cgroups at once', () => {
  it('mirrors 120 nested cgroups exactly and leaves no link behind', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);

    const rels = nestedRels();
    assert.ok(rels.length >= 100);
    mkCgroups(cg, rels);
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      20000,
      'the mirror of 120 cgroups',
    );
    // The same, said plainly: the same set of directories, and each file prints its own cgroup.
    assert.deepEqual(dirRels(tree), cgroupRels(cg).map(treeRel).sort());
    assert.equal(dirRels(tree).length, rels.length + 1);
    const ids = new Map(['', ...rels].map((r) => [r, cgroupId(cg, r)]));
    for (const [rel, id] of ids)
      assert.equal(viewCgroupId(under(tree, rel === '' ? 'info' : `${rel}/info`)), id, rel);
    // One link per directory, no more.
    assert.equal(linksFor(ids.values()).length, rels.length + 1);
    const st = await d.status();
    assert.equal(st.roots[0]?.dirs, rels.length + 1, 'status counts the mirrored directories');
    assert.equal(st.opsFailed, 0);

    // Removed at once: only the root is left, and the links of the removed cgroups are gone (S4).
    rmCgroups(cg, rels);
    await waitForEqual(
      () => dirRels(tree),
      () => [''],
      20000,
      'the mirror to shrink to the root',
    );
    assert.deepEqual(treeListing(tree), expectedListing(cg, [{ name: 'info' }]));
    const removed = [...ids].filter(([r]) => r !== '').map(([, id]) => id);
    await waitFor(() => linksFor(removed).length === 0, 5000, 'the links of removed cgroups to be released');

    await d.ok(['unpin', path.join(tree, 'info')]);
    await waitFor(() => linksFor(ids.values()).length === 0, 5000, 'every link of the test to be released');
    // Nor does the daemon keep one open: a link it made and did not pin would be held there.
    assert.deepEqual([...heldBpf(d.pid).links], [], 'links held by the daemon');
    await d.stop();
  });
});
