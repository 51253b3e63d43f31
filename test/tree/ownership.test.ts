/**
 * Ownership changes are followed (issue 8 point 1): a cgroup chowned to a
 * user after it is mirrored (mkdir, then chown: how systemd and container
 * runtimes delegate) gives the user its tree directory and views; chowned
 * back to root (revocation), the user loses them again. Both without any
 * other event: the daemon watches cgroup directories for IN_ATTRIB.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, runAs, viewCgroupId } from '../daemon.js';
import { inode, waitFor } from '../helpers.js';

const USER = { uid: 1000, gid: 1000 };
const ME = `${USER.uid}:${USER.gid}`;
const ROOT = '0:0';

function owner(p: string): string {
  const st = fs.lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

/** chown of a cgroup the way a delegation does it: the directory and the files a delegatee writes. */
function chownCgroup(dir: string, uid: number, gid: number): void {
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'])
    fs.chownSync(path.join(dir, f), uid, gid);
}

async function canRead(file: string): Promise<boolean> {
  const r = await runAs(USER.uid, USER.gid, 'cat', [file]);
  if (r.code !== 0) assert.match(r.stderr, /Permission denied/);
  return r.code === 0 && /^cgroup_id: /m.test(r.stdout);
}

describe('ownership changes of mirrored cgroups', () => {
  for (const mode of ['auto', 'manual'] as const) {
    it(`${mode} mode: chown to a user delegates the tree dir and views, chown back to root revokes them`, async () => {
      const env = daemonEnv();
      const d = await Daemon.start(env);
      const tree = env.bpffs;
      const cg = env.cgroupRoot;
      const job = path.join(cg, 'job');
      fs.mkdirSync(job);
      fs.mkdirSync(path.join(job, 'task'));
      fs.mkdirSync(path.join(job, 'later'));
      await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg, '--mode', mode]);
      const jobDir = path.join(tree, 'job');
      // Manual mode: root makes the directory (users make theirs once delegated).
      if (mode === 'manual') fs.mkdirSync(jobDir);
      const view = path.join(jobDir, 'info');
      await waitFor(() => fs.existsSync(view) && viewCgroupId(view) === String(inode(job)), 5000, 'job/info');
      assert.equal(owner(jobDir), ROOT);
      assert.equal(owner(view), ROOT);
      assert.equal(await canRead(view), false, 'root-owned view unreadable by the user');

      // Delegation: nothing else happens in the tree, only the chown.
      chownCgroup(job, USER.uid, USER.gid);
      await waitFor(
        () => owner(jobDir) === ME && owner(view) === ME,
        5000,
        'job and job/info owned by the user',
      );
      assert.equal(await canRead(view), true, 'the delegate reads its view');
      if (mode === 'manual') {
        const mk = await runAs(USER.uid, USER.gid, 'mkdir', [path.join(jobDir, 'task')]);
        assert.equal(mk.code, 0, `the delegate makes its directory: ${mk.stderr}`);
        await waitFor(() => fs.existsSync(path.join(jobDir, 'task', 'info')), 5000, 'job/task/info');
      }
      // While it owns the directory, the delegate opens it to everyone.
      const ch = await runAs(USER.uid, USER.gid, 'chmod', ['0777', jobDir]);
      assert.equal(ch.code, 0, ch.stderr);

      // Revocation.
      chownCgroup(job, 0, 0);
      await waitFor(
        () => owner(jobDir) === ROOT && owner(view) === ROOT,
        5000,
        'job and job/info root-owned again',
      );
      await waitFor(() => (fs.statSync(jobDir).mode & 0o022) === 0, 5000, 'no group/other write on job');
      assert.equal(await canRead(view), false, 'the former delegate cannot read the view');
      if (mode === 'manual') {
        const mk = await runAs(USER.uid, USER.gid, 'mkdir', [path.join(jobDir, 'later')]);
        assert.notEqual(mk.code, 0, 'the former delegate cannot mkdir any more');
        assert.match(mk.stderr, /Permission denied/);
        assert.equal(fs.existsSync(path.join(jobDir, 'later')), false);
      }
      await d.stop();
    });
  }

  it("the tree's own root cgroup: its owner gives the root directory's views, and new inherited pins, their owner", async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const job = path.join(env.cgroupRoot, 'job');
    fs.mkdirSync(path.join(job, 'sub'), { recursive: true });
    const tree = path.join(env.bpffsParent, 'jobtree');
    await d.ok(['pin', 'info', tree, '--cgroup', job, '--inherit']);
    const view = path.join(tree, 'info');
    const subView = path.join(tree, 'sub', 'info');
    await waitFor(() => fs.existsSync(view) && fs.existsSync(subView), 5000, 'jobtree/info and sub/info');
    assert.equal(owner(view), ROOT);

    // Delegation of the tagged cgroup itself: the views of the tree root take its owner.
    chownCgroup(job, USER.uid, USER.gid);
    await waitFor(() => owner(view) === ME, 5000, 'jobtree/info owned by the user');
    assert.equal(owner(subView), ROOT, 'a root-owned child cgroup keeps its own owner');
    assert.equal(owner(tree), ROOT, 'the tree root directory itself stays root');
    // The inherited-pin path that visits only the new file: the model knows the new owner.
    await d.ok(['pin', 'info', tree, '--inherit', '--name', 'info2']);
    const view2 = path.join(tree, 'info2');
    await waitFor(() => fs.existsSync(view2), 5000, 'jobtree/info2');
    assert.equal(owner(view2), ME, 'a new inherited view in the root takes the delegate');
    assert.equal(owner(path.join(tree, 'sub', 'info2')), ROOT);
    assert.equal(await canRead(view), true, 'the delegate reads its view');

    // Revocation.
    chownCgroup(job, 0, 0);
    await waitFor(() => owner(view) === ROOT && owner(view2) === ROOT, 5000, 'root views root-owned again');
    assert.equal(await canRead(view), false, 'the former delegate cannot read the view');
    await d.ok(['unpin', view2]);
    await d.ok(['unpin', view]);
    await d.stop();
  });
});
