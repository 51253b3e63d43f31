/**
 * The view tree on bpffs: snapshots of what is there (scan) and carrying out
 * reconcile ops (apply). Every path is walked from the tagged root's
 * directory fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a user
 * who can write into the tree can make us fail, never act outside it.
 */
import fs from 'node:fs';
import { CgviewError, isCgviewError } from '../errors.js';
import { ENOTEMPTY } from '../kernel/abi.js';
import {
  chmodAt,
  chownAt,
  type Fd,
  fixPinnedFile,
  linkInfo,
  listDir,
  mkdirAt,
  objGetAt,
  openDir,
  openDirAt,
  progFdById,
  progInfo,
  progMapIds,
  showPath,
  statAt,
  statFd,
  unlinkAt,
} from '../kernel/index.js';
import type { LoadedView } from '../views/registry.js';
import { crashPoint } from './crash.js';
import { baseName, childKey, encodeName, encodeRel, join, parentRel } from './paths.js';
import { type ActualDir, type ActualFile, type Op, opPath } from './reconcile.js';

/** Program id → tag and map ids, so each pinned program is asked once per scan. */
export class TagCache {
  readonly #known = new Map<number, { tag: string; mapIds: number[] }>();
  get(progId: number): { tag: string; mapIds: number[] } | undefined {
    let t = this.#known.get(progId);
    if (t === undefined) {
      try {
        const fd = progFdById(progId);
        try {
          t = { tag: progInfo(fd).tag, mapIds: progMapIds(fd) };
        } finally {
          fd.close();
        }
      } catch {
        return undefined;
      }
      this.#known.set(progId, t);
    }
    return t;
  }
}

/** What one entry of a tree directory is: our kind of view pin, another pin, a symlink, ... */
export function classify(dir: Fd, name: string, tags: TagCache): ActualFile | null {
  const st = statAt(dir, name);
  if (!st || st.isDir) return null;
  const base = { mode: st.mode, uid: st.uid, gid: st.gid };
  if (st.isSymlink) return { kind: 'symlink', ...base };
  let obj: Fd | null = null;
  try {
    obj = objGetAt(dir, name);
  } catch {
    return { kind: 'other', ...base };
  }
  if (!obj) return null;
  try {
    const li = linkInfo(obj);
    if (li.cgroupId === undefined) return { kind: 'foreign', ...base };
    const prog = tags.get(li.progId);
    return {
      kind: 'view',
      cgroupId: li.cgroupId,
      ...(prog ? { progTag: prog.tag, mapIds: prog.mapIds } : {}),
      ...base,
    };
  } catch {
    return { kind: 'foreign', ...base }; // a pinned map or program, not a link
  } finally {
    obj.close();
  }
}

/** The directory a caller checked (by its descriptor) before asking for it: device and inode. */
export interface ExpectedDir {
  dev: bigint | number;
  ino: bigint | number;
}

/**
 * Snapshot of the tree under `scope` (relative to the root fd). A scope that
 * is missing gives an empty map; a symlink in place of a directory is not
 * entered (it shows up as a file of its parent, kind 'symlink'). With
 * `expect`, the scope's directory once opened must be that inode (E_PERMISSION
 * otherwise): what was checked by path is what is listed, through one fd.
 */
export function scanTree(
  root: Fd,
  scope = '',
  tags = new TagCache(),
  shallow = false,
  /**
   * Directories to enter (default: all). Others are listed but not entered:
   * whatever a user built below a name that is no cgroup is removed whole
   * (removeSubtree), never walked.
   */
  descend: (rel: string) => boolean = () => true,
  expect?: ExpectedDir,
): Map<string, ActualDir> {
  const out = new Map<string, ActualDir>();
  const walk = (rel: string, fd: Fd) => {
    const self = rel === '' ? null : statFd(fd);
    const dir: ActualDir = {
      uid: self?.uid ?? 0,
      gid: self?.gid ?? 0,
      ...(self ? { mode: self.mode } : {}),
      files: new Map(),
    };
    out.set(rel, dir);
    for (const e of listDir(fd)) {
      if (e.isDir) {
        const key = childKey(e.name);
        const childRel = rel === '' ? key : `${rel}/${key}`;
        if (shallow) continue;
        if (!descend(childRel)) {
          out.set(childRel, { uid: -1, gid: -1, files: new Map() });
          continue;
        }
        let child: Fd;
        try {
          child = openDirAt(fd, e.name);
        } catch {
          continue; // removed or swapped meanwhile
        }
        try {
          walk(childRel, child);
        } finally {
          child.close();
        }
        continue;
      }
      const f = classify(fd, e.name, tags);
      if (f) dir.files.set(e.name, f);
    }
  };
  let fd: Fd;
  try {
    fd = scope === '' ? openDirAt(root, '.') : openDirAt(root, encodeRel(scope));
  } catch {
    return out;
  }
  try {
    if (expect) {
      const st = fs.fstatSync(fd.fd, { bigint: true });
      if (st.dev !== BigInt(expect.dev) || st.ino !== BigInt(expect.ino))
        throw new CgviewError('E_PERMISSION', `${showPath(scope)} changed while it was checked; not listed`, {
          path: scope,
          hint: 'try again',
        });
    }
    walk(scope, fd);
  } finally {
    fd.close();
  }
  return out;
}

