/**
 * System calls cgview needs that Node does not offer: directory-fd relative
 * operations that never follow symlinks, and the bpf(2) commands for links,
 * pins, iterators and object info. Only src/kernel/ uses this file.
 */
import fs from 'node:fs';
import { CgviewError } from '../errors.js';
import { Fd } from './fd.js';
import {
  cFchownat,
  cFstatat,
  cFstatfs,
  cMkdirat,
  cOpenat,
  cRead,
  cUnlinkat,
  errno,
  koffi,
  sys4,
  sysFchmodat2,
  sysOpenat2,
} from './ffi.js';
import { BPF_FS_MAGIC } from './magic.js';

// x86_64 syscall numbers
const NR_BPF = 321;
const NR_OPENAT2 = 437;
const NR_FCHMODAT2 = 452;

export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
export const O_RDONLY = 0;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const AT_EMPTY_PATH = 0x1000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;

// enum bpf_cmd
const BPF_OBJ_PIN = 6;
const BPF_OBJ_GET = 7;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_OBJ_GET_INFO_BY_FD = 15;
const BPF_LINK_CREATE = 28;
const BPF_ENABLE_STATS = 32;
const BPF_ITER_CREATE = 33;
const BPF_F_PATH_FD = 1 << 14;
/** enum bpf_attach_type BPF_TRACE_ITER */
const BPF_TRACE_ITER = 28;

const errnoNames = new Map<number, string>(
  Object.entries(koffi.os.errno as Record<string, number>).map(([k, v]) => [v, k]),
);

/** The symbolic name of an errno value (ENOENT, ...). */
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

