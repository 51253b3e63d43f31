/**
 * System calls cgview needs that Node does not offer: directory-fd relative
 * operations that never follow symlinks, and the bpf(2) commands for links,
 * pins, iterators and object info. Only src/kernel/ uses this file.
 */
import fs from 'node:fs';
import { CgviewError } from '../errors.js';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  ATTR_ENABLE_STATS,
  ATTR_GET_ID,
  ATTR_INFO,
  ATTR_ITER_CREATE,
  ATTR_LINK_CREATE,
  ATTR_LINK_ID,
  ATTR_OBJ,
  BPF_CGROUP_ITER_ANCESTORS_UP,
  BPF_CGROUP_ITER_DESCENDANTS_POST,
  BPF_CGROUP_ITER_DESCENDANTS_PRE,
  BPF_CGROUP_ITER_SELF_ONLY,
  BPF_ENABLE_STATS,
  BPF_F_PATH_FD,
  BPF_FS_MAGIC,
  BPF_ITER_CREATE,
  BPF_LINK_CREATE,
  BPF_LINK_GET_FD_BY_ID,
  BPF_LINK_GET_NEXT_ID,
  BPF_LINK_TYPE_ITER,
  BPF_OBJ_GET,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_OBJ_PIN,
  BPF_PROG_GET_FD_BY_ID,
  BPF_STATS_RUN_TIME,
  BPF_TRACE_ITER,
  EACCES,
  EEXIST,
  EINTR,
  ELOOP,
  ENODEV,
  ENOENT,
  EPERM,
  ITER_LINK_INFO_CGROUP,
  LINK_INFO,
  LINK_INFO_LEN,
  MAP_INFO,
  MAP_INFO_LEN,
  NR_BPF,
  NR_FCHMODAT2,
  NR_OPENAT2,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  OPEN_HOW,
  PROG_INFO,
  PROG_INFO_LEN,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  STAT,
  STATFS,
} from './abi.js';
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

// Numbers and layouts live in abi.ts (checked against C at build time); these stay exported here as before.
export { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_RDONLY };

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
    e === EEXIST
      ? 'E_EXISTS'
      : e === ENOENT
        ? 'E_NOT_FOUND'
        : e === ELOOP
          ? 'E_SYMLINK'
          : e === EPERM || e === EACCES
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
  const how = Buffer.alloc(OPEN_HOW.size);
  how.writeBigUInt64LE(BigInt(flags), OPEN_HOW.flags.off);
  how.writeBigUInt64LE(BigInt(resolve), OPEN_HOW.resolve.off);
  return how;
}

/**
 * Opens a directory by absolute path, refusing any symlink on the way
 * (openat2 RESOLVE_NO_SYMLINKS). Throws E_SYMLINK, E_NOT_FOUND, E_SYSCALL.
 */
