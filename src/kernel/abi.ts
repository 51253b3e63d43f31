/**
 * The kernel ABI cgview speaks by hand, in one place: syscall numbers,
 * flags, errno values, bpf(2) commands and enums, and the byte layouts of
 * the structs it fills or decodes. The numbers are those of x86_64
 * (process.arch 'x64'); `checkArch()` says whether this machine is one.
 *
 * Every value is written next to the C name it mirrors, and registered for
 * the build-time check (scripts/check-abi.mjs): it compiles a program that
 * prints each C expression, against the installed headers ('uapi') or, for
 * what is newer than them, against the running kernel's BTF ('btf',
 * build/bpf/vmlinux.h), and fails the build on any difference.
 * No FFI here: doctor and the build script load this file cheaply.
 */
import { CgviewError } from '../errors.js';

/**
 * Where the build-time check finds the C side: 'uapi' the installed
 * headers (libc, linux-libc-dev, libbpf-dev); 'btf' the running kernel's
 * BTF, for what the installed headers are too old to have; 'cgview' the
 * project's own BPF headers (the view kit, bpf/sched_lat.h, bpf/bulk.h), for the
 * structs its BPF objects share with TypeScript; 'none' neither (the
 * reason is given).
 */
export type AbiSource = 'uapi' | 'btf' | 'cgview' | { none: string };

export interface AbiCheck {
  /** A C expression with an integer value. */
  c: string;
  value: number;
  src: AbiSource;
}

const checks: AbiCheck[] = [];

/** Registers a constant: its value and the C expression that must equal it. */
function k(value: number, c: string, src: AbiSource = 'uapi'): number {
  checks.push({ c, value, src });
  return value;
}

/** A field of a mirrored struct: byte offset and width. */
export interface Field {
  off: number;
  size: number;
}

export type Struct<F extends string> = { readonly size: number } & { readonly [K in F]: Field };

/**
 * Registers a struct layout: `type` is the C type, each field
 * `[member designator, offset, width]`; `size` is sizeof, or null for a
 * struct whose size cgview does not depend on.
 */
function struct<F extends string>(
  type: string,
  size: number | null,
  fields: Record<F, [string, number, number]>,
  src: AbiSource = 'uapi',
): Struct<F> {
  const out: Record<string, unknown> = { size: size ?? 0 };
  if (size !== null) checks.push({ c: `sizeof(${type})`, value: size, src });
  for (const [name, [member, off, width]] of Object.entries(fields) as Array<[F, [string, number, number]]>) {
    // `size` is the struct's own sizeof: a C member named size gets another key.
    if (name === 'size') throw new Error(`abi.ts: ${type} field key 'size' is taken by sizeof`);
    checks.push({ c: `__builtin_offsetof(${type}, ${member})`, value: off, src });
    checks.push({ c: `sizeof(((${type} *)0)->${member})`, value: width, src });
    out[name] = { off, size: width };
  }
  return out as Struct<F>;
}

/** Everything registered, for scripts/check-abi.mjs and test/unit/abi.test.ts. */
export function abiChecks(): readonly AbiCheck[] {
  return checks;
}

// --- architecture ----------------------------------------------------------

/** The architectures whose numbers and layouts are the ones in this file (Node's process.arch). */
export const SUPPORTED_ARCHES: readonly string[] = ['x64'];

/** Shaped as doctor's FeatureCheck (features.ts), so probeAll can list it as it is. */
export interface ArchCheck {
  name: 'arch';
  ok: boolean;
  required: true;
  arch: string;
  detail: string;
  remedy?: string;
}

/** Whether this machine's architecture is one cgview's ABI tables are for (for doctor). */
export function checkArch(arch: string = process.arch): ArchCheck {
  const base = { name: 'arch', required: true, arch } as const;
  if (SUPPORTED_ARCHES.includes(arch))
    return { ...base, ok: true, detail: `${arch} (x86_64 syscall numbers and layouts)` };
  return {
    ...base,
    ok: false,
    detail: `${arch}: cgview's syscall numbers and struct layouts are for x86_64 only`,
    remedy: 'run cgview on x86_64; another architecture needs its numbers and layouts in src/kernel/abi.ts',
  };
}

