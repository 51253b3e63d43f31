/**
 * Tagged roots while the daemon runs: the open directory fd of each tree,
 * its hierarchy, what its mirror holds (the model), and the checks a tree
 * root must pass before the daemon acts in it (bpffs, root's alone up to /).
 */
import fs from 'node:fs';
import path from 'node:path';
import { cgroupMounts, hierarchyIdOf, mountOf } from '../cgroup/hierarchy.js';
import { CgviewError, isCgviewError } from '../errors.js';
import {
  type Fd,
  listDir,
  mkdirAt,
  openDir,
  requireBpffs,
  requireRootOwned,
  showPath,
} from '../kernel/index.js';
import { MirrorModel } from '../tree/model.js';
import { decodeRel, relativeTo } from '../tree/paths.js';
import type { TagRoot } from '../tree/state.js';

/** A tagged root while the daemon runs. */
export class RootRuntime {
  fd: Fd | null = null;
  v2 = true;
  hierarchyId = 0;
  conflicts: string[] = [];
  lastError: string | null = null;
  untagTries = 0;
  /** What the tree holds, as the last reconcile of each part of it left it (status counts it). */
  readonly model = new MirrorModel();
  constructor(public cfg: TagRoot) {}

  /** Cgroup-relative path of a directory of this tree (tree names are encoded, see paths.ts). */
  cgroupRel(dir: string): string {
    const rel = decodeRel(relativeTo(this.cfg.dir, dir)!);
    if (rel === null)
      throw new CgviewError('E_NO_MATCH', `${showPath(dir)} is not the name of a mirrored cgroup`, {
        path: dir,
      });
    return rel;
  }

  setHierarchy(): void {
    const mount = mountOf(this.cfg.cgroup, cgroupMounts());
    this.v2 = mount.version === 2;
    this.hierarchyId = hierarchyIdOf(mount);
  }

  /** Opens the tree root (made if missing) after checking it; on failure the error is kept for status. */
  open(): boolean {
    try {
      this.setHierarchy();
      ensureDir(this.cfg.dir);
      const fd = openDir(this.cfg.dir);
      try {
        requireBpffs(fd, this.cfg.dir);
        requireTrusted(fd, this.cfg.dir);
      } catch (e) {
        fd.close();
        throw e;
      }
      this.fd = fd;
      this.lastError = null;
      return true;
    } catch (e) {
      this.lastError = (e as Error).message;
      return false;
    }
  }

  close(): void {
    this.fd?.close();
    this.fd = null;
  }
}

/** Makes a missing tree root directory when its parent is on bpffs. */
export function ensureDir(dir: string): void {
  try {
    openDir(dir).close(); // there already (checked by the caller)
    return;
  } catch (e) {
    if (!isCgviewError(e, 'E_NOT_FOUND')) throw e;
  }
  const parent = openDir(path.posix.dirname(dir));
  try {
    requireBpffs(parent, path.posix.dirname(dir));
    try {
      mkdirAt(parent, path.posix.basename(dir), 0o755);
    } catch (e) {
      if (!isCgviewError(e, 'E_EXISTS')) throw e;
    }
  } finally {
    parent.close();
  }
}

/**
 * A tree root must be root's alone, and so must every directory above it
 * (or be sticky, like /sys/fs/bpf): a user who could rename it or its
 * parents could swap the tree under the daemon.
 */
export function requireTrusted(fd: Fd, dir: string): void {
  requireRootOwned(fd, dir);
  for (let p = path.posix.dirname(dir); ; p = path.posix.dirname(p)) {
    const st = fs.lstatSync(Buffer.from(p, 'latin1'));
    const mode = st.mode & 0o7777;
    if (st.uid !== 0 || (mode & 0o022 && !(mode & 0o1000)))
      throw new CgviewError(
        'E_PERMISSION',
        `${showPath(p)}, above ${showPath(dir)}, is not root's alone: refused`,
        {
          path: p,
          hint: 'put view trees where only root can rename directories',
        },
      );
    if (p === '/') break;
  }
}

/** Checks that `dir` can become a new tagged root: outside the private dir and other trees, on bpffs, trusted, empty. */
export function checkNewRoot(dir: string, privateDir: string, roots: readonly RootRuntime[]): void {
  if (relativeTo(privateDir, dir) !== null)
    throw new CgviewError('E_BAD_INPUT', `${dir} is cgview's private directory`, { path: dir });
  for (const rt of roots)
    if (relativeTo(dir, rt.cfg.dir) !== null)
      throw new CgviewError('E_TAGGED', `${showPath(dir)} contains the tagged tree ${showPath(rt.cfg.dir)}`, {
        path: dir,
      });
  ensureDir(dir);
  const fd = openDir(dir);
  try {
    requireBpffs(fd, dir);
    requireTrusted(fd, dir);
    if (listDir(fd).length > 0)
      throw new CgviewError(
        'E_EXISTS',
        `${showPath(dir)} is not empty: a view tree starts in an empty bpffs directory`,
        {
          path: dir,
        },
      );
  } finally {
    fd.close();
  }
}

/** The tagged root whose tree holds `dir`. */
export function rootOf(roots: readonly RootRuntime[], dir: string): RootRuntime | undefined {
  return roots.find((rt) => relativeTo(rt.cfg.dir, dir) !== null);
}
