/**
 * Kernel feature probes for `cgview doctor`. Each probe returns a
 * FeatureCheck and never throws: a failure becomes `ok: false` with a remedy.
 * Parsing (mountinfo, CapEff, uname) is pure and takes text, so it is unit
 * tested without root; the probes that load BPF objects close everything
 * they open, also on failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CgviewError, isCgviewError } from '../errors.js';
import {
  BPF_MAP_TYPE_CGRP_STORAGE,
  BTF_HEADER,
  BTF_MAGIC,
  CAP_BPF,
  CAP_PERFMON,
  CAP_SYS_ADMIN,
  checkArch,
  EACCES,
  EPERM,
} from './abi.js';

/** Result of one probe. `required: false` checks only warn when they fail. */
export interface FeatureCheck {
  /** Stable name (scripts match on it): kernel, BTF, bpffs, cgroup2, cgroup_iter, … */
  name: string;
  ok: boolean;
  /** What was found (or what failed), in one line. */
  detail: string;
  /** What the operator can do; set on every failing check. */
  remedy?: string;
  required: boolean;
}

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
export const DEFAULT_BPFFS = '/sys/fs/bpf';

/**
 * Folder with the compiled BPF objects (`make -C bpf`): `build/bpf` at the
 * top of the package, found from this module (dist/src/kernel/features.js)
 * so it works from any working directory. Does not check that it exists.
 */
export function bpfBuildDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/bpf');
}

// --- pure parsing ---------------------------------------------------------

/** One line of /proc/self/mountinfo (see proc(5)). */
export interface MountEntry {
  mountPoint: string;
  root: string;
  fstype: string;
  source: string;
  /** Per-superblock options (for cgroup v1: the controllers, name=…, flags). */
  superOptions: string[];
}

/** Undoes mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/**
 * Parses /proc/self/mountinfo text. The optional fields before ` - ` vary in
 * number, so the filesystem type is found after the separator, not by
 * column. Malformed lines are skipped.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    // fields 0-5 are fixed, optional fields follow, then '-', fstype, source, super options
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    const fstype = f[sep + 1];
    const source = f[sep + 2];
    const superOpts = f[sep + 3];
    if (fstype === undefined || source === undefined) continue;
    out.push({
      root: unescapeMountField(f[3]!),
      mountPoint: unescapeMountField(f[4]!),
      fstype: unescapeMountField(fstype),
      source: unescapeMountField(source),
      superOptions: superOpts === undefined ? [] : superOpts.split(',').map(unescapeMountField),
    });
  }
  return out;
}

// Super options of a v1 cgroup mount that are not controllers.
const V1_FLAGS = new Set([
  'rw',
  'ro',
  'noprefix',
  'clone_children',
  'xattr',
  'cpuset_v2_mode',
  'favordynmods',
  'none',
]);

/**
 * Controllers of a cgroup v1 mount from its super options; a named hierarchy
 * without controllers (name=systemd) is reported as `name=systemd`.
 */
export function cgroupV1Controllers(superOptions: string[]): string[] {
  const ctrls = superOptions.filter((o) => !V1_FLAGS.has(o) && !o.includes('='));
  if (ctrls.length > 0) return ctrls;
  return superOptions.filter((o) => o.startsWith('name='));
}

/** Effective capabilities from /proc/<pid>/status text (`CapEff:` hex mask); null when absent. */
export function parseCapEff(statusText: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  return m ? BigInt(`0x${m[1]}`) : null;
}

// Numbers live in abi.ts (checked against C at build time); these stay exported here as before.
export { CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN };

export function hasCap(mask: bigint, cap: number): boolean {
  return ((mask >> BigInt(cap)) & 1n) === 1n;
}