/** Throws E_NOT_SUPPORTED unless the architecture is supported: no syscall is made with a wrong number. */
export function requireSupportedArch(arch: string = process.arch): void {
  const c = checkArch(arch);
  if (!c.ok)
    throw new CgviewError('E_NOT_SUPPORTED', `unsupported architecture ${arch}`, {
      hint: c.remedy ?? 'see docs/operations.md',
    });
}

// --- syscall numbers (x86_64) ----------------------------------------------

export const NR_BPF = k(321, 'SYS_bpf');
export const NR_OPENAT2 = k(437, 'SYS_openat2');
/** Linux 6.6; in the shared syscall table (424 and up: the same number on every architecture). */
export const NR_FCHMODAT2 = k(452, 'SYS_fchmodat2', {
  none: 'Linux 6.6; newer than the headers, not in BTF',
});

// --- errno ------------------------------------------------------------------

export const EPERM = k(1, 'EPERM');
export const ENOENT = k(2, 'ENOENT');
export const EINTR = k(4, 'EINTR');
export const EAGAIN = k(11, 'EAGAIN');
export const EACCES = k(13, 'EACCES');
export const EEXIST = k(17, 'EEXIST');
export const ENODEV = k(19, 'ENODEV');
export const EINVAL = k(22, 'EINVAL');
export const ENOSPC = k(28, 'ENOSPC');
export const ENOTEMPTY = k(39, 'ENOTEMPTY');
export const ELOOP = k(40, 'ELOOP');
export const EOPNOTSUPP = k(95, 'EOPNOTSUPP');
/** The kernel's internal ENOTSUPP, which bpf(2) lets out; not in uapi (include/linux/errno.h). */
export const ENOTSUPP = k(524, 'ENOTSUPP', { none: 'kernel-internal errno, in no uapi header' });

// --- fcntl / openat2 / fstatat flags ----------------------------------------------

export const AT_FDCWD = k(-100, 'AT_FDCWD');
export const AT_SYMLINK_NOFOLLOW = k(0x100, 'AT_SYMLINK_NOFOLLOW');
export const AT_REMOVEDIR = k(0x200, 'AT_REMOVEDIR');
export const AT_EMPTY_PATH = k(0x1000, 'AT_EMPTY_PATH');
export const O_RDONLY = k(0, 'O_RDONLY');
export const O_DIRECTORY = k(0o200000, 'O_DIRECTORY');
export const O_NOFOLLOW = k(0o400000, 'O_NOFOLLOW');
export const O_CLOEXEC = k(0o2000000, 'O_CLOEXEC');
export const O_PATH = k(0o10000000, 'O_PATH');
export const RESOLVE_NO_MAGICLINKS = k(0x02, 'RESOLVE_NO_MAGICLINKS');
export const RESOLVE_NO_SYMLINKS = k(0x04, 'RESOLVE_NO_SYMLINKS');
export const RESOLVE_BENEATH = k(0x08, 'RESOLVE_BENEATH');
export const S_IFMT = k(0o170000, 'S_IFMT');
export const S_IFDIR = k(0o040000, 'S_IFDIR');
export const S_IFREG = k(0o100000, 'S_IFREG');
export const S_IFLNK = k(0o120000, 'S_IFLNK');

// --- inotify ------------------------------------------------------------------

export const IN_ATTRIB = k(0x4, 'IN_ATTRIB');
export const IN_MOVED_FROM = k(0x40, 'IN_MOVED_FROM');
export const IN_MOVED_TO = k(0x80, 'IN_MOVED_TO');
export const IN_CREATE = k(0x100, 'IN_CREATE');
export const IN_DELETE = k(0x200, 'IN_DELETE');
export const IN_DELETE_SELF = k(0x400, 'IN_DELETE_SELF');
export const IN_Q_OVERFLOW = k(0x4000, 'IN_Q_OVERFLOW');
export const IN_IGNORED = k(0x8000, 'IN_IGNORED');
export const IN_ONLYDIR = k(0x1000000, 'IN_ONLYDIR');
export const IN_DONT_FOLLOW = k(0x2000000, 'IN_DONT_FOLLOW');
export const IN_ISDIR = k(0x40000000, 'IN_ISDIR');
export const IN_CLOEXEC = k(0o2000000, 'IN_CLOEXEC');