export function openDir(path: string): Fd {
  const how = openHow(O_RDONLY | O_DIRECTORY | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  const fd = Number(sysOpenat2(NR_OPENAT2, AT_FDCWD, cstr(path), how, how.length));
  if (fd < 0) {
    const e = errno();
    if (e === ELOOP)
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
  const fd = Number(sysOpenat2(NR_OPENAT2, dir.fd, cstr(rel), how, how.length));
  if (fd < 0) {
    const e = errno();
    if (e === ELOOP)
      throw new CgviewError('E_SYMLINK', `open ${showPath(rel)}: a symlink is in the path, refused`, {
        errno: e,
        path: rel,
      });
    throw sysError('open', rel, e);
  }
  return new Fd(fd, `dir ${rel}`);
}

/** f_type of the filesystem holding `fd`. */
export function fsMagic(fd: Fd): number {
  const buf = Buffer.alloc(STATFS.size);
  if (cFstatfs(fd.fd, buf) < 0) throw sysError('statfs', fd.what, errno());
  return Number(buf.readBigInt64LE(STATFS.type.off));
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

function decodeStat(buf: Buffer): StatInfo {
  const mode = buf.readUInt32LE(STAT.mode.off);
  const fmt = mode & S_IFMT;
  return {
    ino: buf.readBigUInt64LE(STAT.ino.off),
    mode: mode & 0o7777,
    uid: buf.readUInt32LE(STAT.uid.off),
    gid: buf.readUInt32LE(STAT.gid.off),
    isDir: fmt === S_IFDIR,
    isFile: fmt === S_IFREG,
    isSymlink: fmt === S_IFLNK,
  };
}

/** lstat of `name` in `dir` (never follows); null when it does not exist. */
export function statAt(dir: Fd, name: string): StatInfo | null {
  checkName(name);
  const buf = Buffer.alloc(STAT.size);
  if (cFstatat(dir.fd, cstr(name), buf, AT_SYMLINK_NOFOLLOW) < 0) {
    const e = errno();
    if (e === ENOENT) return null;
    throw sysError('stat', name, e);
  }
  return decodeStat(buf);
}

/** fstat of an open descriptor. */
export function statFd(fd: Fd): StatInfo {
  const buf = Buffer.alloc(STAT.size);
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
    if (e === ENOENT) return false;
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
      if (e === EINTR) continue;
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
  self: BPF_CGROUP_ITER_SELF_ONLY,
  descendants_pre: BPF_CGROUP_ITER_DESCENDANTS_PRE,
  descendants_post: BPF_CGROUP_ITER_DESCENDANTS_POST,
  ancestors_up: BPF_CGROUP_ITER_ANCESTORS_UP,
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
  const L = ITER_LINK_INFO_CGROUP;
  const info = Buffer.alloc(L.size);
  info.writeUInt32LE(ORDERS[order], L.order.off);
  if ('fd' in target) info.writeUInt32LE(target.fd.fd, L.cgroupFd.off);
  else info.writeBigUInt64LE(target.id, L.cgroupId.off);
  const A = ATTR_LINK_CREATE;
  const attr = Buffer.alloc(A.iterInfoLen.off + 8);
  attr.writeUInt32LE(progFd, A.progFd.off);
  attr.writeUInt32LE(BPF_TRACE_ITER, A.attachType.off);
  attr.writeBigUInt64LE(koffi.address(info), A.iterInfo.off);
  attr.writeUInt32LE(info.length, A.iterInfoLen.off);
  const fd = bpf(BPF_LINK_CREATE, attr, info);
  if (fd < 0) {
    const e = errno();
    const what = 'fd' in target ? `fd ${target.fd.what}` : `id ${target.id}`;
    if (e === ENOENT || e === ENODEV)
      throw new CgviewError('E_NOT_FOUND', `create iter link for cgroup ${what}: cgroup is gone`, {
        errno: e,
      });
    throw sysError(`create iter link for cgroup ${what}`, undefined, e);
  }
  return new Fd(fd, 'iter link');
}

function objAttr(name: Buffer, dir: Fd, bpfFd: number, flags: number): Buffer {
  const attr = Buffer.alloc(ATTR_OBJ.pathFd.off + 8);
  attr.writeBigUInt64LE(koffi.address(name), ATTR_OBJ.pathname.off);
  attr.writeUInt32LE(bpfFd, ATTR_OBJ.bpfFd.off);
  attr.writeUInt32LE(flags | BPF_F_PATH_FD, ATTR_OBJ.fileFlags.off);
  attr.writeInt32LE(dir.fd, ATTR_OBJ.pathFd.off);
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
    if (e === EEXIST)
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
    if (e === ENOENT) return null;
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
    const attr = Buffer.alloc(ATTR_OBJ.pathFd.off + 8);
    attr.writeBigUInt64LE(koffi.address(n), ATTR_OBJ.pathname.off);
    const fd = bpf(BPF_OBJ_GET, attr, n);
    if (fd < 0) {
      const e = errno();
      if (e === ENOENT) return null;
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
    const buf = Buffer.alloc(STAT.size);
    if (cFstatat(fd.fd, cstr(''), buf, AT_EMPTY_PATH) < 0) throw sysError('stat', name, errno());
    const st = decodeStat(buf);
    const nlink = Number(buf.readBigUInt64LE(STAT.nlink.off));
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
  const attr = Buffer.alloc(ATTR_ITER_CREATE.flags.off + 4);
  attr.writeUInt32LE(link.fd, ATTR_ITER_CREATE.linkFd.off);
  const fd = bpf(BPF_ITER_CREATE, attr);
  if (fd < 0) throw sysError('create iterator', undefined, errno());
  return new Fd(fd, 'iterator');
}

/** BPF_OBJ_GET_INFO_BY_FD into a buffer of the struct's size. */
export function objInfo(fd: Fd | number, info: number | Buffer, what = 'object'): Buffer {
  // `info` may come pre-filled with pointers and lengths for arrays the kernel fills too.
  const buf = typeof info === 'number' ? Buffer.alloc(info) : info;
  const attr = Buffer.alloc(ATTR_INFO.info.off + 8);
  attr.writeUInt32LE(typeof fd === 'number' ? fd : fd.fd, ATTR_INFO.bpfFd.off);
  attr.writeUInt32LE(buf.length, ATTR_INFO.infoLen.off);
  attr.writeBigUInt64LE(koffi.address(buf), ATTR_INFO.info.off);
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

/** Info of a link; for an iterator link also its target and (iter/cgroup) cgroup id. */
export function linkInfo(fd: Fd | number): LinkInfo {
  const I = LINK_INFO;
  const nameBuf = Buffer.alloc(64);
  const info = Buffer.alloc(LINK_INFO_LEN);
  info.writeBigUInt64LE(koffi.address(nameBuf), I.iterTargetName.off);
  info.writeUInt32LE(nameBuf.length, I.iterTargetNameLen.off);
  objInfo(fd, info, 'link');
  const out: LinkInfo = {
    type: info.readUInt32LE(I.type.off),
    id: info.readUInt32LE(I.id.off),
    progId: info.readUInt32LE(I.progId.off),
  };
  if (out.type === BPF_LINK_TYPE_ITER) {
    const len = info.readUInt32LE(I.iterTargetNameLen.off);
    out.targetName = nameBuf.toString('latin1', 0, Math.max(0, len - 1));
    if (out.targetName === 'cgroup') {
      out.cgroupId = info.readBigUInt64LE(I.iterCgroupId.off);
      out.order = info.readUInt32LE(I.iterCgroupOrder.off);
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

/** Info of a program: struct bpf_prog_info. */
export function progInfo(fd: Fd | number): ProgInfo {
  const P = PROG_INFO;
  const info = objInfo(fd, PROG_INFO_LEN, 'program');
  return {
    type: info.readUInt32LE(P.type.off),
    id: info.readUInt32LE(P.id.off),
    tag: info.toString('hex', P.tag.off, P.tag.off + P.tag.size),
    name: info.toString('latin1', P.name.off, P.name.off + P.name.size).replace(/\0.*$/s, ''),
    runTimeNs: info.readBigUInt64LE(P.runTimeNs.off),
    runCnt: info.readBigUInt64LE(P.runCnt.off),
  };
}

/** Ids of the maps a program uses (bpf_prog_info nr_map_ids, map_ids). Throws E_SYSCALL. */
export function progMapIds(fd: Fd | number): number[] {
  const P = PROG_INFO;
  const ids = Buffer.alloc(4 * 64);
  const info = Buffer.alloc(PROG_INFO_LEN);
  info.writeUInt32LE(64, P.nrMapIds.off);
  info.writeBigUInt64LE(koffi.address(ids), P.mapIds.off);
  objInfo(fd, info, 'program');
  const n = Math.min(64, info.readUInt32LE(P.nrMapIds.off));
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4));
}

/** Opens a program by id (needs CAP_SYS_ADMIN). */
export function progFdById(id: number): Fd {
  const attr = Buffer.alloc(ATTR_GET_ID.openFlags.off + 4);
  attr.writeUInt32LE(id, ATTR_GET_ID.progId.off);
  const fd = bpf(BPF_PROG_GET_FD_BY_ID, attr);
  if (fd < 0) throw sysError(`open program id ${id}`, undefined, errno());
  return new Fd(fd, `prog ${id}`);
}

/**
 * Ids of every BPF link in the kernel, by BPF_LINK_GET_NEXT_ID (needs
 * CAP_SYS_ADMIN). Tests filter them (by cgroup id, ...) so that they assert
 * only on their own links, with no listing buffer to outgrow.
 */
export function linkIds(): number[] {
  const out: number[] = [];
  const attr = Buffer.alloc(ATTR_LINK_ID.openFlags.off + 4);
  for (let id = 0; ; ) {
    attr.writeUInt32LE(id, ATTR_LINK_ID.startId.off);
    if (bpf(BPF_LINK_GET_NEXT_ID, attr) < 0) {
      const e = errno();
      if (e === ENOENT) return out; // past the last one
      throw sysError('next link id', undefined, e);
    }
    id = attr.readUInt32LE(ATTR_LINK_ID.nextId.off);
    out.push(id);
  }
}

/** Info of the link with this id; null when there is no such link (any more). */
export function linkInfoById(id: number): LinkInfo | null {
  const attr = Buffer.alloc(ATTR_LINK_ID.openFlags.off + 4);
  attr.writeUInt32LE(id, ATTR_LINK_ID.linkId.off);
  const fd = bpf(BPF_LINK_GET_FD_BY_ID, attr);
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT) return null;
    throw sysError(`open link id ${id}`, undefined, e);
  }
  const link = new Fd(fd, `link ${id}`);
  try {
    return linkInfo(link);
  } finally {
    link.close();
  }
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
  const M = MAP_INFO;
  const info = objInfo(fd, MAP_INFO_LEN, 'map');
  return {
    type: info.readUInt32LE(M.type.off),
    id: info.readUInt32LE(M.id.off),
    keySize: info.readUInt32LE(M.keySize.off),
    valueSize: info.readUInt32LE(M.valueSize.off),
    maxEntries: info.readUInt32LE(M.maxEntries.off),
    flags: info.readUInt32LE(M.mapFlags.off),
    name: info.toString('latin1', M.name.off, M.name.off + M.name.size).replace(/\0.*$/s, ''),
  };
}

/**
 * BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while
 * the returned fd stays open.
 */
export function enableRunTimeStats(): Fd {
  const attr = Buffer.alloc(ATTR_ENABLE_STATS.type.off + 4);
  attr.writeUInt32LE(BPF_STATS_RUN_TIME, ATTR_ENABLE_STATS.type.off);
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