/** [major, minor] of a kernel release string (`6.18.44-fc-v657`); null when unparsable. */
export function parseKernelRelease(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

// --- probes ---------------------------------------------------------------

/** Runs `fn`; an exception becomes a failed check instead of escaping. */
function guard(name: string, required: boolean, remedy: string, fn: () => FeatureCheck): FeatureCheck {
  try {
    return fn();
  } catch (e) {
    return { name, ok: false, required, detail: describeError(e), remedy };
  }
}

async function guardAsync(
  name: string,
  required: boolean,
  remedy: string,
  fn: () => Promise<FeatureCheck>,
): Promise<FeatureCheck> {
  try {
    return await fn();
  } catch (e) {
    return { name, ok: false, required, detail: describeError(e), remedy: remedyForError(e, remedy) };
  }
}

/** One line for a failure: the message's first line, plus the verifier's last word when there is one. */
function describeError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const first = msg.split('\n')[0]!;
  if (isCgviewError(e, 'E_VERIFIER') && e.log) {
    // the log ends with statistics; the reason is the last line before them
    const reason = e.log
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(processed \d+ insns|verification time)/.test(l))
      .pop();
    if (reason) return `${first} ${reason}`;
  }
  return first;
}

/** A permission error is fixed by privileges, not by a newer kernel: say so. */
function remedyForError(e: unknown, fallback: string): string {
  // the verifier's own EACCES means a rejected program, not missing privileges
  if (isCgviewError(e, 'E_VERIFIER')) return fallback;
  const errno = isCgviewError(e) ? e.errno : (e as NodeJS.ErrnoException | undefined)?.errno;
  // Node's own errors carry errno negated (libuv's -EACCES); ours and libbpf's do not
  const denied = errno !== undefined && [EPERM, EACCES, -EPERM, -EACCES].includes(errno);
  if (denied || isCgviewError(e, 'E_PERMISSION'))
    return 'run cgview as root (it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)';
  return fallback;
}

function readMountinfo(): string {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8');
}

// pins use BPF_F_PATH_FD (6.5) and modes use fchmodat2 (6.6); iter/cgroup is 6.1
const MIN_KERNEL: [number, number] = [6, 6];

/** Kernel release against the minimum cgview's kernel layer uses (6.6). Needs nothing. */
export function probeKernel(release?: string): FeatureCheck {
  const remedy = `upgrade to Linux ${MIN_KERNEL.join('.')} or newer`;
  return guard('kernel', true, remedy, () => {
    const rel = release ?? os.release();
    const v = parseKernelRelease(rel);
    if (!v)
      return {
        name: 'kernel',
        ok: false,
        required: true,
        detail: `cannot read a version from ${rel}`,
        remedy,
      };
    const ok = v[0] > MIN_KERNEL[0] || (v[0] === MIN_KERNEL[0] && v[1] >= MIN_KERNEL[1]);
    const why = `${MIN_KERNEL.join('.')}+ needed: iter/cgroup 6.1, pin by path fd 6.5, fchmodat2 6.6`;
    return ok
      ? { name: 'kernel', ok, required: true, detail: `Linux ${rel} (${why})` }
      : { name: 'kernel', ok, required: true, detail: `Linux ${rel} is too old (${why})`, remedy };
  });
}

/** Kernel BTF readable and well-formed (BTF_MAGIC 0xeB9F): CO-RE relocation needs it. */
export function probeBtf(btfPath = VMLINUX_BTF): FeatureCheck {
  const remedy = 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels are)';
  return guard('BTF', true, remedy, () => {
    const fd = fs.openSync(btfPath, 'r');
    try {
      const { off, size: width } = BTF_HEADER.magic;
      const head = Buffer.alloc(width);
      const n = fs.readSync(fd, head, 0, width, off);
      if (n < width || head.readUInt16LE(0) !== BTF_MAGIC)
        return { name: 'BTF', ok: false, required: true, detail: `${btfPath} is not BTF`, remedy };
      const size = fs.fstatSync(fd).size;
      return {
        name: 'BTF',
        ok: true,
        required: true,
        detail: `${btfPath} (${(size / 1048576).toFixed(1)} MiB)`,
      };
    } finally {
      fs.closeSync(fd);
    }
  });
}