/**
 * Snapshot of some files of known directories: for each of `rels` that is
 * still a directory (reached from the root without symlinks), the entries
 * named in `names`. Directories' own owner and mode are not looked at.
 */
export function scanNames(
  root: Fd,
  rels: Iterable<string>,
  names: readonly string[],
  tags = new TagCache(),
  /** Given: the directories stay open in it, for applyOps on what was looked at (the caller closes them). */
  keep?: Map<string, Fd>,
  /** Given: the directories that could not be opened (gone or swapped meanwhile) go in it. */
  missed?: string[],
): Map<string, ActualDir> {
  const out = new Map<string, ActualDir>();
  for (const rel of rels) {
    const fd = openTreeDir(root, rel);
    if (!fd) {
      missed?.push(rel);
      continue;
    }
    try {
      const files = new Map<string, ActualFile>();
      for (const n of names) {
        const f = classify(fd, n, tags);
        if (f) files.set(n, f);
      }
      out.set(rel, { uid: -1, gid: -1, files });
    } finally {
      if (keep) keep.set(rel, fd);
      else fd.close();
    }
  }
  return out;
}

/** Opens a tree directory; null when it cannot be (gone, or not a directory reached without symlinks). */
function openTreeDir(root: Fd, rel: string): Fd | null {
  try {
    return openDirAt(root, rel === '' ? '.' : encodeRel(rel));
  } catch {
    return null;
  }
}

/** True when the tree directory `rel` exists (a directory, reached without symlinks). */
export function treeDirExists(root: Fd, rel: string): boolean {
  try {
    openDirAt(root, rel === '' ? '.' : encodeRel(rel)).close();
    return true;
  } catch {
    return false;
  }
}

/** How deep removeSubtree goes before it gives up (one fd per level). */
const REMOVE_DEPTH = 64;

/**
 * Removes directory `name` in `parent` with everything in it, walking by
 * directory fds (never a path, never a symlink). Gives up below `depth`
 * levels with E_NOT_SUPPORTED: such a tree can only be a user's own making,
 * in their own directory, and is left for them.
 */
export function removeSubtree(parent: Fd, name: string, depth: number): void {
  if (depth <= 0)
    throw new CgviewError('E_NOT_SUPPORTED', `${name}: deeper than ${REMOVE_DEPTH} levels, left alone`, {
      path: name,
    });
  const fd = openDirAt(parent, name);
  try {
    for (const e of listDir(fd)) {
      if (e.isDir) removeSubtree(fd, e.name, depth - 1);
      else unlinkAt(fd, e.name);
    }
  } finally {
    fd.close();
  }
  unlinkAt(parent, name, true);
}

