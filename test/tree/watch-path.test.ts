/**
 * A tree directory is watched by path only when it and every directory above
 * it in the tree are root's alone once the reconcile is applied: a directory
 * the same reconcile just chowned to a user (a delegation made while the
 * daemon was down, found at start) is the user's, who could swap names under
 * it, so it and what is below it are watched through a directory fd.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Reconciler } from '../../src/daemon/reconciler.js';
import { RootRuntime } from '../../src/daemon/roots.js';
import { WatchRegistry } from '../../src/daemon/watches.js';
import type { Fd } from '../../src/kernel/index.js';
import type { ViewSet } from '../../src/views/registry.js';
import { tmpBpffsDir, tmpCgroup } from '../helpers.js';

const USER = 1000;

/** One reconcile of the whole tree with a fresh runtime (as at a start); how each tree directory was watched. */
function startOnce(dir: string, cgroup: string): Map<string, 'path' | 'fd'> {
  const how = new Map<string, 'path' | 'fd'>();
  const watches = new WatchRegistry<RootRuntime>({
    events: () => {},
    limitHit: () => {},
    readError: () => {},
    debug: () => {},
  });
  const add = watches.add.bind(watches);
  watches.add = (owner: RootRuntime, side, rel, p: string | Fd, mask) => {
    if (side === 'tree') how.set(rel, typeof p === 'string' ? 'path' : 'fd');
    return add(owner, side, rel, p, mask);
  };
  const rt = new RootRuntime({ dir, cgroup, mode: 'auto', inherit: [], local: {} });
  try {
    assert.ok(rt.open(), rt.lastError ?? '');
    // No views: the directories alone are what this is about (none is loaded).
    new Reconciler({} as ViewSet, watches, () => {}).run(rt, { rel: '', depth: 'deep' });
  } finally {
    rt.close();
    watches.close();
  }
  return how;
}

describe('watch by path', () => {
  it('not for a directory chowned to a user by the same reconcile, nor below it', () => {
    const cg = tmpCgroup();
    fs.mkdirSync(path.join(cg, 'job', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(cg, 'other'));
    const dir = path.join(tmpBpffsDir(), 'tree');
    const first = startOnce(dir, cg);
    assert.deepEqual(Object.fromEntries(first), {
      '': 'path',
      job: 'path',
      'job/sub': 'path',
      other: 'path',
    });
    assert.equal(fs.statSync(path.join(dir, 'job')).uid, 0);

    // Delegated while the daemon was down: the next start finds job/ root-owned and chowns it.
    fs.chownSync(path.join(cg, 'job'), USER, USER);
    const how = startOnce(dir, cg);
    assert.equal(fs.statSync(path.join(dir, 'job')).uid, USER, 'the reconcile chowned job/');
    assert.equal(how.get('job'), 'fd', 'job/ is the user’s now');
    assert.equal(how.get('job/sub'), 'fd', 'job/sub is under a user’s directory');
    assert.equal(how.get('other'), 'path', 'root’s alone along its path');
    assert.equal(how.get(''), 'path');
  });
});