/**
 * bpf filesystems from mountinfo (default: /proc/self/mountinfo). View trees
 * default to /sys/fs/bpf/cgview, so a bpffs elsewhere passes but says so.
 */
export function probeBpffs(mountinfo?: string): FeatureCheck {
  const remedy = `mount -t bpf bpf ${DEFAULT_BPFFS}`;
  return guard('bpffs', true, remedy, () => {
    const mounts = parseMountinfo(mountinfo ?? readMountinfo())
      .filter((m) => m.fstype === 'bpf')
      .map((m) => m.mountPoint);
    if (mounts.length === 0)
      return { name: 'bpffs', ok: false, required: true, detail: 'not mounted', remedy };
    const where = [...new Set(mounts)].join(', ');
    if (mounts.includes(DEFAULT_BPFFS)) return { name: 'bpffs', ok: true, required: true, detail: where };
    return {
      name: 'bpffs',
      ok: true,
      required: true,
      detail: `${where} (not at ${DEFAULT_BPFFS}: pass --bpffs ${mounts[0]}/cgview, or ${remedy})`,
    };
  });
}

/**
 * Whether users other than root can reach view files under the bpffs mount
 * (S7: delegated job owners read their views): the mount point must be
 * searchable by others. World-writable without the sticky bit would let any
 * user move what root made there. Optional: root-only use works either way.
 */
export function probeBpffsAccess(mode?: number): FeatureCheck {
  const remedy = `chmod 0755 ${DEFAULT_BPFFS} (or mount -t bpf -o mode=0755 bpf ${DEFAULT_BPFFS})`;
  return guard('bpffs_access', false, remedy, () => {
    const m = (mode ?? fs.statSync(DEFAULT_BPFFS).mode) & 0o7777;
    const octal = m.toString(8).padStart(4, '0');
    if (!(m & 0o001))
      return {
        name: 'bpffs_access',
        ok: false,
        required: false,
        detail: `${DEFAULT_BPFFS} is mode ${octal}: unprivileged users cannot reach their view files`,
        remedy,
      };
    if (m & 0o002 && !(m & 0o1000))
      return {
        name: 'bpffs_access',
        ok: false,
        required: false,
        detail: `${DEFAULT_BPFFS} is mode ${octal}: world-writable without the sticky bit`,
        remedy,
      };
    return { name: 'bpffs_access', ok: true, required: false, detail: `${DEFAULT_BPFFS} mode ${octal}` };
  });
}

/** The cgroup v2 mount point (fstype cgroup2) from mountinfo, or null. */
export function cgroup2MountPoint(mountinfo: string): string | null {
  const m = parseMountinfo(mountinfo).find((e) => e.fstype === 'cgroup2' && e.root === '/');
  return m ? m.mountPoint : null;
}

/** cgroup v2 mounted (v2 cgroups are named by id in iter links; the default view root). */
export function probeCgroup2(mountinfo?: string): FeatureCheck {
  const remedy = 'mount -t cgroup2 none /sys/fs/cgroup (or /sys/fs/cgroup/unified next to v1 hierarchies)';
  return guard('cgroup2', true, remedy, () => {
    const mp = cgroup2MountPoint(mountinfo ?? readMountinfo());
    return mp
      ? { name: 'cgroup2', ok: true, required: true, detail: `mounted at ${mp}` }
      : { name: 'cgroup2', ok: false, required: true, detail: 'no cgroup2 mount', remedy };
  });
}

