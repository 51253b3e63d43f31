/** `cgview doctor` and its probes on the real kernel, as root. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatCheck, viewProbes } from '../../src/cli/doctor.js';
import {
  bpfBuildDir,
  type FeatureCheck,
  probeAll,
  probeBpffs,
  probeBtf,
  probeCgroup2,
  probeCgroupIter,
  probeCgroupV1,
  probeCgrpStorage,
  probeCssIter,
  probeKernel,
  probePrivileges,
  probeTpBtf,
  probeViews,
} from '../../src/kernel/features.js';
import { BPF_BUILD, CGROUP2, CGVIEW, checkFdLeaks, heldBpf, onCleanup, REPO } from '../helpers.js';

checkFdLeaks();

const NAMES = [
  'arch',
  'kernel',
  'BTF',
  'bpffs',
  'bpffs_access',
  'cgroup2',
  'cgroup_v1',
  'privileges',
  'cgroup_iter',
  'tp_btf',
  'cgrp_storage',
  'css_iter',
];

/** What `cgview doctor` prints after the kernel checks: the CPU limit and which views can run. */
const CLI_NAMES = [...NAMES, 'cpus', 'views'];

function assertOk(c: FeatureCheck): void {
  assert.equal(c.ok, true, `${c.name}: ${c.detail} (${c.remedy ?? ''})`);
  assert.equal(c.remedy, undefined);
}

/** Every fd of this process, libbpf's included (openFds only sees src/kernel's own). */
function processFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function emptyDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-doctor-'));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('each probe passes on this machine', () => {
  it('bpfBuildDir is the repository build/bpf', () => {
    assert.equal(bpfBuildDir(), BPF_BUILD);
  });
  it('kernel', () => assertOk(probeKernel()));
  it('BTF', () => assertOk(probeBtf()));
  it('bpffs', () => {
    const c = probeBpffs();
    assertOk(c);
    assert.match(c.detail, /\/sys\/fs\/bpf/);
  });
  it('cgroup2', () => {
    const c = probeCgroup2();
    assertOk(c);
    assert.ok(c.detail.includes(CGROUP2), c.detail);
  });
  it('cgroup v1', () => {
    const c = probeCgroupV1();
    assertOk(c);
    assert.match(c.detail, /\/sys\/fs\/cgroup\/cpu \(cpu\)/);
    assert.match(c.detail, /\/sys\/fs\/cgroup\/memory \(memory\)/);
  });
  it('privileges', () => assertOk(probePrivileges()));
  it('iter/cgroup loads, attaches to the v2 root and prints its cgroup_id', async () => {
    const c = await probeCgroupIter();
    assertOk(c);
    assert.match(c.detail, /cgroup_id: 1\b/);
  });
  it('tp_btf loads and attaches', async () => assertOk(await probeTpBtf()));
  it('cgroup local storage loads and attaches', async () => assertOk(await probeCgrpStorage()));
  it('open-coded css iterator kfunc is in the kernel BTF', () => assertOk(probeCssIter()));

  it('probeAll returns every check, all passing', async () => {
    const checks = await probeAll();
    assert.deepEqual(
      checks.map((c) => c.name),
      NAMES,
    );
    for (const c of checks) assertOk(c);
  });
});

describe('missing features get a remedy', () => {
  it('another architecture: arch, the first check, fails with a remedy', async () => {
    const checks = await probeAll({ arch: 'arm64' });
    const arch = checks[0]!;
    assert.equal(arch.name, 'arch');
    assert.equal(arch.ok, false);
    assert.equal(arch.required, true);
    assert.match(arch.detail, /^arm64: .*x86_64 only/);
    assert.match(formatCheck(arch), /^FAIL arch: arm64: .* — remedy: run cgview on x86_64/);
  });

  it('no bpffs in mountinfo', () => {
    const mountinfo = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => !/ - bpf /.test(l))
      .join('\n');
    const c = probeBpffs(mountinfo);
    assert.equal(c.ok, false);
    assert.equal(c.required, true);
    assert.equal(c.remedy, 'mount -t bpf bpf /sys/fs/bpf');
  });

  it('no BTF file', () => {
    const c = probeBtf('/nonexistent/vmlinux');
    assert.equal(c.ok, false);
    assert.match(c.remedy ?? '', /CONFIG_DEBUG_INFO_BTF/);
    const notBtf = probeBtf('/proc/self/status');
    assert.equal(notBtf.ok, false);
    assert.match(notBtf.detail, /not BTF/);
  });

  it('BPF objects not built: every loading probe says how to build them', async () => {
    const buildDir = emptyDir();
    for (const c of [
      await probeCgroupIter({ buildDir }),
      await probeTpBtf({ buildDir }),
      await probeCgrpStorage({ buildDir }),
    ]) {
      assert.equal(c.ok, false, c.name);
      assert.match(c.detail, /is missing/);
      assert.match(c.remedy ?? '', /make -C bpf/);
    }
  });

  it('an object the kernel rejects fails the probe with the verifier reason and a remedy', async () => {
    // A build dir whose info.bpf.o is the fixture the verifier refuses.
    const buildDir = emptyDir();
    fs.copyFileSync(path.join(BPF_BUILD, 'test_bad.bpf.o'), path.join(buildDir, 'info.bpf.o'));
    const c = await probeCgroupIter({ buildDir });
    assert.equal(c.ok, false);
    assert.match(c.detail, /verifier rejected program test_bad: \S/);
    assert.match(c.remedy ?? '', /Linux 6\.1/, 'a rejected program is not a privilege problem');
    assert.doesNotMatch(c.detail, /\n/, 'one line');
  });

  it('no css iterator kfunc is only a warning', () => {
    const c = probeCssIter('/proc/self/status');
    assert.equal(c.ok, false);
    assert.equal(c.required, false);
    assert.match(c.remedy ?? '', /6\.7/);
  });
});