/** struct inotify_event; the name (len bytes, NUL-padded) follows the header. */
export const INOTIFY_EVENT = struct('struct inotify_event', 16, {
  wd: ['wd', 0, 4],
  mask: ['mask', 4, 4],
  cookie: ['cookie', 8, 4],
  len: ['len', 12, 4],
});

// --- sockets ------------------------------------------------------------------

// asm-generic/socket.h, which x86_64 uses (powerpc, mips, sparc and parisc have other numbers).
export const SOL_SOCKET = k(1, 'SOL_SOCKET');
export const SO_PEERCRED = k(17, 'SO_PEERCRED');
/** The peer's supplementary groups, recorded at connect(2) like SO_PEERCRED (Linux 4.13). */
export const SO_PEERGROUPS = k(59, 'SO_PEERGROUPS');
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } (glibc sys/socket.h, _GNU_SOURCE), as SO_PEERCRED fills it. */
export const UCRED = struct('struct ucred', 12, {
  pid: ['pid', 0, 4],
  uid: ['uid', 4, 4],
  gid: ['gid', 8, 4],
});

// --- capabilities -----------------------------------------------------------

export const CAP_SYS_ADMIN = k(21, 'CAP_SYS_ADMIN');
export const CAP_PERFMON = k(38, 'CAP_PERFMON');
export const CAP_BPF = k(39, 'CAP_BPF');

// --- file system magic numbers (statfs f_type, linux/magic.h) -------------------

export const BPF_FS_MAGIC = k(0xcafe4a11, 'BPF_FS_MAGIC');
export const CGROUP2_SUPER_MAGIC = k(0x63677270, 'CGROUP2_SUPER_MAGIC');
export const CGROUP_SUPER_MAGIC = k(0x27e0eb, 'CGROUP_SUPER_MAGIC');

// Local file systems whose owners and modes are this kernel's own, kept on a
// disk or in memory that nobody but root attaches (src/views/objstore.ts
// loads user objects only from these: an allow-list, since a deny-list of
// the others is never complete). ext2 and ext3 report EXT4_SUPER_MAGIC too.
export const EXT4_SUPER_MAGIC = k(0xef53, 'EXT4_SUPER_MAGIC');
export const XFS_SUPER_MAGIC = k(0x58465342, 'XFS_SUPER_MAGIC');
export const BTRFS_SUPER_MAGIC = k(0x9123683e, 'BTRFS_SUPER_MAGIC');
export const TMPFS_MAGIC = k(0x01021994, 'TMPFS_MAGIC');
export const RAMFS_MAGIC = k(0x858458f6, 'RAMFS_MAGIC');
export const SQUASHFS_MAGIC = k(0x73717368, 'SQUASHFS_MAGIC');
export const F2FS_SUPER_MAGIC = k(0xf2f52010, 'F2FS_SUPER_MAGIC');
export const OVERLAYFS_SUPER_MAGIC = k(0x794c7630, 'OVERLAYFS_SUPER_MAGIC');
export const ZFS_SUPER_MAGIC = k(0x2fc12fc1, 'ZFS_SUPER_MAGIC', {
  none: "OpenZFS's (include/sys/fs/zfs.h), out of tree, in no uapi header",
});
export const BCACHEFS_STATFS_MAGIC = k(0xca451a4e, 'BCACHEFS_STATFS_MAGIC', {
  none: 'fs/bcachefs/bcachefs_format.h; the installed linux/magic.h is older than its move there',
});

// Some of the file systems refused, by name in the message only: owners and
// modes there are what a server, another machine or a user's process says.
export const FUSE_SUPER_MAGIC = k(0x65735546, 'FUSE_SUPER_MAGIC');
export const NFS_SUPER_MAGIC = k(0x6969, 'NFS_SUPER_MAGIC');
export const SMB_SUPER_MAGIC = k(0x517b, 'SMB_SUPER_MAGIC');
export const CIFS_SUPER_MAGIC = k(0xff534d42, 'CIFS_SUPER_MAGIC');
export const SMB2_SUPER_MAGIC = k(0xfe534d42, 'SMB2_SUPER_MAGIC');
export const V9FS_MAGIC = k(0x01021997, 'V9FS_MAGIC');
export const CEPH_SUPER_MAGIC = k(0x00c36400, 'CEPH_SUPER_MAGIC');
export const AFS_SUPER_MAGIC = k(0x5346414f, 'AFS_SUPER_MAGIC');
export const AFS_FS_MAGIC = k(0x6b414653, 'AFS_FS_MAGIC');
export const CODA_SUPER_MAGIC = k(0x73757245, 'CODA_SUPER_MAGIC');
export const OCFS2_SUPER_MAGIC = k(0x7461636f, 'OCFS2_SUPER_MAGIC');
export const HOSTFS_SUPER_MAGIC = k(0x00c0ffee, 'HOSTFS_SUPER_MAGIC');