/** cgroup v1 hierarchies with their controllers. Optional: only views of v1 cgroups need them. */
export function probeCgroupV1(mountinfo?: string): FeatureCheck {
  const remedy = 'only needed for views of v1 cgroups: mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu';
  return guard('cgroup_v1', false, remedy, () => {
    const v1 = parseMountinfo(mountinfo ?? readMountinfo()).filter((e) => e.fstype === 'cgroup');
    if (v1.length === 0)
      return { name: 'cgroup_v1', ok: false, required: false, detail: 'no v1 hierarchy mounted', remedy };
    const list = v1.map((e) => `${e.mountPoint} (${cgroupV1Controllers(e.superOptions).join(',') || '-'})`);
    return { name: 'cgroup_v1', ok: true, required: false, detail: list.join(', ') };
  });
}

/**
 * Effective capabilities (default: /proc/self/status). Loading tracing and
 * iterator programs needs CAP_BPF and CAP_PERFMON; CAP_SYS_ADMIN covers both.
 */
export function probePrivileges(statusText?: string): FeatureCheck {
  const remedy =
    'run as root, or grant CAP_BPF and CAP_PERFMON (systemd: AmbientCapabilities=CAP_BPF CAP_PERFMON)';
  return guard('privileges', true, remedy, () => {
    const mask = parseCapEff(statusText ?? fs.readFileSync('/proc/self/status', 'utf8'));
    if (mask === null)
      return {
        name: 'privileges',
        ok: false,
        required: true,
        detail: 'no CapEff line in the status',
        remedy,
      };
    const named: Array<[string, number]> = [
      ['CAP_BPF', CAP_BPF],
      ['CAP_PERFMON', CAP_PERFMON],
      ['CAP_SYS_ADMIN', CAP_SYS_ADMIN],
    ];
    const held = named.filter(([, c]) => hasCap(mask, c)).map(([n]) => n);
    const admin = hasCap(mask, CAP_SYS_ADMIN);
    const ok = (hasCap(mask, CAP_BPF) || admin) && (hasCap(mask, CAP_PERFMON) || admin);
    const detail = `CapEff ${mask.toString(16).padStart(16, '0')}: ${held.length ? held.join(', ') : 'none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN'}`;
    return ok
      ? { name: 'privileges', ok, required: true, detail }
      : { name: 'privileges', ok, required: true, detail, remedy };
  });
}