describe('probes leave nothing behind', () => {
  it('no descriptor (libbpf included), program or BPF link outlives probeAll and probeViews', async () => {
    await probeAll(); // warm up: lazy imports, koffi libraries
    await probeViews(viewProbes());
    const fds = processFds();
    const held = () => {
      const { links, progs } = heldBpf();
      return { links, progs };
    };
    const before = held();
    for (let i = 0; i < 3; i++) {
      await probeAll();
      await probeViews(viewProbes());
    }
    assert.equal(processFds(), fds);
    // The probes pin nothing: a link or program outlives them only through a descriptor of this process.
    assert.deepEqual(held(), before);
  });
});

describe('cgview doctor', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(REPO, 'bin/cgview'), 'doctor', ...args], {
      encoding: 'utf8',
      cwd: os.tmpdir(), // the objects are found from the module, not the working directory
    });

  it('exits 0 and prints one line per check mentioning BTF, bpffs, cgroup and iter', () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr + r.stdout);
    for (const word of ['BTF', 'bpffs', 'cgroup', 'iter']) assert.match(r.stdout, new RegExp(word));
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, CLI_NAMES.length + 1);
    for (const [i, name] of CLI_NAMES.entries()) assert.ok(lines[i]!.startsWith(`ok   ${name}: `), lines[i]);
    assert.match(lines.at(-1)!, /all required checks passed/);
  });

  it('--json prints every check for scripts', () => {
    const r = run('--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; checks: FeatureCheck[] };
    assert.equal(out.ok, true);
    assert.deepEqual(
      out.checks.map((c) => c.name),
      CLI_NAMES,
    );
    for (const c of out.checks) {
      assert.equal(typeof c.detail, 'string');
      assert.equal(typeof c.required, 'boolean');
      assert.equal(c.ok, true, c.name);
    }
  });

  it('refuses unknown options and arguments', () => {
    const r = spawnSync(CGVIEW, ['doctor', '--bogus'], { encoding: 'utf8' });
    assert.equal(r.status, 2); // a usage error (docs/errors.md)
    assert.match(r.stderr, /unknown option --bogus/);
    const r2 = run('extra');
    assert.equal(r2.status, 2); // also a usage error, not a failed check (1)
    assert.match(r2.stderr, /doctor takes no arguments/);
  });
});

describe('which views this kernel can run', () => {
  it('here: every built-in view, and the CPU limit of the sched_lat collector', async () => {
    const [cpus, views] = await probeViews(viewProbes());
    assertOk(cpus!);
    assert.match(cpus!.detail, /the sched_lat collector follows up to 256/);
    assertOk(views!);
    assert.equal(views!.detail, 'can run: info, sched_lat, sched_lat_tree, cpu, sched_culprits');
  });

  it('a kernel without the css iterator (6.6): sched_lat runs, sched_lat_tree does not', async () => {
    // The kfuncs are looked up in the kernel BTF: one without them, as on 6.6.
    const btf = path.join(emptyDir(), 'vmlinux');
    fs.writeFileSync(
      btf,
      Buffer.from(
        fs
          .readFileSync('/sys/kernel/btf/vmlinux')
          .toString('latin1')
          .replaceAll('bpf_iter_css_', 'bpf_iter_xxx_'),
        'latin1',
      ),
    );
    const [, views] = await probeViews(viewProbes(), { btfPath: btf });
    assert.equal(views!.ok, false);
    assert.equal(views!.required, false, 'a view that cannot run is a warning');
    assert.match(
      views!.detail,
      /^can run: info, sched_lat, cpu, sched_culprits; cannot run: sched_lat_tree \(needs kfunc bpf_iter_css_destroy, bpf_iter_css_new, bpf_iter_css_next/,
    );
    assert.ok(views!.remedy);
  });

  it('more possible CPUs than the collector follows: cpus warns, sched_lat views cannot run', async () => {
    const [cpus, views] = await probeViews(viewProbes(), { possibleCpus: '0-511\n' });
    assert.equal(cpus!.ok, false);
    assert.match(
      cpus!.detail,
      /^512 possible CPUs \(0-511\): more than the sched_lat collector follows up to 256/,
    );
    assert.match(cpus!.remedy!, /views of sched_lat, sched_culprits cannot run/);
    assert.match(
      views!.detail,
      /^can run: info, cpu; cannot run: sched_lat \(512 possible CPUs, its collector follows 256\).*; sched_culprits \(512 possible CPUs/,
    );
  });
});