// --- file system structs (glibc's, x86_64) ---------------------------------------

/** struct open_how (linux/openat2.h). */
export const OPEN_HOW = struct('struct open_how', 24, {
  flags: ['flags', 0, 8],
  mode: ['mode', 8, 8],
  resolve: ['resolve', 16, 8],
});

/** struct statfs (glibc, sys/vfs.h): only f_type is read. */
export const STATFS = struct('struct statfs', 120, { type: ['f_type', 0, 8] });

/** struct stat (glibc, sys/stat.h), as fstatat fills it. */
export const STAT = struct('struct stat', 144, {
  ino: ['st_ino', 8, 8],
  nlink: ['st_nlink', 16, 8],
  mode: ['st_mode', 24, 4],
  uid: ['st_uid', 28, 4],
  gid: ['st_gid', 32, 4],
});

// --- bpf(2) -------------------------------------------------------------------

// enum bpf_cmd
export const BPF_OBJ_PIN = k(6, 'BPF_OBJ_PIN');
export const BPF_OBJ_GET = k(7, 'BPF_OBJ_GET');
export const BPF_PROG_GET_FD_BY_ID = k(13, 'BPF_PROG_GET_FD_BY_ID');
export const BPF_OBJ_GET_INFO_BY_FD = k(15, 'BPF_OBJ_GET_INFO_BY_FD');
export const BPF_LINK_CREATE = k(28, 'BPF_LINK_CREATE');
export const BPF_LINK_GET_FD_BY_ID = k(30, 'BPF_LINK_GET_FD_BY_ID');
export const BPF_LINK_GET_NEXT_ID = k(31, 'BPF_LINK_GET_NEXT_ID');
export const BPF_ENABLE_STATS = k(32, 'BPF_ENABLE_STATS');
export const BPF_ITER_CREATE = k(33, 'BPF_ITER_CREATE');
/** file_flags of BPF_OBJ_PIN/GET: path_fd is a directory fd (Linux 6.5). */
export const BPF_F_PATH_FD = k(1 << 14, 'BPF_F_PATH_FD', 'btf');
/** enum bpf_attach_type */
export const BPF_TRACE_ITER = k(28, 'BPF_TRACE_ITER');
/** enum bpf_link_type */
export const BPF_LINK_TYPE_ITER = k(4, 'BPF_LINK_TYPE_ITER');
/** enum bpf_stats_type */
export const BPF_STATS_RUN_TIME = k(0, 'BPF_STATS_RUN_TIME');
/** enum bpf_map_type (Linux 6.2) */
export const BPF_MAP_TYPE_CGRP_STORAGE = k(32, 'BPF_MAP_TYPE_CGRP_STORAGE', 'btf');
/** enum bpf_cgroup_iter_order */
export const BPF_CGROUP_ITER_SELF_ONLY = k(1, 'BPF_CGROUP_ITER_SELF_ONLY');
export const BPF_CGROUP_ITER_DESCENDANTS_PRE = k(2, 'BPF_CGROUP_ITER_DESCENDANTS_PRE');
export const BPF_CGROUP_ITER_DESCENDANTS_POST = k(3, 'BPF_CGROUP_ITER_DESCENDANTS_POST');
export const BPF_CGROUP_ITER_ANCESTORS_UP = k(4, 'BPF_CGROUP_ITER_ANCESTORS_UP');
/** BTF_MAGIC, the first two bytes of a BTF blob (linux/btf.h). */
export const BTF_MAGIC = k(0xeb9f, 'BTF_MAGIC');
/** struct btf_header (linux/btf.h), at the start of a BTF blob: only magic is read. */
export const BTF_HEADER = struct('struct btf_header', null, { magic: ['magic', 0, 2] });
// BTF kinds (linux/btf.h, enum constants): those cgview decodes.
export const BTF_KIND_INT = k(1, 'BTF_KIND_INT');
export const BTF_KIND_PTR = k(2, 'BTF_KIND_PTR');
export const BTF_KIND_ARRAY = k(3, 'BTF_KIND_ARRAY');
export const BTF_KIND_STRUCT = k(4, 'BTF_KIND_STRUCT');
export const BTF_KIND_UNION = k(5, 'BTF_KIND_UNION');
export const BTF_KIND_ENUM = k(6, 'BTF_KIND_ENUM');
export const BTF_KIND_TYPEDEF = k(8, 'BTF_KIND_TYPEDEF');
export const BTF_KIND_VOLATILE = k(9, 'BTF_KIND_VOLATILE');
export const BTF_KIND_CONST = k(10, 'BTF_KIND_CONST');
export const BTF_KIND_RESTRICT = k(11, 'BTF_KIND_RESTRICT');
export const BTF_KIND_DATASEC = k(15, 'BTF_KIND_DATASEC');
export const BTF_KIND_FLOAT = k(16, 'BTF_KIND_FLOAT');
export const BTF_KIND_TYPE_TAG = k(18, 'BTF_KIND_TYPE_TAG');
export const BTF_KIND_ENUM64 = k(19, 'BTF_KIND_ENUM64');
/** struct btf_type (linux/btf.h): vlen is the low 16 bits of info; members follow the struct. */
export const BTF_TYPE = struct('struct btf_type', 12, {
  nameOff: ['name_off', 0, 4],
  info: ['info', 4, 4],
  sizeOrType: ['size', 8, 4],
});
// The masks, checked through the C macros themselves: BTF_INFO_KIND(0xffffffff) is the kind mask.
const BTF_INFO_KIND_MASK = k(0x1f, 'BTF_INFO_KIND(0xffffffffU)');
const BTF_INFO_VLEN_MASK = k(0xffff, 'BTF_INFO_VLEN(0xffffffffU)');
/** The kind in btf_type.info: bits 24-28 (BTF_INFO_KIND). */
export function btfInfoKind(info: number): number {
  return (info >>> 24) & BTF_INFO_KIND_MASK;
}
/** The vlen in btf_type.info (members, variables, enumerators): the low 16 bits (BTF_INFO_VLEN). */
export function btfInfoVlen(info: number): number {
  return info & BTF_INFO_VLEN_MASK;
}
/** struct btf_array (linux/btf.h): follows the btf_type of a BTF_KIND_ARRAY. */
export const BTF_ARRAY = struct('struct btf_array', 12, {
  type: ['type', 0, 4],
  indexType: ['index_type', 4, 4],
  nelems: ['nelems', 8, 4],
});
/** struct btf_member (linux/btf.h): vlen of them follow a STRUCT/UNION; offset is in bits (or bitfield size << 24 | offset). */
export const BTF_MEMBER = struct('struct btf_member', 12, {
  nameOff: ['name_off', 0, 4],
  type: ['type', 4, 4],
  offset: ['offset', 8, 4],
});
/** struct btf_var_secinfo (linux/btf.h): one per variable of a DATASEC. */
export const BTF_VAR_SECINFO = struct('struct btf_var_secinfo', 12, {
  type: ['type', 0, 4],
  offset: ['offset', 4, 4],
  varSize: ['size', 8, 4],
});