/** The kernel layer, loaded only when a probe needs it: a missing libbpf is then a failed check, not a crash. */
async function kernel(): Promise<typeof import('./bpf.js')> {
  try {
    return await import('./bpf.js');
  } catch (e) {
    throw new Error(`cannot load libbpf through koffi: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}

function objectPath(buildDir: string, file: string): string {
  const p = path.join(buildDir, file);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing`);
  return p;
}

const BUILD_REMEDY = 'build the BPF objects: make -C bpf (or scripts/setup.sh)';

export interface ProbeOptions {
  /** Folder of the compiled BPF objects (default: bpfBuildDir()). */
  buildDir?: string;
  /** mountinfo text (default: /proc/self/mountinfo). */
  mountinfo?: string;
  /** /proc/self/status text (default: read it). */
  status?: string;
  /** Kernel release (default: os.release()). */
  release?: string;
  /** Path of the kernel BTF (default: /sys/kernel/btf/vmlinux). */
  btfPath?: string;
  /** Mode bits of the bpffs mount point (default: stat it). */
  bpffsMode?: number;
  /** Architecture as Node names it (default: process.arch). */
  arch?: string;
}

/**
 * Loads `info` from build/bpf/info.bpf.o, creates an iter/cgroup link for the
 * v2 root cgroup by id and reads it (Linux 6.1+, CAP_BPF + CAP_PERFMON).
 * Everything opened is closed before it returns.
 */
export async function probeCgroupIter(opts: ProbeOptions = {}): Promise<FeatureCheck> {
  const remedy =
    'iter/cgroup needs Linux 6.1+ with CONFIG_BPF_SYSCALL, CONFIG_DEBUG_INFO_BTF and CONFIG_CGROUPS';
  const buildDir = opts.buildDir ?? bpfBuildDir();
  let file: string;
  try {
    file = objectPath(buildDir, 'info.bpf.o');
  } catch (e) {
    return { name: 'cgroup_iter', ok: false, required: true, detail: describeError(e), remedy: BUILD_REMEDY };
  }
  return guardAsync('cgroup_iter', true, remedy, async () => {
    // The v2 root's cgroup id is the inode of its directory (1 on every kernel so far).
    let rootId = 1n;
    const mp = cgroup2MountPoint(opts.mountinfo ?? readMountinfo());
    if (mp) rootId = fs.statSync(mp, { bigint: true }).ino;
    const { BpfObject } = await kernel();
    const obj = BpfObject.load(file);
    try {
      const link = obj.program('info').cgroupIter({ id: rootId });
      try {
        const text = link.read().toString('utf8');
        const m = /^cgroup_id: (\d+)$/m.exec(text);
        if (!m || BigInt(m[1]!) !== rootId)
          return {
            name: 'cgroup_iter',
            ok: false,
            required: true,
            detail: `the link for cgroup ${rootId} printed ${JSON.stringify(text.slice(0, 80))}, not its cgroup_id`,
            remedy,
          };
        return {
          name: 'cgroup_iter',
          ok: true,
          required: true,
          detail: `iter/cgroup link for the v2 root (id ${rootId}) reads cgroup_id: ${m[1]}`,
        };
      } finally {
        link.close();
      }
    } finally {
      obj.close();
    }
  });
}

/**
 * Loads `fixture_switch` (tp_btf/sched_switch) from test_fixture.bpf.o,
 * attaches it and detaches it again (Linux 5.5+ with BTF, CAP_BPF + CAP_PERFMON).
 */
export async function probeTpBtf(opts: ProbeOptions = {}): Promise<FeatureCheck> {
  const remedy = 'tp_btf needs Linux 5.5+ with CONFIG_DEBUG_INFO_BTF and the BPF JIT (CONFIG_BPF_JIT)';
  let file: string;
  try {
    file = objectPath(opts.buildDir ?? bpfBuildDir(), 'test_fixture.bpf.o');
  } catch (e) {
    return { name: 'tp_btf', ok: false, required: true, detail: describeError(e), remedy: BUILD_REMEDY };
  }
  return guardAsync('tp_btf', true, remedy, async () => {
    const { BpfObject } = await kernel();
    const obj = BpfObject.load(file, { programs: ['fixture_switch'] });
    try {
      obj.program('fixture_switch').attach().close();
      return {
        name: 'tp_btf',
        ok: true,
        required: true,
        detail: 'tp_btf/sched_switch program loads and attaches',
      };
    } finally {
      obj.close();
    }
  });
}

/**
 * Loads probe_cgrp_storage.bpf.o (a BPF_MAP_TYPE_CGRP_STORAGE map used from
 * tp_btf/sched_switch via bpf_cgrp_storage_get) and attaches it (Linux 6.2+).
 * Required: the sched_lat collector keeps its per-cgroup data there.
 */
export async function probeCgrpStorage(opts: ProbeOptions = {}): Promise<FeatureCheck> {
  const remedy =
    'cgroup local storage (BPF_MAP_TYPE_CGRP_STORAGE, used by the sched_lat collector) needs Linux 6.2+';
  let file: string;
  try {
    file = objectPath(opts.buildDir ?? bpfBuildDir(), 'probe_cgrp_storage.bpf.o');
  } catch (e) {
    return {
      name: 'cgrp_storage',
      ok: false,
      required: true,
      detail: describeError(e),
      remedy: BUILD_REMEDY,
    };
  }
  return guardAsync('cgrp_storage', true, remedy, async () => {
    const { BpfObject } = await kernel();
    const obj = BpfObject.load(file);
    try {
      const type = obj.map('probe_cgrp_storage').info().type;
      if (type !== BPF_MAP_TYPE_CGRP_STORAGE)
        return {
          name: 'cgrp_storage',
          ok: false,
          required: true,
          detail: `map type is ${type}, not ${BPF_MAP_TYPE_CGRP_STORAGE}`,
          remedy,
        };
      obj.program('probe_cgrp_storage_switch').attach().close();
      return {
        name: 'cgrp_storage',
        ok: true,
        required: true,
        detail: 'BPF_MAP_TYPE_CGRP_STORAGE map loads and a tp_btf program using it attaches',
      };
    } finally {
      obj.close();
    }
  });
}

/**
 * Whether the kernel BTF names the `bpf_iter_css_new` kfunc (open-coded css
 * iterator, Linux 6.7+). Only a string search, no program is loaded. Optional.
 */
export function probeCssIter(btfPath = VMLINUX_BTF): FeatureCheck {
  const remedy = 'optional, for views that walk descendant cgroups in BPF: upgrade to Linux 6.7+';
  return guard('css_iter', false, remedy, () => {
    const found = fs.readFileSync(btfPath).includes('bpf_iter_css_new\0');
    return found
      ? { name: 'css_iter', ok: true, required: false, detail: `kfunc bpf_iter_css_new in ${btfPath}` }
      : {
          name: 'css_iter',
          ok: false,
          required: false,
          detail: `no kfunc bpf_iter_css_new in ${btfPath}`,
          remedy,
        };
  });
}

/** Every probe, in the order doctor prints them. Never throws. */
export async function probeAll(opts: ProbeOptions = {}): Promise<FeatureCheck[]> {
  let mountinfo = opts.mountinfo;
  try {
    mountinfo ??= readMountinfo();
  } catch {
    // each mount probe then reports the read error itself
  }
  const o = { ...opts, ...(mountinfo === undefined ? {} : { mountinfo }) };
  return [
    // First: on another architecture cgview's syscall numbers and struct layouts are wrong, whatever the rest says.
    checkArch(o.arch),
    probeKernel(o.release),
    probeBtf(o.btfPath),
    probeBpffs(o.mountinfo),
    probeBpffsAccess(o.bpffsMode),
    probeCgroup2(o.mountinfo),
    probeCgroupV1(o.mountinfo),
    probePrivileges(o.status),
    await probeCgroupIter(o),
    await probeTpBtf(o),
    await probeCgrpStorage(o),
    probeCssIter(o.btfPath),
  ];
}

// --- CPUs and views ---------------------------------------------------------

export const POSSIBLE_CPUS = '/sys/devices/system/cpu/possible';

/** How many CPU slots a kernel CPU list ("0-3,8-11") needs: its highest id + 1. Throws on anything else. */
export function cpuListCount(text: string): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) {
      if (part === '') continue;
      throw new CgviewError('E_BAD_INPUT', `not a CPU list: ${JSON.stringify(text.slice(0, 80))}`);
    }
    n = Math.max(n, Number(m[2] ?? m[1]) + 1);
  }
  return n;
}

