/**
 * Root's bulk path of `cgview top` (src/top/bulk.ts): the daemon's index
 * names its private directory and each tree's inherit list; top, as root,
 * reads sched_lat of every directory from the collector's pinned maps in one
 * walk, with the same figures the files give; a directory it cannot trust,
 * or a run without the bulk path, reads the files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { indexFileFor } from '../../src/daemon/server.js';
import { trustedPrivateDir } from '../../src/top/bulk.js';
import { discover, readIndex, Sampler, type Snapshot } from '../../src/top/source.js';
import type { Daemon, DaemonEnv } from '../daemon.js';
import { sleep, waitFor } from '../helpers.js';
import { child, killAll, schedTree, spinners } from './workload.js';

let env: DaemonEnv;
let d: Daemon;
let a: string;
let b: string;

before(async () => {
  ({ env, d } = await schedTree());
  a = await child(env, 'a');
  b = await child(env, 'b');
  // Waits in `a`: two loops on one CPU; then stopped, so that its counters stand still for the comparison.
  spinners(a, 2, 0);
  await sleep(300);
  killAll();
  await sleep(100);
});

after(async () => {
  await d?.stop();
});

/** sched_lat samples of a snapshot by cgroup directory. */
function schedOf(s: Snapshot): Map<string, unknown> {
  return new Map(s.cgroups.map((c) => [c.cgroup ?? c.key, c.views.get('sched_lat')]));
}

const waits = (s: Snapshot, cg: string): number => {
  const v = s.cgroups.find((c) => c.cgroup === cg)?.views.get('sched_lat');
  const h = v?.metrics.find((m) => m.key === 'wait_ns');
  assert.ok(h?.hist, `sched_lat of ${cg}`);
  return h.hist.count;
};

describe('cgview top: the bulk path as root', () => {
  it('the index names the private directory and the inherited views', () => {
    const idx = readIndex(indexFileFor(env.socket));
    assert.equal(idx?.privateDir, env.privateDir);
    const root = idx?.roots.find((r) => r.dir === env.bpffs);
    assert.deepEqual(root?.inherit?.map((p) => `${p.name}=${p.view}`).sort(), [
      'info=info',
      'sched_lat=sched_lat',
    ]);
  });

  it('reads sched_lat through one walk, with the files figures, and sees counters move', async () => {
    const index = indexFileFor(env.socket);
    const [tb] = discover(env.bpffs, index);
    const [tf] = discover(env.bpffs, index, { bulk: false });
    assert.ok(tb?.bulk, 'root gets the bulk path');
    assert.equal(tf?.bulk, undefined);
    // Three directories: fewer than a walk pays for (see TreeBulk.refresh); made to walk anyway.
    tb.bulk.always = true;
    // Every directory read on every refresh (no idle subtree kept), so each of them goes through bulk.
    const bulk = new Sampler([tb], Number.POSITIVE_INFINITY, false);
    const files = new Sampler([tf], Number.POSITIVE_INFINITY, false);
    bulk.sample(); // the first refresh reads the files: it learns each directory's cgroup id
    assert.equal(bulk.stats.bulk, 0);
    const viaBulk = bulk.sample();
    const viaFiles = files.sample();
    assert.equal(bulk.stats.bulk, 3, 'root, a and b from the walk');
    assert.equal(tb.bulk.reads, 1, 'one walk for the refresh');
    assert.equal(files.stats.bulk, 0);
    assert.ok(waits(viaFiles, a) > 0, 'the workload waited');
    assert.deepEqual(schedOf(viaBulk), schedOf(viaFiles));

    // A counter moving: a loop pair in `b` waits; the next bulk refresh shows it, as the file does once it stops.
    const before = waits(viaBulk, b);
    spinners(b, 2, 1);
    await sleep(300);
    killAll();
    await sleep(100);
    const moved = bulk.sample();
    assert.equal(bulk.stats.bulk, 3);
    assert.ok(waits(moved, b) > before, `waits of b ${before} -> ${waits(moved, b)}`);
    assert.deepEqual(schedOf(moved), schedOf(files.sample()));
  });

  it('refuses a private directory it cannot trust, and a missing collector falls back to the files', async () => {
    const index = indexFileFor(env.socket);
    assert.equal(trustedPrivateDir(index, env.privateDir), env.privateDir);
    assert.equal(trustedPrivateDir(index, '/tmp'), undefined, 'not bpffs');
    assert.equal(trustedPrivateDir(index, 'relative'), undefined);
    const open = path.join(env.bpffsParent, 'open');
    fs.mkdirSync(open);
    try {
      fs.chmodSync(open, 0o777);
      assert.equal(trustedPrivateDir(index, open), undefined, 'writable by others');
    } finally {
      fs.rmdirSync(open);
    }
    // Unpinning sched_lat stops its collector: its files go, and top reads no bulk (and no file) for it.
    const [t] = discover(env.bpffs, index);
    t!.bulk!.always = true;
    const s = new Sampler([t!], Number.POSITIVE_INFINITY, false);
    s.sample();
    await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);
    await waitFor(() => !fs.existsSync(path.join(env.privateDir, 'sched_lat@0')), 10000, 'collector stopped');
    const snap = s.sample();
    assert.equal(s.stats.bulk, 0);
    assert.ok(snap.cgroups.every((c) => !c.views.has('sched_lat')));
  });
});
