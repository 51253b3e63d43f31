/**
 * Ownership follows delegation (S7): a cgroup delegated to an unprivileged
 * user is mirrored with that owner, so the user reads its views, and in
 * manual mode makes its own tree directories, with no privileged step;
 * another unprivileged user is refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv, runAs, viewCgroupId } from '../daemon.js';
import { CGVIEW, inode, sleep, waitFor } from '../helpers.js';

const USER = { uid: 1000, gid: 1000 };
const OTHER = { uid: 65534, gid: 65534 };

/** Makes `dir` a cgroup delegated to USER: the directory and the files a delegatee writes. */
function delegate(dir: string): void {
  fs.mkdirSync(dir);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'])
    fs.chownSync(path.join(dir, f), USER.uid, USER.gid);
}

function owner(p: string): string {
  const st = fs.lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

const ME = `${USER.uid}:${USER.gid}`;

describe('delegated cgroups', () => {
  it('auto mode: the mirror takes the delegatee as owner; it reads its views, another user cannot', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    const job = path.join(cg, 'job');
    delegate(job);
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    const view = path.join(tree, 'job', 'info');
    await waitFor(() => viewCgroupId(view) === String(inode(job)), 5000, 'job/info');
    await waitFor(() => owner(view) === ME, 5000, 'job/info owned by the delegatee');
    assert.equal(owner(path.join(tree, 'job')), ME);
    assert.equal(fs.statSync(view).mode & 0o777, 0o440);

    const mine = await runAs(USER.uid, USER.gid, 'cat', [view]);
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, new RegExp(`^cgroup_id: ${inode(job)}$`, 'm'));

    const other = await runAs(OTHER.uid, OTHER.gid, 'cat', [view]);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Permission denied/, 'EACCES');
    assert.equal(other.stdout, '');
    // Neither can read a view of a cgroup that is not theirs.
    const root = await runAs(USER.uid, USER.gid, 'cat', [path.join(tree, 'info')]);
    assert.match(root.stderr, /Permission denied/);

    // A child cgroup the delegatee makes itself is mirrored with its owner, with no privileged step.
    const mk = await runAs(USER.uid, USER.gid, 'mkdir', [path.join(job, 'task')]);
    assert.equal(mk.code, 0, mk.stderr);
    const taskView = path.join(tree, 'job', 'task', 'info');
    await waitFor(
      () => fs.existsSync(taskView) && owner(taskView) === ME,
      5000,
      'job/task/info owned by the delegatee',
    );
    assert.equal(owner(path.join(tree, 'job', 'task')), ME);
    const task = await runAs(USER.uid, USER.gid, 'cat', [taskView]);
    assert.equal(task.code, 0, task.stderr);
    assert.match(task.stdout, new RegExp(`^cgroup_id: ${inode(path.join(job, 'task'))}$`, 'm'));
    assert.match((await runAs(OTHER.uid, OTHER.gid, 'cat', [taskView])).stderr, /Permission denied/);

    await d.stop();
  });

  it('manual mode: the delegatee makes a matching directory and gets its view; other names are refused', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    const job = path.join(cg, 'job');
    delegate(job);
    await d.ok(['pin', 'info', tree, '--inherit', '--mode', 'manual', '--cgroup', cg]);
    // The operator makes the delegated job's directory; the daemon hands it over.
    fs.mkdirSync(path.join(tree, 'job'));
    const jobView = path.join(tree, 'job', 'info');
    await waitFor(
      () => fs.existsSync(jobView) && owner(jobView) === ME,
      5000,
      'job/info owned by the delegatee',
    );
    await waitFor(() => owner(path.join(tree, 'job')) === ME, 5000, 'job/ owned by the delegatee');

    // The delegatee: a child cgroup, then the matching tree directory.
    assert.equal((await runAs(USER.uid, USER.gid, 'mkdir', [path.join(job, 'task')])).code, 0);
    await sleep(200);
    assert.equal(
      fs.existsSync(path.join(tree, 'job', 'task')),
      false,
      'manual mode does not mirror by itself',
    );
    const mk = await runAs(USER.uid, USER.gid, 'mkdir', [path.join(tree, 'job', 'task')]);
    assert.equal(mk.code, 0, mk.stderr);
    const taskView = path.join(tree, 'job', 'task', 'info');
    await waitFor(
      () => viewCgroupId(taskView) === String(inode(path.join(job, 'task'))),
      5000,
      'job/task/info',
    );
    assert.equal(owner(taskView), ME);
    const read = await runAs(USER.uid, USER.gid, 'cat', [taskView]);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, new RegExp(`^cgroup_id: ${inode(path.join(job, 'task'))}$`, 'm'));
    assert.match((await runAs(OTHER.uid, OTHER.gid, 'cat', [taskView])).stderr, /Permission denied/);

    // A name that matches no cgroup is refused: the daemon removes it.
    const bogus = path.join(tree, 'job', 'not-a-cgroup');
    assert.equal((await runAs(USER.uid, USER.gid, 'mkdir', [bogus])).code, 0);
    await waitFor(() => !fs.existsSync(bogus), 5000, 'the unmatched directory to be removed');
    // Another user cannot make directories in the delegatee's tree at all.
    const intrude = await runAs(OTHER.uid, OTHER.gid, 'mkdir', [path.join(tree, 'job', 'x')]);
    assert.notEqual(intrude.code, 0);
    assert.match(intrude.stderr, /Permission denied/);
    await d.stop();
  });
});

describe('cgview cat as the delegatee', () => {
  it('finds its cgroup views through the public index of trees (the socket is root’s)', async () => {
    const env = daemonEnv();
    // Users must be able to reach the index beside the socket.
    fs.chmodSync(path.dirname(env.socket), 0o755);
    const d = await Daemon.start(env);
    const cg = env.cgroupRoot;
    const job = path.join(cg, 'job');
    delegate(job);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await waitFor(
      () => viewCgroupId(path.join(env.bpffs, 'job', 'info')) === String(inode(job)),
      5000,
      'job/info',
    );
    const index = JSON.parse(fs.readFileSync(path.join(path.dirname(env.socket), 'roots.json'), 'utf8'));
    assert.deepEqual(index, {
      roots: [{ dir: env.bpffs, cgroup: cg, inherit: [{ name: 'info', view: 'info' }] }],
      privateDir: env.privateDir,
    });
    assert.equal(
      (fs.statSync(path.join(path.dirname(env.socket), 'roots.json')).mode & 0o777).toString(8),
      '644',
    );

    const mine = await runAs(USER.uid, USER.gid, process.execPath, [
      CGVIEW,
      'cat',
      job,
      '--socket',
      env.socket,
    ]);
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, new RegExp(`^cgroup_id: ${inode(job)}$`, 'm'));
    const theirs = await runAs(OTHER.uid, OTHER.gid, process.execPath, [
      CGVIEW,
      'cat',
      job,
      'info',
      '--socket',
      env.socket,
    ]);
    assert.equal(theirs.code, 1);
    assert.match(theirs.stderr, /EACCES/);
    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(path.dirname(env.socket), 'roots.json'), 'utf8')), {
      roots: [],
      privateDir: env.privateDir,
    });
    await d.stop();
  });
});
