/**
 * Raw koffi bindings to libc and libbpf. Internal to src/kernel/: nothing
 * outside this directory imports koffi or sees a pointer.
 *
 * Syscall numbers and struct layouts are in abi.ts (x86_64, checked against
 * the headers at build time). The calls whose numbers or buffers depend on
 * the architecture refuse to run on another one (E_NOT_SUPPORTED) rather
 * than issue a wrong syscall.
 */
import { createRequire } from 'node:module';
import { requireSupportedArch } from './abi.js';

const require = createRequire(import.meta.url);
// koffi ships CommonJS; its prebuilt binary comes from @koromix/koffi-linux-x64.
export const koffi = require('koffi') as typeof import('koffi');

export const libc = koffi.load('libc.so.6');
export const libbpf = koffi.load('libbpf.so.1');

/** Opaque pointers from libbpf arrive as bigint (koffi 3). */
export type Ptr = bigint;

type CFunction = ReturnType<typeof libc.func>;

let archChecked = false;
/** `f`, checking the architecture on the first call (the check throws E_NOT_SUPPORTED). */
function archBound(f: CFunction): (...args: unknown[]) => ReturnType<CFunction> {
  return (...args) => {
    if (!archChecked) {
      requireSupportedArch();
      archChecked = true;
    }
    return f(...args);
  };
}

// --- libc ---------------------------------------------------------------
// syscall(2) is variadic in C but written in assembly in glibc and reads its
// arguments from registers only, so fixed prototypes per use are safe.
export const sys4 = archBound(libc.func('long syscall(long nr, long a, void *b, unsigned long c)'));
export const sysOpenat2 = archBound(
  libc.func('long syscall(long nr, int dirfd, const char *path, void *how, unsigned long size)'),
);
export const sysFchmodat2 = archBound(
  libc.func('long syscall(long nr, int dirfd, const char *path, unsigned int mode, int flags)'),
);
export const cClose = libc.func('int close(int fd)');
export const cOpenat = libc.func('int openat(int dirfd, const char *path, int flags, unsigned int mode)');
export const cMkdirat = libc.func('int mkdirat(int dirfd, const char *path, unsigned int mode)');
export const cUnlinkat = libc.func('int unlinkat(int dirfd, const char *path, int flags)');
export const cFchownat = libc.func(
  'int fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags)',
);
// struct statfs and struct stat have other layouts on other architectures.
export const cFstatfs = archBound(libc.func('int fstatfs(int fd, void *buf)'));
export const cFstatat = archBound(
  libc.func('int fstatat(int dirfd, const char *path, void *buf, int flags)'),
);
export const cRead = libc.func('long read(int fd, void *buf, unsigned long count)');
export const cVsnprintf = libc.func('int vsnprintf(void *buf, unsigned long size, void *fmt, void *ap)');
export const cInotifyInit1 = libc.func('int inotify_init1(int flags)');
export const cInotifyAddWatch = libc.func('int inotify_add_watch(int fd, const char *path, uint32_t mask)');
export const cInotifyRmWatch = libc.func('int inotify_rm_watch(int fd, int wd)');
export const cGeteuid = libc.func('unsigned int geteuid(void)');
export const cCapget = libc.func('int capget(void *hdr, void *data)');

// --- libbpf -------------------------------------------------------------
export const LibbpfPrintFn = koffi.proto('int LibbpfPrintFn(int level, void *fmt, void *ap)');
export const libbpfSetPrint = libbpf.func('void *libbpf_set_print(LibbpfPrintFn *fn)');

export const objOpenFile = libbpf.func('void *bpf_object__open_file(void *path, void *opts)');
export const objLoad = libbpf.func('int bpf_object__load(void *obj)');
export const objClose = libbpf.func('void bpf_object__close(void *obj)');
export const objFindProg = libbpf.func('void *bpf_object__find_program_by_name(void *obj, const char *name)');
export const objFindMap = libbpf.func('void *bpf_object__find_map_by_name(void *obj, const char *name)');
export const objNextProg = libbpf.func('void *bpf_object__next_program(void *obj, void *prev)');
export const objNextMap = libbpf.func('void *bpf_object__next_map(void *obj, void *prev)');
export const objBtf = libbpf.func('void *bpf_object__btf(void *obj)');
export const progName = libbpf.func('const char *bpf_program__name(void *prog)');
export const progSectionName = libbpf.func('const char *bpf_program__section_name(void *prog)');
export const progFd = libbpf.func('int bpf_program__fd(void *prog)');
export const progSetAutoload = libbpf.func('int bpf_program__set_autoload(void *prog, bool autoload)');
export const progAttach = libbpf.func('void *bpf_program__attach(void *prog)');
export const linkFd = libbpf.func('int bpf_link__fd(void *link)');
export const linkDisconnect = libbpf.func('void bpf_link__disconnect(void *link)');
export const linkDestroy = libbpf.func('int bpf_link__destroy(void *link)');
export const mapName = libbpf.func('const char *bpf_map__name(void *map)');
export const mapFd = libbpf.func('int bpf_map__fd(void *map)');
export const mapReuseFd = libbpf.func('int bpf_map__reuse_fd(void *map, int fd)');
export const mapSetMaxEntries = libbpf.func('int bpf_map__set_max_entries(void *map, uint32_t max_entries)');
export const mapInitialValue = libbpf.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)');
export const mapSetInitialValue = libbpf.func(
  'int bpf_map__set_initial_value(void *map, const void *data, size_t size)',
);
export const btfFindByNameKind = libbpf.func(
  'int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)',
);
export const btfTypeById = libbpf.func('void *btf__type_by_id(void *btf, uint32_t id)');
export const btfNameByOffset = libbpf.func('const char *btf__name_by_offset(void *btf, uint32_t off)');
export const bpfMapLookup = libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)');
export const bpfMapUpdate = libbpf.func(
  'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
);
export const bpfMapDelete = libbpf.func('int bpf_map_delete_elem(int fd, const void *key)');
export const bpfMapNextKey = libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)');
export const bpfMapLookupBatch = libbpf.func(
  'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const void *opts)',
);
export const bpfEnableStats = libbpf.func('int bpf_enable_stats(int type)');

/** Turns a pointer to a NUL-terminated C string into a JS string (latin1 keeps bytes). */
export function cString(p: Ptr): string {
  return p === 0n ? '' : (koffi.decode(p, 'char', -1) as string);
}

/** Copies `len` bytes at `p` into a Buffer. */
export function copyBytes(p: Ptr, len: number): Buffer {
  return Buffer.from(new Uint8Array(koffi.view(p, len) as ArrayBuffer));
}

export function errno(): number {
  return koffi.errno();
}
