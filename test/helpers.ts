/**
 * Test helpers for the real kernel: temporary cgroups and bpffs directories
 * with unique names, removed in after hooks (also on failure), and a check
 * that a test leaves no descriptor of src/kernel open.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, beforeEach } from 'node:test';
import { parseMountinfo } from '../src/kernel/features.js';
import { linkIds, linkInfoById, openFds } from '../src/kernel/index.js';

// Mounts as this host has them (/proc/self/mountinfo), not where they usually are.
const mounts = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
/** Mount points of every cgroup hierarchy, v2 and v1. */
export const CGROUP_MOUNTS = mounts
  .filter((m) => (m.fstype === 'cgroup2' || m.fstype === 'cgroup') && m.root === '/')
  .map((m) => m.mountPoint);
/** The cgroup v2 mount. */
export const CGROUP2 =
  mounts.find((m) => m.fstype === 'cgroup2' && m.root === '/')?.mountPoint ?? '/sys/fs/cgroup';
/** A v1 hierarchy with the cpu controller (the conventional path when there is none: its tests then fail). */
export const CGROUP_V1_CPU =
  mounts.find((m) => m.fstype === 'cgroup' && m.root === '/' && m.superOptions.includes('cpu'))?.mountPoint ??
  '/sys/fs/cgroup/cpu';
/** A bpffs mount: /sys/fs/bpf when it is one, else the first there is. */
const bpfMounts = mounts.filter((m) => m.fstype === 'bpf').map((m) => m.mountPoint);
export const BPFFS = bpfMounts.includes('/sys/fs/bpf') ? '/sys/fs/bpf' : (bpfMounts[0] ?? '/sys/fs/bpf');
export const REPO = path.resolve(import.meta.dirname, '../..');
export const BPF_BUILD = path.join(REPO, 'build/bpf');
export const CGVIEW = path.join(REPO, 'bin/cgview');

/**
 * This run of the suite: scripts/test.sh exports CGVIEW_TEST_RUN; without it,
 * the test runner's pid (node --test runs every file as its child). Names
 * made by uniq() carry it, so that test/zz-leftovers.test.ts checks only
 * what this run made, not what another run beside it has right now.
 */
export const RUN = /^[a-z0-9]+$/.test(process.env['CGVIEW_TEST_RUN'] ?? '')
  ? process.env['CGVIEW_TEST_RUN']!
  : `p${process.ppid}`;
/** What every uniq() name of this run starts with. */
export const RUN_PREFIX = `cgvt-${RUN}-`;

export function uniq(prefix = 'cgvt'): string {
  return `${prefix}-${RUN}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Removes a directory tree bottom-up with rmdir/unlink (cgroupfs and bpffs need that). */
export function removeTree(dir: string | Buffer): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    fs.rmSync(dir, { force: true });
    return;
  }
  for (const e of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    const p = Buffer.concat([Buffer.from(dir), Buffer.from('/'), e.name]);
    if (e.isDirectory()) removeTree(p);
    else if (!isCgroupFs(dir)) fs.rmSync(p, { force: true });
  }
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw e;
      execFileSync('sleep', ['0.05']);
    }
  }
}

function isCgroupFs(dir: string | Buffer): boolean {
  const d = String(dir);
  return CGROUP_MOUNTS.some((m) => d === m || d.startsWith(`${m}/`));
}

/** Things to remove after the current test file, newest first. */
const cleanups: Array<() => void> = [];
after(() => runCleanups());

/** Runs the cleanups now (a script outside node:test, such as the gauntlet, calls it itself). */
export function runCleanups(): void {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (e) {
      console.error('cleanup failed:', e);
    }
  }
}

export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

/** A new cgroup under `parent` (default: the v2 root), removed after the file's tests. */
export function tmpCgroup(parent = CGROUP2, name = uniq()): string {
  const p = path.join(parent, name);
  fs.mkdirSync(p);
  onCleanup(() => removeTree(p));
  return p;
}

/** A new directory on bpffs, removed (with everything pinned in it) after the file's tests. */
export function tmpBpffsDir(name = uniq()): string {
  const p = path.join(BPFFS, name);
  fs.mkdirSync(p);
  onCleanup(() => removeTree(p));
  return p;
}

/** Fails a test that leaves a src/kernel descriptor open. Call at the top of a describe/file. */
export function checkFdLeaks(): void {
  let before = new Set<number>();
  beforeEach(() => {
    before = new Set(openFds().keys());
  });
  afterEach(() => {
    const leaked = [...openFds()].filter(([fd]) => !before.has(fd));
    assert.deepEqual(
      leaked,
      [],
      `descriptors left open: ${leaked.map(([fd, w]) => `${fd} (${w})`).join(', ')}`,
    );
  });
}

export function inode(p: string): bigint {
  return fs.statSync(p, { bigint: true }).ino;
}

/** An iter/cgroup link, as bpftool -j names its fields. */
export interface LinkRow {
  id: number;
  type: string;
  prog_id: number;
  cgroup_id: number;
}

/**
 * The iter/cgroup links in the kernel whose cgroup is one of `ids` (cgroup
 * ids as strings): link ids walked one by one (BPF_LINK_GET_NEXT_ID), never a
 * whole listing, so links of other users of the host are only skipped.
 */
export function iterLinksOf(ids: Iterable<string>): LinkRow[] {
  const want = new Set(ids);
  const out: LinkRow[] = [];
  for (const id of linkIds()) {
    const l = linkInfoById(id); // null: gone since the walk saw it
    if (l?.cgroupId !== undefined && want.has(String(l.cgroupId)))
      out.push({ id: l.id, type: 'iter', prog_id: l.progId, cgroup_id: Number(l.cgroupId) });
  }
  return out;
}

/** BPF objects a process holds through its descriptors (/proc/PID/fdinfo): what it owns, and only that. */
export function heldBpf(pid: number | 'self' = 'self'): {
  fds: number;
  links: Set<number>;
  progs: Set<number>;
} {
  const links = new Set<number>();
  const progs = new Set<number>();
  let fds = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile
    }
    fds++;
    const link = /^link_id:\s+(\d+)/m.exec(text);
    const prog = /^prog_id:\s+(\d+)/m.exec(text);
    if (link) links.add(Number(link[1]));
    if (prog) progs.add(Number(prog[1]));
  }
  return { fds, links, progs };
}

/** VmRSS of process `pid` in bytes (throws once it is gone). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `VmRSS of ${pid}`);
  return Number(m[1]) * 1024;
}

/** The RSS of a process sampled every 20 ms until stop(): its value at the start and the largest seen. */
export class RssPeak {
  readonly base: number;
  #peak: number;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    this.base = rssBytes(pid);
    this.#peak = this.base;
    this.#timer = setInterval(() => this.sample(), 20).unref();
  }

  /** One sample now (none once the process is gone); the peak so far. */
  sample(): number {
    try {
      this.#peak = Math.max(this.#peak, rssBytes(this.pid));
    } catch {
      /* gone */
    }
    return this.#peak;
  }

  get peak(): number {
    return this.#peak;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function waitFor<T>(fn: () => T, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    // A promise is always truthy: an async condition needs waitForAsync (test/daemon.ts).
    if (v instanceof Promise) throw new Error(`waitFor got a promise for ${what}: use waitForAsync`);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
