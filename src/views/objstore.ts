/**
 * The object store: a user view ("path.bpf.o:program") is copied at pin time
 * into a root-owned directory (mode 0700) beside the state file, named by the
 * sha256 of its content, and the daemon only ever loads such copies. Whoever
 * can write the original afterwards changes nothing the daemon loads, now or
 * after a restart. An object that someone other than root could have
 * written (the file, or a directory on its path) is refused at pin time,
 * and so is one on any file system but the local ones whose owners and
 * modes are the kernel's own (ext4, xfs, btrfs, tmpfs, ...: an allow-list).
 *
 * Paths are byte strings (one char per byte, as on the control socket).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import {
  AFS_FS_MAGIC,
  AFS_SUPER_MAGIC,
  BCACHEFS_STATFS_MAGIC,
  BTRFS_SUPER_MAGIC,
  CEPH_SUPER_MAGIC,
  CIFS_SUPER_MAGIC,
  CODA_SUPER_MAGIC,
  EXT4_SUPER_MAGIC,
  F2FS_SUPER_MAGIC,
  FUSE_SUPER_MAGIC,
  HOSTFS_SUPER_MAGIC,
  NFS_SUPER_MAGIC,
  OCFS2_SUPER_MAGIC,
  OVERLAYFS_SUPER_MAGIC,
  RAMFS_MAGIC,
  SMB_SUPER_MAGIC,
  SMB2_SUPER_MAGIC,
  SQUASHFS_MAGIC,
  TMPFS_MAGIC,
  V9FS_MAGIC,
  XFS_SUPER_MAGIC,
  ZFS_SUPER_MAGIC,
} from '../kernel/abi.js';

/** A BPF object bigger than this is not a view (and would be held in memory whole). */
export const MAX_OBJECT_BYTES = 64 << 20;
const STORE_NAME = 'objects';
const ENTRY = /^[0-9a-f]{64}\.bpf\.o$/;

const bytes = (p: string) => Buffer.from(p, 'latin1');

/** The store that goes with a state file: `objects/` beside it. */
export function objectStoreDir(stateFile: string): string {
  return path.join(path.dirname(stateFile), STORE_NAME);
}

/**
 * The file systems (statfs f_type) whose owners and modes are this
 * kernel's own: local ones, on a disk or in memory only root attaches.
 * Everything else is refused, since the file systems where owners and modes
 * are what someone else says (a FUSE server any user can start with
 * fusermount, an NFS, SMB or 9p server whose root is not root here, the
 * other nodes of a cluster file system: Lustre, GPFS, BeeGFS, ...) are
 * too many to list, and new ones come. Overlayfs is here because mounting
 * one in the daemon's mount namespace needs root, who chose its layers.
 */
const LOCAL_FS = new Map<number, string>([
  [EXT4_SUPER_MAGIC, 'ext2/ext3/ext4'],
  [XFS_SUPER_MAGIC, 'xfs'],
  [BTRFS_SUPER_MAGIC, 'btrfs'],
  [TMPFS_MAGIC, 'tmpfs'],
  [RAMFS_MAGIC, 'ramfs'],
  [SQUASHFS_MAGIC, 'squashfs'],
  [F2FS_SUPER_MAGIC, 'f2fs'],
  [OVERLAYFS_SUPER_MAGIC, 'overlayfs'],
  [ZFS_SUPER_MAGIC, 'zfs'],
  [BCACHEFS_STATFS_MAGIC, 'bcachefs'],
]);

/** Names of some refused file systems, for the message only (the decision is LOCAL_FS's). */
const OTHER_FS_NAMES = new Map<number, string>([
  [FUSE_SUPER_MAGIC, 'FUSE'],
  [NFS_SUPER_MAGIC, 'NFS'],
  [SMB_SUPER_MAGIC, 'SMB'],
  [CIFS_SUPER_MAGIC, 'CIFS'],
  [SMB2_SUPER_MAGIC, 'SMB2'],
  [V9FS_MAGIC, '9p'],
  [CEPH_SUPER_MAGIC, 'Ceph'],
  [AFS_SUPER_MAGIC, 'AFS'],
  [AFS_FS_MAGIC, 'AFS'],
  [CODA_SUPER_MAGIC, 'Coda'],
  [OCFS2_SUPER_MAGIC, 'OCFS2'],
  [HOSTFS_SUPER_MAGIC, 'hostfs'],
]);