/** union bpf_attr, the members used for BPF_OBJ_PIN / BPF_OBJ_GET (path_fd: Linux 6.5, so from BTF). */
export const ATTR_OBJ = struct(
  'union bpf_attr',
  null,
  {
    pathname: ['pathname', 0, 8],
    bpfFd: ['bpf_fd', 8, 4],
    fileFlags: ['file_flags', 12, 4],
    pathFd: ['path_fd', 16, 4],
  },
  'btf',
);
/** The same members as far as the installed headers have them. */
struct('union bpf_attr', null, {
  pathname: ['pathname', 0, 8],
  bpfFd: ['bpf_fd', 8, 4],
  fileFlags: ['file_flags', 12, 4],
});

/** union bpf_attr, BPF_LINK_CREATE of an iterator link. */
export const ATTR_LINK_CREATE = struct('union bpf_attr', null, {
  progFd: ['link_create.prog_fd', 0, 4],
  targetFd: ['link_create.target_fd', 4, 4],
  attachType: ['link_create.attach_type', 8, 4],
  flags: ['link_create.flags', 12, 4],
  iterInfo: ['link_create.iter_info', 16, 8],
  iterInfoLen: ['link_create.iter_info_len', 24, 4],
});

/** union bpf_attr, BPF_ITER_CREATE. */
export const ATTR_ITER_CREATE = struct('union bpf_attr', null, {
  linkFd: ['iter_create.link_fd', 0, 4],
  flags: ['iter_create.flags', 4, 4],
});