/** A built-in view as doctor tries it: its object and program, the kfuncs it calls, its collector. */
export interface ViewProbe {
  name: string;
  object: string;
  program: string;
  kfuncs: string[];
  collector?: { name: string; object: string; cpuMap?: string };
}

export interface ViewProbeOptions extends ProbeOptions {
  /** Text of /sys/devices/system/cpu/possible (default: read it). */
  possibleCpus?: string;
}

/**
 * Which views this kernel and machine can run (`views`), and the CPU limit
 * of the collectors (`cpus`). Each view's object is loaded with its program
 * alone (and its collector's object, without attaching anything), after
 * checking that the kernel BTF has the kfuncs it calls. Both optional checks:
 * a view that cannot run does not stop the others. Closes all it loads.
 */
export async function probeViews(views: ViewProbe[], opts: ViewProbeOptions = {}): Promise<FeatureCheck[]> {
  const buildDir = opts.buildDir ?? bpfBuildDir();
  let btf: Buffer | null = null;
  try {
    btf = fs.readFileSync(opts.btfPath ?? VMLINUX_BTF);
  } catch {
    // kfuncs cannot be checked: the loads say what is missing
  }
  let cpus: number | null = null;
  let cpuText = '';
  try {
    cpuText = (opts.possibleCpus ?? fs.readFileSync(POSSIBLE_CPUS, 'latin1')).trim();
    cpus = cpuListCount(cpuText);
  } catch {
    // reported by the cpus check
  }
  const collectors = new Map<string, { error?: string; slots?: number }>();
  const limits: string[] = [];
  const can: string[] = [];
  const cannot: string[] = [];
  let bpf: typeof import('./bpf.js') | null = null;
  try {
    bpf = await kernel();
  } catch (e) {
    const detail = describeError(e);
    return [
      { name: 'cpus', ok: false, required: false, detail, remedy: BUILD_REMEDY },
      { name: 'views', ok: false, required: false, detail, remedy: BUILD_REMEDY },
    ];
  }
  for (const v of views) {
    const missing = btf ? v.kfuncs.filter((k) => !btf.includes(`${k}\0`)) : [];
    if (missing.length) {
      cannot.push(`${v.name} (needs kfunc ${missing.join(', ')}: the css iterator is Linux 6.7+)`);
      continue;
    }
    if (v.collector) {
      let c = collectors.get(v.collector.name);
      if (!c) {
        c = {};
        try {
          const o = bpf.BpfObject.load(objectPath(buildDir, v.collector.object));
          try {
            if (v.collector.cpuMap) c.slots = o.map(v.collector.cpuMap).info().maxEntries;
          } finally {
            o.close();
          }
        } catch (e) {
          c.error = describeError(e);
        }
        collectors.set(v.collector.name, c);
        if (c.slots !== undefined) limits.push(`the ${v.collector.name} collector follows up to ${c.slots}`);
      }
      if (c.error) {
        cannot.push(`${v.name} (its collector ${v.collector.name}: ${c.error})`);
        continue;
      }
      if (c.slots !== undefined && cpus !== null && cpus > c.slots) {
        cannot.push(`${v.name} (${cpus} possible CPUs, its collector follows ${c.slots})`);
        continue;
      }
    }
    try {
      bpf.BpfObject.load(objectPath(buildDir, v.object), {
        programs: [v.program],
        section: 'iter/cgroup',
      }).close();
      can.push(v.name);
    } catch (e) {
      cannot.push(`${v.name} (${describeError(e)})`);
    }
  }
  const over = [...collectors.entries()].filter(
    ([, c]) => c.slots !== undefined && cpus !== null && cpus > c.slots,
  );
  const cpuCheck: FeatureCheck =
    cpus === null
      ? {
          name: 'cpus',
          ok: false,
          required: false,
          detail: `cannot read the possible CPUs from ${POSSIBLE_CPUS}`,
          remedy: 'collector views need /sys mounted',
        }
      : over.length
        ? {
            name: 'cpus',
            ok: false,
            required: false,
            detail: `${cpus} possible CPUs (${cpuText}): more than ${limits.join(', ')}`,
            remedy: `views of ${over.map(([n]) => n).join(', ')} cannot run on this machine (docs/sched_lat.md)`,
          }
        : {
            name: 'cpus',
            ok: true,
            required: false,
            detail: `${cpus} possible CPUs (${cpuText})${limits.length ? `; ${limits.join(', ')}` : ''}`,
          };
  const viewCheck: FeatureCheck = cannot.length
    ? {
        name: 'views',
        ok: false,
        required: false,
        detail: `can run: ${can.join(', ') || 'none'}; cannot run: ${cannot.join('; ')}`,
        remedy: 'see each reason; docs/views.md says what each built-in view needs',
      }
    : { name: 'views', ok: true, required: false, detail: `can run: ${can.join(', ')}` };
  return [cpuCheck, viewCheck];
}
