/**
 * What the daemon refuses to trust, and tampering a user can do in its own
 * part of a tree: roots and private directories that are not root's alone,
 * a view file renamed over another, a deep directory chain, non-ASCII names
 * through the CLI.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  Daemon,
  daemonEnv,
  expectedListing,
  mkCgroups,
  runAs,
  treeListing,
  viewCgroupId,
  waitForAsync,
  waitForEqual,
} from '../daemon.js';
import { inode, onCleanup, removeTree, tmpBpffsDir, waitFor } from '../helpers.js';

const NOBODY = 65534;

describe('trust', () => {
  it('refuses a tree root that is not root-owned, or whose parent others may write', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const theirs = path.join(env.bpffsParent, 'theirs');
    fs.mkdirSync(theirs);
    fs.chownSync(theirs, NOBODY, NOBODY);
    const r1 = await d.cli(['pin', 'info', theirs, '--cgroup', env.cgroupRoot]);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /not root's alone/);
    const open = path.join(env.bpffsParent, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    fs.mkdirSync(path.join(open, 'tree'));
    const r2 = await d.cli(['pin', 'info', path.join(open, 'tree'), '--cgroup', env.cgroupRoot]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /above .* is not root's alone/);
    assert.deepEqual((await d.status()).roots, []);
    await d.stop();
  });

  it('never adopts nor clears a private directory someone else owns', async () => {
    const env = daemonEnv();
    fs.mkdirSync(env.privateDir);
    fs.chownSync(env.privateDir, NOBODY, NOBODY);
    fs.mkdirSync(path.join(env.privateDir, 'sched_lat@0'));
    fs.chownSync(path.join(env.privateDir, 'sched_lat@0'), NOBODY, NOBODY);
    const d = await Daemon.start(env);
    assert.ok(fs.existsSync(path.join(env.privateDir, 'sched_lat@0')), 'left alone');
    const r = await d.cli(['pin', 'sched_lat', env.bpffs, '--cgroup', env.cgroupRoot]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not root's alone/);
    await d.stop();
  });
});

describe('tampering in a delegated directory', () => {
  it('a view file renamed over another is replaced; a deep chain of junk is removed or left, never walked', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['job', 'job/a', 'job/b']);
    for (const r of ['job', 'job/a', 'job/b']) fs.chownSync(path.join(cg, r), NOBODY, NOBODY);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    const tree = env.bpffs;
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      5000,
      'mirror',
    );

    // nobody owns tree/job: it moves b's view over a's.
    const mv = await runAs(NOBODY, NOBODY, 'mv', [
      '-f',
      path.join(tree, 'job/b/info'),
      path.join(tree, 'job/a/info'),
    ]);
    assert.equal(mv.code, 0, mv.stderr);
    await waitFor(
      () => viewCgroupId(path.join(tree, 'job/a/info')) === String(inode(path.join(cg, 'job/a'))),
      5000,
      'a/info right again',
    );
    await waitFor(
      () => viewCgroupId(path.join(tree, 'job/b/info')) === String(inode(path.join(cg, 'job/b'))),
      5000,
      'b/info back',
    );

    // A chain 200 levels deep, built elsewhere and moved in under a name that is no cgroup.
    const scratch = tmpBpffsDir();
    fs.chownSync(scratch, NOBODY, NOBODY);
    const mk = await runAs(NOBODY, NOBODY, 'sh', [
      '-c',
      `cd ${scratch} && for i in $(seq 200); do mkdir d && cd d; done`,
    ]);
    assert.equal(mk.code, 0, mk.stderr);
    const mv2 = await runAs(NOBODY, NOBODY, 'mv', [path.join(scratch, 'd'), path.join(tree, 'job/junk')]);
    assert.equal(mv2.code, 0, mv2.stderr);
    // The daemon stays responsive and the mirror of real cgroups stays right.
    await waitForAsync(async () => (await d.cli(['status'])).code === 0, 5000, 'daemon answers');
    mkCgroups(cg, ['job/c']);
    fs.chownSync(path.join(cg, 'job/c'), NOBODY, NOBODY);
    await waitFor(
      () => viewCgroupId(path.join(tree, 'job/c/info')) === String(inode(path.join(cg, 'job/c'))),
      5000,
      'job/c mirrored',
    );
    onCleanup(() => removeTree(path.join(tree, 'job/junk')));
    await d.stop();
  });
});

describe('a tree name that decodes to ..', () => {
  it('is no cgroup: the daemon does not mirror the parent again inside a delegated directory', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['deleg', 'sib', 'sib/x']);
    fs.chownSync(path.join(cg, 'deleg'), NOBODY, NOBODY);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    const tree = env.bpffs;
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      5000,
      'mirror',
    );
    // nobody owns tree/deleg: "%2E%2E" would decode to "..", i.e. the parent cgroup.
    const evil = path.join(tree, 'deleg', '%2E%2E');
    const mk = await runAs(NOBODY, NOBODY, 'mkdir', [evil]);
    assert.equal(mk.code, 0, mk.stderr);
    onCleanup(() => removeTree(evil));
    // A real change after it, so that the daemon has surely looked at the directory.
    mkCgroups(cg, ['deleg/late']);
    await waitFor(() => fs.existsSync(path.join(tree, 'deleg/late/info')), 5000, 'deleg/late mirrored');
    await d.ok(['status']);
    // Nothing of the parent (sib, sib/x, deleg itself) appears below it, and no view file.
    const inside = fs.existsSync(evil) ? fs.readdirSync(evil) : [];
    assert.deepEqual(inside, [], `the daemon filled ${evil}: ${inside.join(', ')}`);
    assert.ok(!fs.existsSync(path.join(evil, 'sib')));
    await d.stop();
  });
});

describe('non-ASCII names through the CLI', () => {
  it('ls and cat work on cgroups named é and 日本', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    fs.mkdirSync(path.join(cg, 'é'));
    fs.mkdirSync(path.join(cg, '日本'));
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await waitFor(() => fs.existsSync(path.join(env.bpffs, '日本', 'info')), 5000, '日本/info');
    // The test harness reads output as bytes (latin1): compare with the UTF-8 bytes.
    const b = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
    const ls = await d.ok(['ls', path.join(env.bpffs, 'é')]);
    assert.ok(ls.includes(`(cgroup ${b(path.join(cg, 'é'))})`), ls);
    const cat = await d.ok(['cat', path.join(cg, '日本'), 'info']);
    assert.ok(cat.includes(`name: ${b('日本')}\n`), cat);
    const lsRoot = await d.ok(['ls', env.bpffs]);
    assert.ok(lsRoot.includes(`  ${b('日本')}/\n`), lsRoot);
    await d.stop();
  });
});

describe('untag that cannot finish at once', () => {
  it('refuses pins into the tree meanwhile, retries, and forgets the tree once it is empty', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['job']);
    fs.chownSync(path.join(cg, 'job'), NOBODY, NOBODY);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await waitFor(() => fs.existsSync(path.join(env.bpffs, 'job', 'info')), 5000, 'job/info');
    // nobody builds a chain deeper than the daemon removes (64) in its own directory.
    const scratch = tmpBpffsDir();
    fs.chownSync(scratch, NOBODY, NOBODY);
    const mk = await runAs(NOBODY, NOBODY, 'sh', [
      '-c',
      `cd ${scratch} && for i in $(seq 70); do mkdir d && cd d; done`,
    ]);
    assert.equal(mk.code, 0, mk.stderr);
    const mv = await runAs(NOBODY, NOBODY, 'mv', [
      path.join(scratch, 'd'),
      path.join(env.bpffs, 'job', 'junk'),
    ]);
    assert.equal(mv.code, 0, mv.stderr);
    onCleanup(() => removeTree(path.join(env.bpffs, 'job', 'junk')));

    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    const st = await d.status();
    assert.match(String(st.roots[0]?.error), /untag/, 'the tree is still there, waiting');
    const again = await d.cli(['pin', 'info', env.bpffs, '--inherit', '--name', 'info2']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /being untagged/);

    removeTree(path.join(env.bpffs, 'job', 'junk'));
    await waitForAsync(async () => (await d.status()).roots.length === 0, 12000, 'untag finished');
    assert.deepEqual(fs.readdirSync(env.bpffs), []);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await d.stop();
  });
});