/** union bpf_attr, BPF_OBJ_GET_INFO_BY_FD. */
export const ATTR_INFO = struct('union bpf_attr', null, {
  bpfFd: ['info.bpf_fd', 0, 4],
  infoLen: ['info.info_len', 4, 4],
  info: ['info.info', 8, 8],
});

/** union bpf_attr, BPF_PROG_GET_FD_BY_ID. */
export const ATTR_GET_ID = struct('union bpf_attr', null, {
  progId: ['prog_id', 0, 4],
  openFlags: ['open_flags', 8, 4],
});

/** union bpf_attr, BPF_LINK_GET_FD_BY_ID and BPF_LINK_GET_NEXT_ID. */
export const ATTR_LINK_ID = struct('union bpf_attr', null, {
  startId: ['start_id', 0, 4],
  nextId: ['next_id', 4, 4],
  linkId: ['link_id', 0, 4],
  openFlags: ['open_flags', 8, 4],
});

/** union bpf_attr, BPF_ENABLE_STATS. */
export const ATTR_ENABLE_STATS = struct('union bpf_attr', null, { type: ['enable_stats.type', 0, 4] });

// --- cgview's own BPF structs (bpf/sched_lat.h, bpf/bulk.h), read by src/views/bulk.ts ---

/** Number of log2 buckets of struct sl_stats' wait histogram (SL_HIST_BUCKETS). */
export const SL_HIST_BUCKETS = k(40, 'SL_HIST_BUCKETS', 'cgview');

/** struct sl_stats: one cgroup's sched_lat counters (all __u64). */
export const SL_STATS = struct(
  'struct sl_stats',
  368,
  {
    waitCount: ['wait_count', 0, 8],
    waitNsTotal: ['wait_ns_total', 8, 8],
    selfNsTotal: ['self_ns_total', 16, 8],
    otherNsTotal: ['other_ns_total', 24, 8],
    selfMaxNs: ['self_max_ns', 32, 8],
    otherMaxNs: ['other_max_ns', 40, 8],
    hist: ['hist', 48, 8 * 40],
  },
  'cgview',
);

/** struct sl_bulk_rec: one cgroup of a sched_lat_bulk walk. */
export const SL_BULK_REC = struct(
  'struct sl_bulk_rec',
  384,
  { id: ['id', 0, 8], parentId: ['parent_id', 8, 8], st: ['st', 16, 368] },
  'cgview',
);

/** struct info_bulk_rec (bpf/bulk.h): one cgroup of an info_bulk walk. */
export const INFO_BULK_REC = struct(
  'struct info_bulk_rec',
  272,
  {
    id: ['id', 0, 8],
    level: ['level', 8, 4],
    hierarchyId: ['hierarchy_id', 12, 4],
    name: ['name', 16, 256],
  },
  'cgview',
);

/** struct cgv_bulk_hdr (bpf/bulk.h): what a bulk walk saw. */
export const CGV_BULK_HDR = struct(
  'struct cgv_bulk_hdr',
  16,
  { count: ['count', 0, 8], done: ['done', 8, 8] },
  'cgview',
);

/** union bpf_iter_link_info, its cgroup member. */
export const ITER_LINK_INFO_CGROUP = struct('union bpf_iter_link_info', 16, {
  order: ['cgroup.order', 0, 4],
  cgroupFd: ['cgroup.cgroup_fd', 4, 4],
  cgroupId: ['cgroup.cgroup_id', 8, 8],
});

/**
 * struct bpf_link_info, iterator links. The size is the running kernel's
 * (it grows; a larger buffer than the kernel knows is refused only if the
 * excess is not zero).
 */
