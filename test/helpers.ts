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
import { openFds } from '../src/kernel/index.js';

export const CGROUP2 = '/sys/fs/cgroup/unified';
export const CGROUP_V1_CPU = '/sys/fs/cgroup/cpu';
export const BPFFS = '/sys/fs/bpf';
export const REPO = path.resolve(import.meta.dirname, '../..');
export const BPF_BUILD = path.join(REPO, 'build/bpf');
export const CGVIEW = path.join(REPO, 'bin/cgview');

export function uniq(prefix = 'cgvt'): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
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
  return String(dir).startsWith('/sys/fs/cgroup');
}

/** Things to remove after the current test file, newest first. */
const cleanups: Array<() => void> = [];
after(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (e) {
      console.error('cleanup failed:', e);
    }
  }
});

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

/** Number of iter links in the kernel (bpftool link list). */
export function iterLinkCount(): number {
  const out = execFileSync('bpftool', ['-j', 'link', 'list'], { encoding: 'utf8' });
  return (JSON.parse(out) as Array<{ type: string }>).filter((l) => l.type === 'iter').length;
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
