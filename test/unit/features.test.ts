/** Pure parsing behind `cgview doctor`: mountinfo, CapEff, kernel release. No root, no kernel. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkStatus, formatCheck, formatSummary } from '../../src/cli/doctor.js';
import {
  CAP_BPF,
  CAP_PERFMON,
  CAP_SYS_ADMIN,
  cgroup2MountPoint,
  cgroupV1Controllers,
  hasCap,
  parseCapEff,
  parseKernelRelease,
  parseMountinfo,
  probeBpffs,
  probeBpffsAccess,
  probeCgroup2,
  probeCgroupV1,
  probeKernel,
  probePrivileges,
} from '../../src/kernel/features.js';

// A hybrid host like the test machines: v1 controllers, v2 at /unified, bpffs;
// one line with an optional field (shared:N) and one mount point with a space.
const HYBRID = [
  '23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate',
  '42 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700',
  '43 23 0:40 / /mnt/my\\040bpf rw,relatime - bpf none rw',
  '',
].join('\n');

const NO_BPF = HYBRID.split('\n')
  .filter((l) => !l.includes(' - bpf '))
  .join('\n');

describe('parseMountinfo', () => {
  it('finds the filesystem type after the separator, whatever the optional fields', () => {
    const m = parseMountinfo(HYBRID);
    assert.equal(m.length, 8);
    const v2 = m.find((e) => e.mountPoint === '/sys/fs/cgroup/unified');
    assert.equal(v2?.fstype, 'cgroup2');
    assert.deepEqual(v2?.superOptions, ['rw', 'nsdelegate']);
    assert.equal(m.find((e) => e.mountPoint === '/sys')?.fstype, 'sysfs');
  });

  it('undoes octal escapes in mount points', () => {
    assert.ok(parseMountinfo(HYBRID).some((e) => e.mountPoint === '/mnt/my bpf' && e.fstype === 'bpf'));
  });

  it('skips blank and malformed lines', () => {
    assert.deepEqual(parseMountinfo('\ngarbage\n1 2 3\n'), []);
  });
});

describe('cgroup mounts', () => {
  it('v1 controllers come from the super options, without flags', () => {
    assert.deepEqual(cgroupV1Controllers(['rw', 'cpu', 'cpuacct']), ['cpu', 'cpuacct']);
    assert.deepEqual(cgroupV1Controllers(['rw', 'xattr', 'name=systemd']), ['name=systemd']);
    assert.deepEqual(cgroupV1Controllers(['rw', 'memory', 'release_agent=/x']), ['memory']);
  });

  it('cgroup2MountPoint finds the v2 mount, or null', () => {
    assert.equal(cgroup2MountPoint(HYBRID), '/sys/fs/cgroup/unified');
    assert.equal(cgroup2MountPoint(HYBRID.replace(/cgroup2 cgroup2/, 'tmpfs tmpfs')), null);
  });

  it('probeCgroup2 and probeCgroupV1 report what is mounted, or a remedy', () => {
    assert.equal(probeCgroup2(HYBRID).ok, true);
    const none = probeCgroup2('');
    assert.equal(none.ok, false);
    assert.equal(none.required, true);
    assert.match(none.remedy ?? '', /mount -t cgroup2/);
    const v1 = probeCgroupV1(HYBRID);
    assert.equal(v1.ok, true);
    assert.match(v1.detail, /\/sys\/fs\/cgroup\/cpu \(cpu\)/);
    assert.match(v1.detail, /systemd \(name=systemd\)/);
    const nov1 = probeCgroupV1('');
    assert.equal(nov1.ok, false);
    assert.equal(nov1.required, false, 'v1 is optional');
    assert.ok(nov1.remedy);
  });
});

describe('probeBpffs', () => {
  it('lists every bpffs mount', () => {
    const c = probeBpffs(HYBRID);
    assert.equal(c.ok, true);
    assert.equal(c.detail, '/sys/fs/bpf, /mnt/my bpf');
  });

  it('fails with a mount command when none is mounted', () => {
    const c = probeBpffs(NO_BPF);
    assert.deepEqual(c, {
      name: 'bpffs',
      ok: false,
      required: true,
      detail: 'not mounted',
      remedy: 'mount -t bpf bpf /sys/fs/bpf',
    });
  });

  it('passes but says so when bpffs is only elsewhere', () => {
    const c = probeBpffs(`${NO_BPF}\n50 23 0:50 / /srv/bpf rw - bpf bpf rw\n`);
    assert.equal(c.ok, true);
    assert.match(c.detail, /not at \/sys\/fs\/bpf: pass --bpffs \/srv\/bpf\/cgview/);
  });
});

describe('capabilities', () => {
  it('parseCapEff reads the hex mask', () => {
    const status =
      'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n';
    const m = parseCapEff(status);
    assert.equal(m, 0x1fffeffffffn);
    assert.ok(m !== null && hasCap(m, CAP_BPF) && hasCap(m, CAP_PERFMON) && hasCap(m, CAP_SYS_ADMIN));
    assert.equal(hasCap(m!, 24), false, 'bit 24 is clear in this mask');
    assert.equal(parseCapEff('Name:\tx\n'), null);
  });

  it('CAP_BPF with CAP_PERFMON is enough, and so is CAP_SYS_ADMIN alone', () => {
    const mask = (bits: number[]) =>
      `CapEff:\t${bits.reduce((a, b) => a | (1n << BigInt(b)), 0n).toString(16)}\n`;
    assert.equal(probePrivileges(mask([CAP_BPF, CAP_PERFMON])).ok, true);
    assert.equal(probePrivileges(mask([CAP_SYS_ADMIN])).ok, true);
    const bpfOnly = probePrivileges(mask([CAP_BPF]));
    assert.equal(bpfOnly.ok, false);
    assert.match(bpfOnly.detail, /CAP_BPF/);
    assert.match(bpfOnly.remedy ?? '', /CAP_PERFMON/);
    const none = probePrivileges('CapEff:\t0000000000000000\n');
    assert.equal(none.ok, false);
    assert.match(none.detail, /none of/);
    assert.equal(probePrivileges('').ok, false);
  });
});

describe('kernel release', () => {
  it('parses major and minor', () => {
    assert.deepEqual(parseKernelRelease('6.18.44-fc-v657'), [6, 18]);
    assert.deepEqual(parseKernelRelease('5.15.0-91-generic'), [5, 15]);
    assert.equal(parseKernelRelease('weird'), null);
  });

  it('probeKernel wants 6.6 or newer', () => {
    assert.equal(probeKernel('6.18.44').ok, true);
    assert.equal(probeKernel('6.6.0').ok, true);
    assert.equal(probeKernel('7.0.1').ok, true);
    const old = probeKernel('6.1.0');
    assert.equal(old.ok, false);
    assert.match(old.remedy ?? '', /upgrade to Linux 6\.6/);
    assert.equal(probeKernel('x').ok, false);
  });
});

describe('doctor output', () => {
  it('one line per check, a remedy on every failing line', () => {
    assert.equal(
      formatCheck({ name: 'BTF', ok: true, required: true, detail: '/sys/kernel/btf/vmlinux' }),
      'ok   BTF: /sys/kernel/btf/vmlinux',
    );
    const fail = {
      name: 'bpffs',
      ok: false,
      required: true,
      detail: 'not mounted',
      remedy: 'mount -t bpf bpf /sys/fs/bpf',
    };
    assert.equal(formatCheck(fail), 'FAIL bpffs: not mounted — remedy: mount -t bpf bpf /sys/fs/bpf');
    const warn = { name: 'css_iter', ok: false, required: false, detail: 'absent', remedy: 'upgrade' };
    assert.equal(checkStatus(warn), 'warn');
    assert.match(formatCheck(warn), /^warn css_iter: absent — remedy: upgrade$/);
    assert.match(formatSummary([fail, warn]), /1 required check failed \(1 optional check failed\)/);
    assert.match(formatSummary([warn]), /all required checks passed/);
  });
});

describe('probeBpffsAccess', () => {
  it('passes for 0755 and for a sticky 1777 mount point', () => {
    assert.equal(probeBpffsAccess(0o40755).ok, true);
    assert.equal(probeBpffsAccess(0o41777).ok, true);
  });
  it('warns, with a remedy, when others cannot reach view files or anyone may move them', () => {
    for (const mode of [0o40700, 0o40777]) {
      const c = probeBpffsAccess(mode);
      assert.equal(c.ok, false, mode.toString(8));
      assert.equal(c.required, false);
      assert.match(c.remedy ?? '', /chmod 0755|mode=0755/);
    }
  });
});