export const LINK_INFO = struct(
  'struct bpf_link_info',
  null,
  {
    type: ['type', 0, 4],
    id: ['id', 4, 4],
    progId: ['prog_id', 8, 4],
    iterTargetName: ['iter.target_name', 16, 8],
    iterTargetNameLen: ['iter.target_name_len', 24, 4],
    iterMapId: ['iter.map.map_id', 28, 4],
    iterCgroupId: ['iter.cgroup.cgroup_id', 32, 8],
    iterCgroupOrder: ['iter.cgroup.order', 40, 4],
  },
  'btf',
);
/** What cgview passes as bpf_link_info's length: enough for the iterator members. */
export const LINK_INFO_LEN = 64;

/** struct bpf_prog_info (the kernel zero-fills what a shorter buffer leaves out). */
export const PROG_INFO = struct('struct bpf_prog_info', null, {
  type: ['type', 0, 4],
  id: ['id', 4, 4],
  tag: ['tag', 8, 8],
  nrMapIds: ['nr_map_ids', 52, 4],
  mapIds: ['map_ids', 56, 8],
  name: ['name', 64, 16],
  runTimeNs: ['run_time_ns', 192, 8],
  runCnt: ['run_cnt', 200, 8],
});
/** sizeof(struct bpf_prog_info) in 6.1 headers and 6.18 alike. */
export const PROG_INFO_LEN = k(232, 'sizeof(struct bpf_prog_info)');

/** struct bpf_map_info. */
export const MAP_INFO = struct('struct bpf_map_info', null, {
  type: ['type', 0, 4],
  id: ['id', 4, 4],
  keySize: ['key_size', 8, 4],
  valueSize: ['value_size', 12, 4],
  maxEntries: ['max_entries', 16, 4],
  mapFlags: ['map_flags', 20, 4],
  name: ['name', 24, 16],
  btfId: ['btf_id', 64, 4],
  btfKeyTypeId: ['btf_key_type_id', 68, 4],
  btfValueTypeId: ['btf_value_type_id', 72, 4],
});
export const MAP_INFO_LEN = k(88, 'sizeof(struct bpf_map_info)');

// --- libbpf 1.1 (bpf/libbpf.h) -------------------------------------------------------

/** enum libbpf_errno: libbpf's own error numbers, which it returns like (negated) errno values. */
export const LIBBPF_ERRNO__LIBELF = k(4000, 'LIBBPF_ERRNO__LIBELF');
export const LIBBPF_ERRNO__FORMAT = k(4001, 'LIBBPF_ERRNO__FORMAT');
export const LIBBPF_ERRNO__KVERSION = k(4002, 'LIBBPF_ERRNO__KVERSION');
export const LIBBPF_ERRNO__ENDIAN = k(4003, 'LIBBPF_ERRNO__ENDIAN');
export const LIBBPF_ERRNO__INTERNAL = k(4004, 'LIBBPF_ERRNO__INTERNAL');
export const LIBBPF_ERRNO__RELOC = k(4005, 'LIBBPF_ERRNO__RELOC');
export const LIBBPF_ERRNO__LOAD = k(4006, 'LIBBPF_ERRNO__LOAD');
export const LIBBPF_ERRNO__VERIFY = k(4007, 'LIBBPF_ERRNO__VERIFY');
export const LIBBPF_ERRNO__PROG2BIG = k(4008, 'LIBBPF_ERRNO__PROG2BIG');
export const LIBBPF_ERRNO__KVER = k(4009, 'LIBBPF_ERRNO__KVER');
export const LIBBPF_ERRNO__PROGTYPE = k(4010, 'LIBBPF_ERRNO__PROGTYPE');
export const LIBBPF_ERRNO__WRNGPID = k(4011, 'LIBBPF_ERRNO__WRNGPID');
export const LIBBPF_ERRNO__INVSEQ = k(4012, 'LIBBPF_ERRNO__INVSEQ');
export const LIBBPF_ERRNO__NLPARSE = k(4013, 'LIBBPF_ERRNO__NLPARSE');

/** struct bpf_object_open_opts of the installed libbpf: the members cgview sets. */
export const OBJECT_OPEN_OPTS = struct('struct bpf_object_open_opts', 80, {
  sz: ['sz', 0, 8],
  objectName: ['object_name', 8, 8],
  kernelLogBuf: ['kernel_log_buf', 56, 8],
  kernelLogSize: ['kernel_log_size', 64, 8],
  kernelLogLevel: ['kernel_log_level', 72, 4],
});
