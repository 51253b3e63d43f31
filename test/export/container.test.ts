/**
 * A real container: Debian's runc runs a busybox-static rootfs made here, in
 * a kubelet-shaped cgroup path (cgroupfs driver:
 * <test cgroup>/kubepods/burstable/pod<uid>/<container id>) with two CPU
 * loops on one CPU. On this hybrid host runc puts it in every v1 hierarchy
 * and in the v2 one at the same path (DESIGN.md §5); the daemon mirrors the
 * v2 test cgroup. Its series carry pod_uid, qos_class, container_id and
 * non-zero waits. The container is deleted by runc and its v1 cgroups
 * removed after the test, also on failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { daemonEnv } from '../daemon.js';
import { CGROUP_MOUNTS, CGROUP2, onCleanup, RUN_PREFIX, removeTree, sleep, waitFor } from '../helpers.js';
import { listeningDaemon, parseExposition, pick, scrape } from './util.js';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';

function ensurePackages(): void {
  const missing = [
    [RUNC, 'runc'],
    [BUSYBOX, 'busybox-static'],
  ].filter(([f]) => !fs.existsSync(f!));
  if (missing.length)
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing.map(([, p]) => p!)], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
}

describe('a runc container in a kubelet-shaped cgroup', () => {
  it('its series carry pod_uid, qos_class, container_id and non-zero waits', async () => {
    ensurePackages();
    const runc = fs.existsSync(RUNC) ? RUNC : 'runc';
    const env = daemonEnv();
    const top = path.basename(env.cgroupRoot);
    const uid = randomUUID();
    const id = randomBytes(32).toString('hex');
    const name = `${RUN_PREFIX}${randomBytes(3).toString('hex')}`;
    const cgRel = `${top}/kubepods/burstable/pod${uid}/${id}`;

    // The bundle: a read-only rootfs with busybox (static) and the spec runc writes, changed.
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), `${RUN_PREFIX}runc-`));
    onCleanup(() => fs.rmSync(bundle, { recursive: true, force: true }));
    // runc makes the path in every v1 hierarchy too; delete removes only the leaf.
    onCleanup(() => {
      for (const m of CGROUP_MOUNTS) if (m !== CGROUP2) removeTree(path.join(m, top));
    });
    fs.mkdirSync(path.join(bundle, 'rootfs/bin'), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(bundle, 'rootfs/bin/busybox'));
    fs.chmodSync(path.join(bundle, 'rootfs/bin/busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(bundle, 'rootfs/bin/sh'));
    execFileSync(runc, ['spec'], { cwd: bundle });
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['/bin/busybox', 'sh', '-c', 'while :; do :; done & while :; do :; done'];
    spec.root.readonly = true;
    spec.linux.cgroupsPath = `/${cgRel}`;
    // Both loops on CPU 1 (cpuset, v1 here): they wait for each other.
    spec.linux.resources = { ...(spec.linux.resources ?? {}), cpu: { cpus: '1' } };
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));

    const { d, url } = await listeningDaemon(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);

    const state = path.join(bundle, 'state');
    onCleanup(() => {
      try {
        execFileSync(runc, ['--root', state, 'delete', '--force', name], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
    });
    // The container inherits runc's stdio: a file, not a pipe runc's caller would wait on.
    const log = fs.openSync(path.join(bundle, 'runc.log'), 'w');
    try {
      execFileSync(runc, ['--root', state, 'run', '--detach', '--pid-file', path.join(bundle, 'pid'), name], {
        cwd: bundle,
        stdio: ['ignore', log, log],
        timeout: 30000,
      });
    } catch (e) {
      throw new Error(
        `runc run: ${(e as Error).message}\n${fs.readFileSync(path.join(bundle, 'runc.log'), 'utf8')}`,
      );
    } finally {
      fs.closeSync(log);
    }
    const pid = Number(fs.readFileSync(path.join(bundle, 'pid'), 'utf8'));
    // The container is in the v2 hierarchy at cgroupsPath (hybrid mode).
    assert.match(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/${cgRel}$`, 'm'));
    const cg = path.join(CGROUP2, cgRel);
    await waitFor(
      () => fs.existsSync(path.join(env.bpffs, 'kubepods', 'burstable', `pod${uid}`, id, 'sched_lat')),
      10000,
      'the container mirrored',
    );
    await sleep(1500);
    const s = parseExposition(await scrape(url));
    const where = { cgroup: `/${cgRel}` };
    const info = pick(s, 'cgview_cgroup_info', where);
    assert.equal(info.length, 1);
    assert.equal(info[0]!.labels['cgroup_id'], String(fs.statSync(cg, { bigint: true }).ino));
    assert.equal(info[0]!.labels['pod_uid'], uid);
    assert.equal(info[0]!.labels['qos_class'], 'Burstable');
    assert.equal(info[0]!.labels['container_id'], id);
    const sum = pick(s, 'cgview_sched_lat_wait_seconds_sum', { ...where, pod_uid: uid, container_id: id });
    assert.equal(sum.length, 1);
    assert.ok(sum[0]!.value > 0, `the container's loops waited: ${sum[0]!.value} s`);
    const count = pick(s, 'cgview_sched_lat_wait_seconds_count', {
      ...where,
      pod_uid: uid,
      container_id: id,
    });
    assert.ok(count[0]!.value > 0);
    // The pod's cgroup has the pod labels and no container.
    const pod = pick(s, 'cgview_cgroup_info', { cgroup: `/${top}/kubepods/burstable/pod${uid}` })[0]!;
    assert.equal(pod.labels['pod_uid'], uid);
    assert.equal(pod.labels['container_id'], undefined);
    execFileSync(runc, ['--root', state, 'delete', '--force', name]);
    await d.stop();
  });
});