/** Whether objects on a file system of this statfs f_type may be loaded (LOCAL_FS). */
export function trustedFs(fType: number): boolean {
  return LOCAL_FS.has(fType);
}

/** A file system type for a message: the hex f_type, and its name when known ("0x65735546 (FUSE)"). */
export function fsTypeName(fType: number): string {
  const name = LOCAL_FS.get(fType) ?? OTHER_FS_NAMES.get(fType);
  const hex = `0x${fType.toString(16)}`;
  return name ? `${hex} (${name})` : hex;
}

/** f_type of the file system `p` is on (statfs(2); `p` is a checked path, no symlink). */
function fsTypeOf(p: string): number {
  return fs.statfsSync(bytes(p)).type;
}

export interface RootOnlyOptions {
  /** statfs f_type of a path (default: statfs(2)); tests inject file systems they cannot mount. */
  fsType?: (p: string) => number;
}

/**
 * Checks that nobody but root can change what `file` (an absolute path
 * without symlinks) names: every component root-owned, no symlink, no
 * group/other write, except on sticky directories (others cannot rename or
 * remove root's entries there, /tmp), and every one on a local file
 * system whose owners and modes are the kernel's own (trustedFs). Returns the lstat of
 * `file`. Throws E_PERMISSION / E_SYMLINK / E_NOT_FOUND.
 */
export function checkRootOnly(file: string, what: string, opts: RootOnlyOptions = {}): fs.Stats {
  const fsType = opts.fsType ?? fsTypeOf;
  // A '..' would be checked where it leads, and resolved by the kernel after a symlink it skipped.
  if (!path.isAbsolute(file) || path.posix.normalize(file) !== file)
    throw new CgviewError('E_BAD_INPUT', `${what}: not a normalized absolute path`, { path: file });
  const parts = file.split('/').filter((c) => c !== '');
  let at = '/';
  let st: fs.Stats | undefined;
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) at = path.posix.join(at, parts[i - 1]!);
    try {
      st = fs.lstatSync(bytes(at));
    } catch (e) {
      throw new CgviewError('E_NOT_FOUND', `${what}: ${at}: ${(e as NodeJS.ErrnoException).code}`, {
        path: at,
        cause: e,
      });
    }
    if (st.isSymbolicLink()) throw new CgviewError('E_SYMLINK', `${what}: ${at} is a symlink`, { path: at });
    // Before the owner: on any other file system the owner is whatever it says.
    let type: number;
    try {
      type = fsType(at);
    } catch (e) {
      throw new CgviewError('E_NOT_FOUND', `${what}: ${at}: ${(e as NodeJS.ErrnoException).code}`, {
        path: at,
        cause: e,
      });
    }
    if (!trustedFs(type))
      throw new CgviewError(
        'E_PERMISSION',
        `${what}: ${at} is on a file system of type ${fsTypeName(type)}, not a local one whose owners and modes are the kernel's own`,
        {
          path: at,
          hint: 'copy the object to a local file system (ext4, xfs, btrfs, tmpfs, ...) where root owns every directory on its path (e.g. under /root or /usr/local) and pin that copy',
        },
      );
    if (st.uid !== 0)
      throw new CgviewError('E_PERMISSION', `${what}: ${at} is owned by uid ${st.uid}, not root`, {
        path: at,
        hint: 'load only objects nobody but root can change: chown root, chmod go-w, or copy it somewhere root owns',
      });
    const last = i === parts.length;
    const sticky = st.isDirectory() && !last && (st.mode & 0o1000) !== 0;
    if (st.mode & 0o022 && !sticky)
      throw new CgviewError('E_PERMISSION', `${what}: ${at} is writable by group or others`, {
        path: at,
        hint: 'load only objects nobody but root can change: chmod go-w, or copy it somewhere root owns',
      });
  }
  return st!;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a regular file through one descriptor, not following a symlink, bounded. */
