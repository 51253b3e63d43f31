/** Pure parts of src/cgroup/hierarchy.ts: mountinfo parsing and mount lookup on given mounts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bpath,
  type CgroupMount,
  cgroup2Root,
  mountOf,
  parseCgroupMounts,
} from '../../src/cgroup/hierarchy.js';
import { CgviewError } from '../../src/errors.js';

// A hybrid host: v1 controllers under /sys/fs/cgroup, v2 at /unified, with
// optional fields (shared:N, master:N), a systemd named hierarchy with the
// xattr flag, a mount point with a space (\040) and non-cgroup mounts.
const MOUNTINFO = [
  '22 28 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw',
  '23 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate',
  '33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd',
  '34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 master:3 - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '36 31 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup ro,pids',
  '37 23 0:34 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:14 - bpf bpf rw,mode=700',
  '38 28 0:35 / /mnt/my\\040cgroups rw,relatime - cgroup cgroup rw,cpuset,clone_children',
  '39 28 0:36 / /mnt/fake rw,relatime - tmpfs cgroup rw',
  '',
].join('\n');

describe('parseCgroupMounts', () => {
  const mounts = parseCgroupMounts(MOUNTINFO);

  it('lists the v2 and v1 cgroup mounts in order, and nothing else', () => {
    assert.deepEqual(
      mounts.map((m) => [m.path, m.version]),
      [
        ['/sys/fs/cgroup/unified', 2],
        ['/sys/fs/cgroup/systemd', 1],
        ['/sys/fs/cgroup/cpu,cpuacct', 1],
        ['/sys/fs/cgroup/memory', 1],
        ['/sys/fs/cgroup/pids', 1],
        ['/mnt/my cgroups', 1],
      ],
    );
  });

  it('finds the type after the separator whatever the optional fields', () => {
    const only = parseCgroupMounts(
      '34 31 0:31 / /x rw shared:11 master:3 propagate_from:2 unbindable - cgroup2 cgroup2 rw\n',
    );
    assert.deepEqual(
      only.map((m) => [m.path, m.version]),
      [['/x', 2]],
    );
  });

  it('undoes octal escapes in the mount point', () => {
    assert.ok(mounts.some((m) => m.path === '/mnt/my cgroups'));
    const esc = parseCgroupMounts('40 28 0:37 / /mnt/a\\011b\\134c\\012d rw - cgroup2 cgroup2 rw\n');
    assert.equal(esc[0]?.path, '/mnt/a\tb\\c\nd');
  });

  it('v1 options are the controllers, without rw/ro', () => {
    const opt = (p: string) => mounts.find((m) => m.path === p)?.options;
    assert.deepEqual(opt('/sys/fs/cgroup/cpu,cpuacct'), ['cpu', 'cpuacct']);
    assert.deepEqual(opt('/sys/fs/cgroup/memory'), ['memory']);
    assert.deepEqual(opt('/sys/fs/cgroup/pids'), ['pids']);
  });

  it('v1 options are the controllers and name=..., without flags', () => {
    const opt = (p: string) => mounts.find((m) => m.path === p)?.options;
    assert.deepEqual(opt('/sys/fs/cgroup/systemd'), ['name=systemd']);
    assert.deepEqual(opt('/mnt/my cgroups'), ['cpuset']);
  });

  it('skips blank, malformed and non-cgroup lines', () => {
    assert.deepEqual(parseCgroupMounts(''), []);
    assert.deepEqual(parseCgroupMounts('\ngarbage\n1 2 3\n'), []);
    assert.deepEqual(parseCgroupMounts('39 28 0:36 / /mnt/fake rw,relatime - tmpfs cgroup rw\n'), []);
  });

  it('keeps bytes 0x80-0xff of a latin1-read mountinfo as they are', () => {
    const m = parseCgroupMounts('41 28 0:38 / /mnt/\xe9\xff rw - cgroup cgroup rw,pids\n');
    assert.equal(m[0]?.path, '/mnt/\xe9\xff');
    assert.deepEqual([...bpath(m[0]!.path)], [...Buffer.from('/mnt/'), 0xe9, 0xff]);
  });
});

describe('mount lookup on given mounts', () => {
  const mounts = parseCgroupMounts(MOUNTINFO);

  it('cgroup2Root is the v2 mount point', () => {
    assert.equal(cgroup2Root(mounts), '/sys/fs/cgroup/unified');
  });

  it('cgroup2Root without v2 is E_NOT_SUPPORTED', () => {
    const v1: CgroupMount[] = mounts.filter((m) => m.version === 1);
    assert.throws(
      () => cgroup2Root(v1),
      (e: unknown) => e instanceof CgviewError && e.code === 'E_NOT_SUPPORTED',
    );
  });

  it('mountOf picks the mount a directory is in, not a sibling with the same prefix', () => {
    assert.equal(mountOf('/sys/fs/cgroup/unified', mounts).version, 2);
    assert.equal(mountOf('/sys/fs/cgroup/unified/a/b', mounts).path, '/sys/fs/cgroup/unified');
    assert.equal(mountOf('/sys/fs/cgroup/cpu,cpuacct/job', mounts).path, '/sys/fs/cgroup/cpu,cpuacct');
    const withCpu = [...mounts, { path: '/sys/fs/cgroup/cpu', version: 1 as const, options: ['cpu'] }];
    assert.equal(mountOf('/sys/fs/cgroup/cpu,cpuacct/job', withCpu).path, '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(mountOf('/sys/fs/cgroup/cpu/job', withCpu).path, '/sys/fs/cgroup/cpu');
  });

  it('mountOf prefers the deepest mount', () => {
    const nested: CgroupMount[] = [
      { path: '/cg', version: 2, options: [] },
      { path: '/cg/inner', version: 1, options: ['pids'] },
    ];
    assert.equal(mountOf('/cg/inner/x', nested).path, '/cg/inner');
    assert.equal(mountOf('/cg/innerx', nested).path, '/cg');
  });

  it('mountOf outside every hierarchy is E_NOT_FOUND', () => {
    assert.throws(
      () => mountOf('/tmp/x', mounts),
      (e: unknown) => e instanceof CgviewError && e.code === 'E_NOT_FOUND',
    );
    assert.throws(
      () => mountOf('/sys/fs/cgroup', mounts),
      (e: unknown) => e instanceof CgviewError && e.code === 'E_NOT_FOUND',
    );
  });
});
