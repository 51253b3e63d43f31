/**
 * `cgview top` as an unprivileged user who owns a delegated cgroup: it shows
 * that cgroup's figures (views mirrored with the delegatee as owner) and
 * marks the cgroups whose view files it cannot read (mode 0440, root's),
 * saying why, while the world-readable cgroupfs figures stay.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Daemon, type DaemonEnv, runAs } from '../daemon.js';
import { CGROUP2, CGVIEW, sleep, waitFor } from '../helpers.js';
import { child, rates, schedstat, schedTree, shownPath, spinners } from './workload.js';

const USER = { uid: 1000, gid: 1000 };

let env: DaemonEnv;
let d: Daemon;
let job: string;
let other: string;
let pids: number[];

before(async () => {
  ({ env, d } = await schedTree());
  job = path.join(env.cgroupRoot, 'job');
  fs.mkdirSync(job);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'])
    fs.chownSync(path.join(job, f), USER.uid, USER.gid);
  const view = path.join(env.bpffs, 'job', 'sched_lat');
  await waitFor(
    () => fs.existsSync(view) && fs.statSync(view).uid === USER.uid,
    10000,
    'job/sched_lat owned by the delegatee',
  );
  other = await child(env, 'other');
  pids = spinners(job, 1, 0);
  // The public index sits beside the socket; the test's socket directory is private until now.
  fs.chmodSync(path.dirname(env.socket), 0o755);
  await sleep(200);
});

after(async () => {
  await d?.stop();
});

describe('cgview top as a delegatee', () => {
  it('shows its own cgroup, and says which cgroups it cannot read and why', async () => {
    const a = schedstat(pids);
    const r = await runAs(USER.uid, USER.gid, process.execPath, [
      CGVIEW,
      'top',
      env.cgroupRoot,
      '--socket',
      env.socket,
      '--json',
      '--iterations',
      '2',
      '--delay',
      '1',
    ]);
    const b = schedstat(pids);
    assert.equal(r.code, 0, r.stderr);
    const frames = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = frames[frames.length - 1];
    const by = (p: string) => last.cgroups.find((c: { path: string }) => c.path === shownPath(CGROUP2, p));
    const mine = by(job);
    assert.ok(mine, JSON.stringify(last));
    assert.deepEqual(mine.unreadable, []);
    assert.equal(mine.tasks, 1);
    const truth = rates(a, b);
    assert.ok(mine.sched, 'sched figures of its own cgroup');
    assert.ok(Math.abs(mine.cpu_pct - 100 * truth.cpu) < 15, `CPU ${mine.cpu_pct} vs ${100 * truth.cpu}`);
    assert.ok(Math.abs(mine.sched.wait_per_second - truth.wait) < 0.15 + 0.25 * truth.wait);
    for (const p of [env.cgroupRoot, other]) {
      const row = by(p);
      assert.ok(row, p);
      assert.equal(row.sched, null);
      assert.deepEqual(
        row.unreadable.map((u: { file: string; error: string }) => `${u.file}:${u.error}`).sort(),
        ['info:EACCES', 'sched_lat:EACCES'],
      );
      // cgroupfs is world-readable: tasks and CPU are still there.
      assert.equal(typeof row.tasks, 'number');
      assert.equal(typeof row.cpu_pct, 'number');
    }

    const t = await runAs(USER.uid, USER.gid, process.execPath, [
      CGVIEW,
      'top',
      env.cgroupRoot,
      '--socket',
      env.socket,
      '--batch',
      '--iterations',
      '1',
      '--delay',
      '0.5',
    ]);
    assert.equal(t.code, 0, t.stderr);
    const lines = t.stdout.trimEnd().split('\n');
    assert.ok(lines.some((l) => l.startsWith(`${shownPath(CGROUP2, job)} `)));
    assert.ok(
      lines.some((l) => l.startsWith(`!${shownPath(CGROUP2, other)} `)),
      t.stdout,
    );
    assert.ok(
      lines.some((l) => l.startsWith(`!${shownPath(CGROUP2, env.cgroupRoot)} `)),
      t.stdout,
    );
    assert.ok(
      lines.includes('2 cgroups unreadable (marked !): EACCES on info (2), EACCES on sched_lat (2)') ||
        lines.includes('2 cgroups unreadable (marked !): EACCES on sched_lat (2), EACCES on info (2)'),
      t.stdout,
    );
  });
});
