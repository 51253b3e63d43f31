/**
 * What the daemon remembers: tagged roots, their inherit lists, modes and
 * file modes, and views pinned without --inherit. Persisted atomically
 * (write, fsync, rename, fsync of the directory) so a crash at any point
 * leaves either the old or the new state on disk.
 *
 * Paths are byte strings: JS strings holding one char per byte (latin1),
 * so cgroup names that are not UTF-8 survive as they are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CgviewError } from '../errors.js';

export type Mode = 'auto' | 'manual';

/** One view pinned in a tagged tree. */
export interface ViewPin {
  /** Built-in view name or "path.bpf.o:program". */
  view: string;
  /** File name of the pin (defaults to the view name). */
  name: string;
  /** Permission bits of the pinned file. */
  fileMode: number;
}

/** A tagged root: a bpffs directory tagged with a cgroup (S1). */
export interface TagRoot {
  /** Absolute path of the tagged bpffs directory. */
  dir: string;
  /** Absolute path of the cgroup directory it is tagged with. */
  cgroup: string;
  mode: Mode;
  /** The inherit list (S3): pinned in every directory of the tree. */
  inherit: ViewPin[];
  /** Views pinned without --inherit, by directory relative to `dir` ('' is the root). */
  local: Record<string, ViewPin[]>;
  /** Set while the tree is being emptied after its last view was unpinned (a restart finishes the job). */
  untagging?: boolean;
}

/**
 * The local pins of directory `rel`. `local` is keyed by cgroup paths, which
 * users name: it is never read through its prototype (a cgroup called
 * `constructor` has no pins) nor written through it (one called
 * `__proto__` is an own key like any other).
 */
export function localPins(root: TagRoot, rel: string): ViewPin[] {
  return Object.hasOwn(root.local, rel) ? root.local[rel]! : [];
}

/** Sets (or, with none, drops) the local pins of directory `rel`, as an own key. */
export function setLocalPins(root: TagRoot, rel: string, pins: ViewPin[]): void {
  if (pins.length)
    Object.defineProperty(root.local, rel, {
      value: pins,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else if (Object.hasOwn(root.local, rel)) delete root.local[rel];
}

export interface State {
  version: 1;
  /** Set once the default views were created, so removing them sticks. */
  initialized: boolean;
  roots: TagRoot[];
}

export function emptyState(): State {
  return { version: 1, initialized: false, roots: [] };
}

/** Checks the shape of a parsed state file; throws E_BAD_INPUT saying what is wrong. */
export function validateState(x: unknown, file: string): State {
  const bad = (what: string) => new CgviewError('E_BAD_INPUT', `state file ${file}: ${what}`, { path: file });
  if (typeof x !== 'object' || x === null) throw bad('not an object');
  const s = x as Partial<State>;
  if (s.version !== 1) throw bad(`unknown version ${String(s.version)}`);
  if (!Array.isArray(s.roots)) throw bad('roots is not a list');
  const checkPin = (p: unknown): ViewPin => {
    const v = p as ViewPin;
    if (typeof v?.view !== 'string' || typeof v.name !== 'string' || typeof v.fileMode !== 'number')
      throw bad('bad view pin');
    return v;
  };
  for (const r of s.roots) {
    if (typeof r?.dir !== 'string' || typeof r.cgroup !== 'string') throw bad('root without dir/cgroup');
    if (r.mode !== 'auto' && r.mode !== 'manual') throw bad(`root ${r.dir}: bad mode`);
    if (!Array.isArray(r.inherit)) throw bad(`root ${r.dir}: inherit is not a list`);
    r.inherit.forEach(checkPin);
    if (typeof r.local !== 'object' || r.local === null) throw bad(`root ${r.dir}: local is not an object`);
    for (const [rel, pins] of Object.entries(r.local)) {
      if (!Array.isArray(pins))
        throw bad(`root ${r.dir}: local pins of ${JSON.stringify(rel)} is not a list`);
      pins.forEach(checkPin);
    }
  }
  return { version: 1, initialized: s.initialized === true, roots: s.roots };
}

/** Reads the state file; a missing file is an empty state. */
export function loadState(file: string): State {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw new CgviewError('E_SYSCALL', `read state file ${file}: ${(e as NodeJS.ErrnoException).code}`, {
      cause: e,
      path: file,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CgviewError('E_BAD_INPUT', `state file ${file} is not JSON`, { cause: e, path: file });
  }
  return validateState(parsed, file);
}

/** Writes the state atomically: temp file, fsync, rename, fsync of the directory. */
export function saveState(file: string, state: State): void {
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/** Writes a file atomically (temp file, fsync, rename, fsync of the directory) with `mode`. */
export function writeFileAtomic(file: string, text: string, mode: number, dirMode = 0o700): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: dirMode });
  const tmp = `${file}.tmp-${process.pid}`;
  // Never through a file or symlink someone put there: a fresh file or nothing.
  fs.rmSync(tmp, { force: true });
  const c = fs.constants;
  const fd = fs.openSync(tmp, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/**
 * The public index of tagged trees (which tree mirrors which cgroup), for
 * `cgview cat CGROUP` run by users who may not talk to the daemon, and for
 * `cgview top` (which built-in view each inherited file is; root's bulk
 * path reads the collectors in `privateDir`). It holds nothing secret.
 */
export interface RootsIndex {
  roots: Array<{
    dir: string;
    cgroup: string;
    /**
     * The tree's inherited built-in views: pin file name and view name, so
     * that a reader knows which file of every directory is which built-in
     * view (user views are left out: their object paths are not for everyone). Optional: older daemons wrote
     * no such field.
     */
    inherit?: Array<{ name: string; view: string }>;
  }>;
  /**
   * The daemon's private bpffs directory (collectors' pinned maps), for
   * root's `cgview top` to read sched_lat in bulk. Optional (older daemons,
   * or a daemon without one); readers check it is root's and on bpffs.
   */
  privateDir?: string;
}