/** Shows a byte-string path (latin1) readably: invalid UTF-8 bytes as \xNN. */
export function showPath(p: string): string {
  const b = Buffer.from(p, 'latin1');
  const s = b.toString('utf8');
  if (!s.includes('\ufffd') && Buffer.from(s, 'utf8').equals(b)) return s;
  return [...b]
    .map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`))
    .join('');
}

/** Builds the error for a failed call: "what path: ENAME". */
export function sysError(what: string, path: string | undefined, e: number): CgviewError {
  const name = errnoName(e);
  const msg = path === undefined ? `${what}: ${name}` : `${what} ${showPath(path)}: ${name}`;
  const code =
    e === 17
      ? 'E_EXISTS'
      : e === 2
        ? 'E_NOT_FOUND'
        : e === 40
          ? 'E_SYMLINK'
          : e === 1 || e === 13
            ? 'E_PERMISSION'
            : 'E_SYSCALL';
  return new CgviewError(code, msg, { errno: e, ...(path === undefined ? {} : { path }) });
}

/** C string argument from a byte-string (latin1) JS string: bytes are kept as they are. */
export function cstr(s: string): Buffer {
  const b = Buffer.alloc(Buffer.byteLength(s, 'latin1') + 1);
  b.write(s, 'latin1');
  return b;
}

/** Fails on a name that is not a single path component. */
export function checkName(name: string): void {
  if (
    name === '' ||
    name === '.' ||
    name === '..' ||
    name.includes('/') ||
    name.includes('\0') ||
    name.length > 255
  )
    throw new CgviewError('E_BAD_INPUT', `not a valid file name: ${JSON.stringify(showPath(name))}`);
}

function openHow(flags: number, resolve: number): Buffer {
  // struct open_how { u64 flags; u64 mode; u64 resolve; }
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return how;
}

/**
 * Opens a directory by absolute path, refusing any symlink on the way
 * (openat2 RESOLVE_NO_SYMLINKS). Throws E_SYMLINK, E_NOT_FOUND, E_SYSCALL.
 */
export function openDir(path: string): Fd {
  const how = openHow(O_RDONLY | O_DIRECTORY | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  const fd = Number(sysOpenat2(NR_OPENAT2, AT_FDCWD, cstr(path), how, 24));
  if (fd < 0) {
    const e = errno();
    if (e === 40)
      throw new CgviewError('E_SYMLINK', `open ${showPath(path)}: a symlink is in the path, refused`, {
        errno: e,
        path,
      });
    throw sysError('open', path, e);
  }
  return new Fd(fd, `dir ${path}`);
}

/**
 * Opens a directory below `dir` (one or more components), never leaving it
 * and never following a symlink (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
 */
export function openDirAt(dir: Fd, rel: string): Fd {
  const how = openHow(
    O_RDONLY | O_DIRECTORY | O_CLOEXEC,
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  );
  const fd = Number(sysOpenat2(NR_OPENAT2, dir.fd, cstr(rel), how, 24));
  if (fd < 0) {
    const e = errno();
    if (e === 40)
      throw new CgviewError('E_SYMLINK', `open ${showPath(rel)}: a symlink is in the path, refused`, {
        errno: e,
        path: rel,
      });
    throw sysError('open', rel, e);
  }
  return new Fd(fd, `dir ${rel}`);
}

/** f_type of the filesystem holding `fd` (struct statfs: long f_type at 0). */
export function fsMagic(fd: Fd): number {
  const buf = Buffer.alloc(120);
  if (cFstatfs(fd.fd, buf) < 0) throw sysError('statfs', fd.what, errno());
  return Number(buf.readBigInt64LE(0));
}

/** Throws E_NOT_BPFFS unless `fd` is on a bpf filesystem. */
export function requireBpffs(fd: Fd, path: string): void {
  if (fsMagic(fd) !== BPF_FS_MAGIC)
    throw new CgviewError('E_NOT_BPFFS', `${showPath(path)} is not on bpffs`, {
      path,
      hint: 'view trees live on a bpf filesystem: mount -t bpf bpf /sys/fs/bpf',
    });
}

export interface StatInfo {
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  isDir: boolean;
  isFile: boolean;
  isSymlink: boolean;
}

const S_IFMT = 0o170000;

function decodeStat(buf: Buffer): StatInfo {
  // struct stat (x86_64): st_ino u64 @8, st_mode u32 @24, st_uid u32 @28, st_gid u32 @32
  const mode = buf.readUInt32LE(24);
  const fmt = mode & S_IFMT;
  return {
    ino: buf.readBigUInt64LE(8),
    mode: mode & 0o7777,
    uid: buf.readUInt32LE(28),
    gid: buf.readUInt32LE(32),
    isDir: fmt === 0o040000,
    isFile: fmt === 0o100000,
    isSymlink: fmt === 0o120000,
  };
}

/** lstat of `name` in `dir` (never follows); null when it does not exist. */
export function statAt(dir: Fd, name: string): StatInfo | null {
  checkName(name);
  const buf = Buffer.alloc(144);
  if (cFstatat(dir.fd, cstr(name), buf, AT_SYMLINK_NOFOLLOW) < 0) {
    const e = errno();
    if (e === 2) return null;
    throw sysError('stat', name, e);
  }
  return decodeStat(buf);
}

/** fstat of an open descriptor. */
export function statFd(fd: Fd): StatInfo {
  const buf = Buffer.alloc(144);
  if (cFstatat(fd.fd, cstr(''), buf, AT_EMPTY_PATH) < 0) throw sysError('stat', fd.what, errno());
  return decodeStat(buf);
}

/** mkdir `name` in `dir`. Throws E_EXISTS when it is there already. */
export function mkdirAt(dir: Fd, name: string, mode = 0o755): void {
  checkName(name);
  if (cMkdirat(dir.fd, cstr(name), mode) < 0) throw sysError('mkdir', name, errno());
}

/** unlink (or rmdir) `name` in `dir`; returns false when it was already gone. */
export function unlinkAt(dir: Fd, name: string, isDir = false): boolean {
  checkName(name);
  if (cUnlinkat(dir.fd, cstr(name), isDir ? AT_REMOVEDIR : 0) < 0) {
    const e = errno();
    if (e === 2) return false;
    throw sysError(isDir ? 'rmdir' : 'unlink', name, e);
  }
  return true;
}

/** chown `name` in `dir` without following a symlink. */
export function chownAt(dir: Fd, name: string, uid: number, gid: number): void {
  checkName(name);
  if (cFchownat(dir.fd, cstr(name), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    throw sysError('chown', name, errno());
}

/** chmod `name` in `dir` without following a symlink (fchmodat2, Linux 6.6+). */
export function chmodAt(dir: Fd, name: string, mode: number): void {
  checkName(name);
  if (Number(sysFchmodat2(NR_FCHMODAT2, dir.fd, cstr(name), mode, AT_SYMLINK_NOFOLLOW)) < 0)
    throw sysError('chmod', name, errno());
}

/** Reads an fd to EOF (iterator fds, pinned iterator files). */
export function readAll(fd: Fd): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(16384);
  for (;;) {
    const n = Number(cRead(fd.fd, buf, buf.length));
    if (n < 0) {
      const e = errno();
      if (e === 4) continue; // EINTR
      throw sysError('read', fd.what, e);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

// --- bpf(2) --------------------------------------------------------------

/**
 * Buffers the kernel reads through a pointer in `attr` during a bpf() call.
 * Only their address is in `attr`, and V8 may free a buffer once its last
 * JavaScript use has passed (backing stores are swept concurrently), so
 * they are held here until the call returns.
 */
const held = new Set<readonly Buffer[]>();

function bpf(cmd: number, attr: Buffer, ...keep: Buffer[]): number {
  held.add(keep);
  try {
    return Number(sys4(NR_BPF, cmd, attr, attr.length));
  } finally {
    held.delete(keep);
  }
}

export type CgroupIterOrder = 'self' | 'descendants_pre' | 'descendants_post' | 'ancestors_up';
const ORDERS: Record<CgroupIterOrder, number> = {
  self: 1,
  descendants_pre: 2,
  descendants_post: 3,
  ancestors_up: 4,
};

/** Target of an `iter/cgroup` link: a cgroup v2 id, or an open cgroup directory (v1 or v2). */
export type CgroupTarget = { id: bigint } | { fd: Fd };

/**
 * BPF_LINK_CREATE of an `iter/cgroup` program for one cgroup (Linux 6.1+).
 * Throws E_NOT_FOUND when the cgroup is gone, E_SYSCALL otherwise.
 */
export function linkCreateCgroupIter(
  progFd: number,
  target: CgroupTarget,
  order: CgroupIterOrder = 'self',
): Fd {
  // union bpf_iter_link_info.cgroup { u32 order @0; u32 cgroup_fd @4; u64 cgroup_id @8 }
  const info = Buffer.alloc(16);
  info.writeUInt32LE(ORDERS[order], 0);
  if ('fd' in target) info.writeUInt32LE(target.fd.fd, 4);
  else info.writeBigUInt64LE(target.id, 8);
  // attr.link_create { u32 prog_fd @0; u32 target_fd @4; u32 attach_type @8; u32 flags @12;
  //                    u64 iter_info @16; u32 iter_info_len @24 }
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(BPF_TRACE_ITER, 8);
  attr.writeBigUInt64LE(koffi.address(info), 16);
  attr.writeUInt32LE(16, 24);
  const fd = bpf(BPF_LINK_CREATE, attr, info);
  if (fd < 0) {
    const e = errno();
    const what = 'fd' in target ? `fd ${target.fd.what}` : `id ${target.id}`;
    if (e === 2 || e === 19)
      throw new CgviewError('E_NOT_FOUND', `create iter link for cgroup ${what}: cgroup is gone`, {
        errno: e,
      });
    throw sysError(`create iter link for cgroup ${what}`, undefined, e);
  }
  return new Fd(fd, 'iter link');
}

function objAttr(name: Buffer, dir: Fd, bpfFd: number, flags: number): Buffer {
  // attr.obj { u64 pathname @0; u32 bpf_fd @8; u32 file_flags @12; s32 path_fd @16 }
  const attr = Buffer.alloc(24);
  attr.writeBigUInt64LE(koffi.address(name), 0);
  attr.writeUInt32LE(bpfFd, 8);
  attr.writeUInt32LE(flags | BPF_F_PATH_FD, 12);
  attr.writeInt32LE(dir.fd, 16);
  return attr;
}

/**
 * Pins `obj` as `name` in the bpffs directory `dir` (BPF_F_PATH_FD, Linux 6.5+:
 * no path walk, so no symlink can redirect it). Throws E_EXISTS when the name is taken.
 */
export function objPinAt(obj: Fd | number, dir: Fd, name: string): void {
  checkName(name);
  const n = cstr(name);
  if (bpf(BPF_OBJ_PIN, objAttr(n, dir, typeof obj === 'number' ? obj : obj.fd, 0), n) < 0) {
    const e = errno();
    if (e === 17)
      throw new CgviewError('E_EXISTS', `pin ${showPath(name)}: a file of that name exists`, {
        errno: e,
        path: name,
      });
    throw sysError('pin', name, e);
  }
}

/**
 * Opens a pinned object `name` in `dir`; null when nothing is pinned there.
 * BPF_OBJ_GET would follow a symlink in the last component, so the name is
 * first opened O_PATH|O_NOFOLLOW, checked to be a regular file, and the
 * object is taken through that fd (/proc/self/fd/N): what is checked is what
 * is opened. Throws E_SYMLINK for a symlink, E_BAD_INPUT for anything but a file.
 */
export function objGetAt(dir: Fd, name: string, what = 'pinned object'): Fd | null {
  checkName(name);
  const p = cOpenat(dir.fd, cstr(name), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
  if (p < 0) {
    const e = errno();
    if (e === 2) return null;
    throw sysError('open pinned', name, e);
  }
  const pathFd = new Fd(p, `path ${name}`);
  try {
    const st = statFd(pathFd);
    if (st.isSymlink)
      throw new CgviewError('E_SYMLINK', `${showPath(name)} is a symlink, refused`, { path: name });
    if (!st.isFile)
      throw new CgviewError('E_BAD_INPUT', `${showPath(name)} is not a pinned object`, { path: name });
    const n = cstr(`/proc/self/fd/${pathFd.fd}`);
    // attr.obj { u64 pathname @0; u32 bpf_fd @8; u32 file_flags @12 }
    const attr = Buffer.alloc(24);
    attr.writeBigUInt64LE(koffi.address(n), 0);
    const fd = bpf(BPF_OBJ_GET, attr, n);
    if (fd < 0) {
      const e = errno();
      if (e === 2) return null;
      throw sysError('open pinned', name, e);
    }
    return new Fd(fd, what);
  } finally {
    pathFd.close();
  }
}

/**
 * Makes a file just pinned by us in `dir` take `mode` and `uid:gid`, through
 * an O_PATH|O_NOFOLLOW fd after checking it is still our pin: a regular file
 * owned by root with one link. A user who swapped the name in their own
 * directory (for a hard link to some other file) gets E_PERMISSION, not our chown.
 */
export function fixPinnedFile(
  dir: Fd,
  name: string,
  mode: number,
  uid: number,
  gid: number,
  /** A pin just made is root's; a repair finds it with its earlier owner. */
  justPinned = true,
): void {
  checkName(name);
  const p = cOpenat(dir.fd, cstr(name), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
  if (p < 0) throw sysError('open pinned', name, errno());
  const fd = new Fd(p, `path ${name}`);
  try {
    const buf = Buffer.alloc(144);
    if (cFstatat(fd.fd, cstr(''), buf, AT_EMPTY_PATH) < 0) throw sysError('stat', name, errno());
    const st = decodeStat(buf);
    const nlink = Number(buf.readBigUInt64LE(16));
    if (!st.isFile || (justPinned && st.uid !== 0) || nlink !== 1)
      throw new CgviewError(
        'E_PERMISSION',
        `${showPath(name)} changed under us (not our pin any more), left alone`,
        {
          path: name,
        },
      );
    if (Number(sysFchmodat2(NR_FCHMODAT2, fd.fd, cstr(''), mode, AT_EMPTY_PATH)) < 0)
      throw sysError('chmod', name, errno());
    if ((st.uid !== uid || st.gid !== gid) && cFchownat(fd.fd, cstr(''), uid, gid, AT_EMPTY_PATH) < 0)
      throw sysError('chown', name, errno());
  } finally {
    fd.close();
  }
}

/** BPF_ITER_CREATE: a readable fd that runs the iterator program. */
export function iterCreate(link: Fd): Fd {
  const attr = Buffer.alloc(8);
  attr.writeUInt32LE(link.fd, 0);
  const fd = bpf(BPF_ITER_CREATE, attr);
  if (fd < 0) throw sysError('create iterator', undefined, errno());
  return new Fd(fd, 'iterator');
}

/** BPF_OBJ_GET_INFO_BY_FD into a buffer of the struct's size. */
export function objInfo(fd: Fd | number, info: number | Buffer, what = 'object'): Buffer {
  // `info` may come pre-filled with pointers and lengths for arrays the kernel fills too.
  const buf = typeof info === 'number' ? Buffer.alloc(info) : info;
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(typeof fd === 'number' ? fd : fd.fd, 0);
  attr.writeUInt32LE(buf.length, 4);
  attr.writeBigUInt64LE(koffi.address(buf), 8);
  if (bpf(BPF_OBJ_GET_INFO_BY_FD, attr, buf) < 0) throw sysError(`get ${what} info`, undefined, errno());
  return buf;
}

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  /** For iter links of cgroups: the cgroup id the link holds, and its order. */
  cgroupId?: bigint;
  order?: number;
  targetName?: string;
}

const BPF_LINK_TYPE_ITER = 4;

/** Info of a link; for an iterator link also its target and (iter/cgroup) cgroup id. */
export function linkInfo(fd: Fd | number): LinkInfo {
  // struct bpf_link_info { u32 type @0; u32 id @4; u32 prog_id @8; union @16 {
  //   iter { u64 target_name @16; u32 target_name_len @24; u32 map_id @28;
  //          cgroup { u64 cgroup_id @32; u32 order @40 } } } }
  const nameBuf = Buffer.alloc(64);
  const info = Buffer.alloc(64);
  info.writeBigUInt64LE(koffi.address(nameBuf), 16);
  info.writeUInt32LE(nameBuf.length, 24);
  objInfo(fd, info, 'link');
  const out: LinkInfo = {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    progId: info.readUInt32LE(8),
  };
  if (out.type === BPF_LINK_TYPE_ITER) {
    const len = info.readUInt32LE(24);
    out.targetName = nameBuf.toString('latin1', 0, Math.max(0, len - 1));
    if (out.targetName === 'cgroup') {
      out.cgroupId = info.readBigUInt64LE(32);
      out.order = info.readUInt32LE(40);
    }
  }
  return out;
}

export interface ProgInfo {
  type: number;
  id: number;
  /** Hash of the program's instructions as loaded (hex). */
  tag: string;
  name: string;
  runTimeNs: bigint;
  runCnt: bigint;
}

/** Info of a program: struct bpf_prog_info (offsets per Linux 6.18 uapi). */
export function progInfo(fd: Fd | number): ProgInfo {
  const info = objInfo(fd, 232, 'program');
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    tag: info.toString('hex', 8, 16),
    name: info.toString('latin1', 64, 80).replace(/\0.*$/s, ''),
    runTimeNs: info.readBigUInt64LE(192),
    runCnt: info.readBigUInt64LE(200),
  };
}

/** Ids of the maps a program uses (struct bpf_prog_info nr_map_ids @52, map_ids @56). Throws E_SYSCALL. */
export function progMapIds(fd: Fd | number): number[] {
  const ids = Buffer.alloc(4 * 64);
  const info = Buffer.alloc(232);
  info.writeUInt32LE(64, 52);
  info.writeBigUInt64LE(koffi.address(ids), 56);
  objInfo(fd, info, 'program');
  const n = Math.min(64, info.readUInt32LE(52));
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4));
}

/** Opens a program by id (needs CAP_SYS_ADMIN). */
export function progFdById(id: number): Fd {
  const attr = Buffer.alloc(12);
  attr.writeUInt32LE(id, 0);
  const fd = bpf(BPF_PROG_GET_FD_BY_ID, attr);
  if (fd < 0) throw sysError(`open program id ${id}`, undefined, errno());
  return new Fd(fd, `prog ${id}`);
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** Info of a map: struct bpf_map_info. */
export function mapInfo(fd: Fd | number): MapInfo {
  const info = objInfo(fd, 88, 'map');
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: info.toString('latin1', 24, 40).replace(/\0.*$/s, ''),
  };
}

/**
 * BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while
 * the returned fd stays open.
 */
export function enableRunTimeStats(): Fd {
  const attr = Buffer.alloc(4);
  const fd = bpf(BPF_ENABLE_STATS, attr);
  if (fd < 0) throw sysError('enable bpf stats', undefined, errno());
  return new Fd(fd, 'bpf stats');
}

export interface DirEntry {
  name: string;
  isDir: boolean;
  isSymlink: boolean;
  isFile: boolean;
}

/**
 * Lists an open directory (through /proc/self/fd, so the path is never
 * walked again). Names are byte strings (latin1).
 */
export function listDir(dir: Fd): DirEntry[] {
  const entries = fs.readdirSync(`/proc/self/fd/${dir.fd}`, {
    withFileTypes: true,
    encoding: 'latin1',
  }) as unknown as fs.Dirent[];
  return entries.map((e) => ({
    name: e.name,
    isDir: e.isDirectory(),
    isSymlink: e.isSymbolicLink(),
    isFile: e.isFile(),
  }));
}

/**
 * Throws E_PERMISSION unless the open directory `dir` is one only root can
 * change: owned by root, not writable by group or others (or sticky, like
 * /sys/fs/bpf, where users cannot move or remove what root made).
 */
export function requireRootOwned(dir: Fd, path: string, allowSticky = false): void {
  const st = statFd(dir);
  const fullMode = st.mode;
  const groupOrOtherWrite = (fullMode & 0o022) !== 0;
  const sticky = (fullMode & 0o1000) !== 0;
  if (st.uid !== 0 || (groupOrOtherWrite && !(allowSticky && sticky)))
    throw new CgviewError(
      'E_PERMISSION',
      `${showPath(path)} is not root's alone (owner ${st.uid}, mode ${fullMode.toString(8)}): refused`,
      { path, hint: 'use a directory owned by root and writable only by root' },
    );
}
