/**
 * A view tree over a cgroup v1 hierarchy (cpu): links are made by fd, the
 * views see v1 cgroups, and mirroring follows the v1 hierarchy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  Daemon,
  daemonEnv,
  expectedListing,
  parseView,
  readView,
  treeListing,
  waitForEqual,
} from '../daemon.js';
import { CGROUP_V1_CPU, inode, sleep, waitFor } from '../helpers.js';

describe('cgroup v1', () => {
  it('mirrors a v1 cpu subtree in auto mode with info inherited', async () => {
    const env = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    const cg = env.cgroupRoot;
    fs.mkdirSync(path.join(cg, 'a'));
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, [{ name: 'info' }]),
      5000,
      'the v1 mirror',
    );
    const info = parseView(readView(path.join(env.bpffs, 'a', 'info'))!);
    assert.equal(info['cgroup_id'], String(inode(path.join(cg, 'a'))));
    assert.notEqual(info['hierarchy_id'], '0', 'a v1 hierarchy has a non-zero id');

    fs.mkdirSync(path.join(cg, 'a', 'b'));
    await waitFor(() => readView(path.join(env.bpffs, 'a', 'b', 'info')), 5000, 'a/b/info');
    fs.rmdirSync(path.join(cg, 'a', 'b'));
    await waitFor(() => !fs.existsSync(path.join(env.bpffs, 'a', 'b')), 5000, 'a/b removed');
    // sched_lat on a v1 tree: the collector follows this hierarchy (v1_hierarchy_id).
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    const a = path.join(cg, 'a');
    const spinners = [0, 1].map(() =>
      spawn('sh', ['-c', `echo $$ > ${a}/cgroup.procs && exec taskset -c 1 sh -c 'while :; do :; done'`], {
        stdio: 'ignore',
      }),
    );
    try {
      await sleep(600);
    } finally {
      for (const p of spinners) p.kill('SIGKILL');
      await Promise.all(
        spinners.map((p) => new Promise((r) => (p.exitCode !== null ? r(0) : p.once('exit', r)))),
      );
    }
    const sl = parseView(readView(path.join(env.bpffs, 'a', 'sched_lat'))!);
    assert.equal(sl['cgroup_id'], String(inode(a)));
    assert.ok(Number(sl['wait_count']) > 0, `waits counted in the v1 cgroup: ${sl['wait_count']}`);
    assert.ok(
      Number(sl['queue_self_ns_total']) > 0,
      'two spinners of one cgroup on one CPU wait behind each other',
    );
    const collectors = (await d.status()) as unknown as { collectors: Record<string, unknown> };
    assert.deepEqual(
      Object.keys(collectors.collectors).filter((k) => k.startsWith('sched_lat@')),
      [`sched_lat@${info['hierarchy_id']}`],
    );
    await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);

    const st = await d.status();
    assert.equal((st.roots[0] as unknown as { hierarchy: string }).hierarchy, 'v1');
    assert.equal(st.opsFailed, 0);
    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    assert.deepEqual(fs.readdirSync(env.bpffs), []);
    await d.stop();
  });
});
