/**
 * Cgroups named like members of Object.prototype (`constructor`,
 * `__proto__`, `toString`): a job may name its cgroups so, and the daemon
 * keys its state by cgroup paths. They are mirrored like any other name, a
 * local pin in one of them is kept across a restart, and unpinning it works.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, expectedListing, mkCgroups, treeListing, waitForEqual } from '../daemon.js';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
const WAIT = 5000;

describe('cgroups named like Object.prototype members', () => {
  it('are mirrored, and take local pins that survive a restart', async () => {
    const env = daemonEnv();
    let d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    mkCgroups(env.cgroupRoot, [...NAMES, 'constructor/child', '__proto__/child']);
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(env.cgroupRoot, [{ name: 'info' }]),
      WAIT,
      'the tree mirrors every name',
    );
    // A local pin in each of two of them (a second, differently named view file).
    for (const n of ['__proto__', 'constructor'])
      await d.ok(['pin', 'info', path.join(env.bpffs, n), '--name', 'local']);
    const local = () =>
      (d.status() as Promise<{ roots: Array<{ local: Record<string, string[]> }> }>).then(
        (s) => s.roots[0]!.local,
      );
    assert.deepEqual(Object.entries(await local()).sort(), [
      ['__proto__', ['local']],
      ['constructor', ['local']],
    ]);
    await d.stop();
    d = await Daemon.start(env);
    assert.deepEqual(Object.entries(await local()).sort(), [
      ['__proto__', ['local']],
      ['constructor', ['local']],
    ]);
    for (const n of ['__proto__', 'constructor'])
      assert.ok(
        fs.statSync(path.join(env.bpffs, n, 'local')).isFile(),
        `${n}/local pinned after the restart`,
      );
    // A new cgroup of each kind still mirrors (the tree is reconciled, not broken).
    mkCgroups(env.cgroupRoot, ['toString/new']);
    await waitForEqual(
      () => treeListing(env.bpffs).filter((l) => !l.includes('/local ')),
      () => expectedListing(env.cgroupRoot, [{ name: 'info' }]),
      WAIT,
      'a cgroup made after the restart',
    );
    for (const n of ['__proto__', 'constructor']) await d.ok(['unpin', path.join(env.bpffs, n, 'local')]);
    assert.deepEqual(await local(), {});
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(env.cgroupRoot, [{ name: 'info' }]),
      WAIT,
      'local pins gone',
    );
    await d.stop();
  });
});