export interface ApplyContext {
  rootFd: Fd;
  /** Absolute path of the tagged root (for logs). */
  treeDir: string;
  /** Absolute cgroup directory of the root, and whether its hierarchy is v2 (links by id) or v1 (by fd). */
  cgroupRoot: string;
  v2: boolean;
  /** Hierarchy id (0: v2), for views that read a per-hierarchy collector. */
  hierarchyId: number;
  /** The views as prepared (loaded) before the diff: apply loads nothing. Throws for a view that did not load. */
  view: (spec: string) => LoadedView;
  log: (level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

export interface ApplyResult {
  done: number;
  failed: number;
  /** Something changed under us (EEXIST, a dir vanished): a rescan is due. */
  raced: boolean;
  /** The ops that failed (the rest were carried out). */
  failedOps: Set<Op>;
}

/**
 * Carries out reconcile ops in order; a failing op is logged and the rest go
 * on. `open`: directories the snapshot opened (by relative path), used as
 * they are and left to the caller to close.
 */
export function applyOps(ctx: ApplyContext, ops: Op[], open?: ReadonlyMap<string, Fd>): ApplyResult {
  const dirs = new Map<string, Fd>(open ?? []);
  const res: ApplyResult = { done: 0, failed: 0, raced: false, failedOps: new Set() };
  const dirFd = (rel: string): Fd => {
    let fd = dirs.get(rel);
    if (!fd) {
      fd = openDirAt(ctx.rootFd, rel === '' ? '.' : encodeRel(rel));
      dirs.set(rel, fd);
    }
    return fd;
  };
  const forget = (rel: string) => {
    for (const [r, fd] of dirs)
      if (r === rel || r.startsWith(`${rel}/`)) {
        fd.close();
        dirs.delete(r);
      }
  };
  try {
    for (const op of ops) {
      try {
        applyOne(ctx, op, dirFd, forget);
        res.done++;
        if (op.op === 'mkdir' || op.op === 'pin') crashPoint(op.op);
        crashPoint('reconcile');
      } catch (e) {
        res.failed++;
        res.failedOps.add(op);
        const code = isCgviewError(e) ? e.code : 'E_SYSCALL';
        if (code === 'E_EXISTS' || code === 'E_NOT_FOUND' || code === 'E_SYMLINK') res.raced = true;
        ctx.log(code === 'E_NOT_FOUND' ? 'debug' : 'warn', `${op.op} failed`, {
          path: showPath(opPath({ dir: ctx.treeDir }, op)),
          rel: op.rel,
          error: e instanceof Error ? e.message : String(e),
          code,
        });
      }
    }
  } finally {
    for (const [rel, fd] of dirs) if (open?.get(rel) !== fd) fd.close();
  }
  return res;
}

function applyOne(
  ctx: ApplyContext,
  op: Op,
  dirFd: (rel: string) => Fd,
  forget: (rel: string) => void,
): void {
  switch (op.op) {
    case 'rmfile':
      unlinkAt(dirFd(op.rel), op.name);
      if (op.reason !== 'view no longer pinned here')
        ctx.log('info', 'removed', {
          path: showPath(opPath({ dir: ctx.treeDir }, op)),
          rel: op.rel,
          name: op.name,
          reason: op.reason,
        });
      return;
    case 'rmdir': {
      forget(op.rel);
      const parent = dirFd(parentRel(op.rel)!);
      const name = encodeName(baseName(op.rel));
      try {
        unlinkAt(parent, name, true);
      } catch (e) {
        // Not empty: a directory we did not enter (a user's, matching no cgroup).
        if (!isCgviewError(e) || e.errno !== ENOTEMPTY) throw e;
        removeSubtree(parent, name, REMOVE_DEPTH);
      }
      ctx.log('info', 'removed directory', {
        path: showPath(opPath({ dir: ctx.treeDir }, op)),
        rel: op.rel,
        reason: op.reason,
      });
      return;
    }
    case 'mkdir': {
      const parent = dirFd(parentRel(op.rel) ?? '');
      const name = encodeName(baseName(op.rel));
      mkdirAt(parent, name, 0o755);
      if (op.uid !== 0 || op.gid !== 0) chownAt(parent, name, op.uid, op.gid);
      return;
    }
    case 'chown':
      if (op.name === null) chownAt(dirFd(parentRel(op.rel)!), encodeName(baseName(op.rel)), op.uid, op.gid);
      else {
        const st = statAt(dirFd(op.rel), op.name);
        if (st) fixPinnedFile(dirFd(op.rel), op.name, st.mode, op.uid, op.gid, false);
      }
      return;
    case 'chmod': {
      if (op.name === null) {
        chmodAt(dirFd(parentRel(op.rel)!), encodeName(baseName(op.rel)), op.mode);
        return;
      }
      const st = statAt(dirFd(op.rel), op.name);
      if (st) fixPinnedFile(dirFd(op.rel), op.name, op.mode, st.uid, st.gid, false);
      return;
    }
    case 'pin': {
      const view = ctx.view(op.pin.view);
      const dir = dirFd(op.rel);
      let link: ReturnType<typeof view.program.cgroupIter>;
      if (ctx.v2) link = view.program.cgroupIter({ id: op.cgroupId });
      else {
        const cg = openDir(join(ctx.cgroupRoot, op.rel));
        try {
          link = view.program.cgroupIter({ fd: cg });
        } finally {
          cg.close();
        }
      }
      try {
        link.pinAt(dir, op.name);
      } finally {
        link.close();
      }
      // bpffs creates pins 0600 root: set the mode and owner asked for. In a
      // root's directory (the cgroup is root's) nobody else can swap the name,
      // so plain calls do; in a user's, through a checked fd on the file we made.
      if (op.uid === 0 && op.gid === 0) {
        if (op.pin.fileMode !== 0o600) chmodAt(dir, op.name, op.pin.fileMode);
      } else fixPinnedFile(dir, op.name, op.pin.fileMode, op.uid, op.gid);
      return;
    }
  }
}