function readBounded(file: string, expect: fs.Stats | undefined, what: string): Buffer {
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(bytes(file), c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK);
  } catch (e) {
    throw new CgviewError('E_NOT_FOUND', `${what}: ${(e as NodeJS.ErrnoException).code}`, {
      path: file,
      cause: e,
    });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new CgviewError('E_BAD_INPUT', `${what} is not a regular file`, { path: file });
    // The file opened must be the one checked (no rename in between).
    if (expect && (st.dev !== expect.dev || st.ino !== expect.ino))
      throw new CgviewError('E_PERMISSION', `${what} changed while it was read`, { path: file });
    if (st.uid !== 0 || st.mode & 0o022)
      throw new CgviewError('E_PERMISSION', `${what} is not root's alone`, { path: file });
    if (st.size > MAX_OBJECT_BYTES)
      throw new CgviewError('E_BAD_INPUT', `${what} is larger than ${MAX_OBJECT_BYTES} bytes`, {
        path: file,
      });
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = fs.readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Is `object` where a stored copy lives (…/objects/<sha256>.bpf.o)? */
export function isStoredPath(object: string): boolean {
  return path.basename(path.dirname(object)) === STORE_NAME && ENTRY.test(path.basename(object));
}

/**
 * Refuses a user object the daemon must not load: not a stored copy, a
 * store that is not root's alone (0700), or content that does not match its
 * name. Throws E_PERMISSION.
 */
export function checkStoredObject(object: string): void {
  if (!isStoredPath(object))
    throw new CgviewError('E_PERMISSION', `${object} is not in the object store`, {
      path: object,
      hint: 'the daemon loads user objects only from the copy made when they were pinned: pin the view again',
    });
  const dir = path.dirname(object);
  const dst = checkRootOnly(dir, 'object store');
  if (!dst.isDirectory() || (dst.mode & 0o077) !== 0)
    throw new CgviewError('E_PERMISSION', `object store ${dir} is not root's alone (mode 0700)`, {
      path: dir,
    });
  const st = checkRootOnly(object, 'stored object');
  const data = readBounded(object, st, `stored object ${object}`);
  if (`${sha256(data)}.bpf.o` !== path.basename(object))
    throw new CgviewError('E_PERMISSION', `stored object ${object} does not match its name`, {
      path: object,
      hint: 'it was changed or damaged: pin the view again from its source',
    });
}

/** Makes the store directory (root, 0700), or checks the one there. */
function ensureStore(dir: string): void {
  fs.mkdirSync(bytes(dir), { recursive: true, mode: 0o700 });
  const st = checkRootOnly(dir, 'object store');
  if (!st.isDirectory())
    throw new CgviewError('E_PERMISSION', `object store ${dir} is not a directory`, { path: dir });
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(bytes(dir), 0o700);
}

/** Copies a user's object into the store at `dir`; returns the stored copy's path. */
export function storeObject(dir: string, object: string): string {
  const what = `view object ${object}`;
  let real: string;
  try {
    real = fs.realpathSync(bytes(object), { encoding: 'buffer' }).toString('latin1');
  } catch (e) {
    throw new CgviewError('E_NOT_FOUND', `${what}: ${(e as NodeJS.ErrnoException).code}`, {
      path: object,
      cause: e,
    });
  }
  const st = checkRootOnly(real, what);
  if (!st.isFile()) throw new CgviewError('E_BAD_INPUT', `${what} is not a regular file`, { path: object });
  const data = readBounded(real, st, what);
  ensureStore(dir);
  const dest = path.join(dir, `${sha256(data)}.bpf.o`);
  if (fs.existsSync(bytes(dest)))
    try {
      checkStoredObject(dest);
      return dest; // the same content was stored before
    } catch {
      // A damaged copy: replaced below (the rename is atomic).
    }
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const c = fs.constants;
  const fd = fs.openSync(bytes(tmp), c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o400);
  try {
    try {
      fs.fchmodSync(fd, 0o400);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(bytes(tmp), bytes(dest));
  } catch (e) {
    fs.rmSync(bytes(tmp), { force: true });
    throw e;
  }
  const dfd = fs.openSync(bytes(dir), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
  return dest;
}

/**
 * The spec to keep for a view: a user view ("path.bpf.o:program") becomes
 * its stored copy ("<store>/<sha256>.bpf.o:program"); built-in names and
 * specs that are not user views (refused later by parseViewSpec) as they are.
 */
export function storeUserView(spec: string, storeDir: string): string {
  const i = spec.lastIndexOf(':');
  if (i <= 0 || !spec.slice(0, i).endsWith('.o')) return spec;
  const object = spec.slice(0, i);
  if (!path.isAbsolute(object)) return spec;
  return `${storeObject(storeDir, object)}:${spec.slice(i + 1)}`;
}
