/**
 * BPF objects through libbpf: open and load an ELF object (CO-RE), find its
 * programs and maps, attach tracing programs, reuse pinned maps, and set
 * `const volatile` globals before load.
 */
import { CgviewError } from '../errors.js';
import {
  BTF_ARRAY,
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_VOLATILE,
  BTF_MEMBER,
  BTF_TYPE,
  BTF_VAR_SECINFO,
  btfInfoKind,
  btfInfoVlen,
  EINVAL,
  ENOENT,
  ENOTSUPP,
  EOPNOTSUPP,
  EPERM,
  LIBBPF_ERRNO__ENDIAN,
  LIBBPF_ERRNO__FORMAT,
  LIBBPF_ERRNO__INTERNAL,
  LIBBPF_ERRNO__INVSEQ,
  LIBBPF_ERRNO__KVER,
  LIBBPF_ERRNO__KVERSION,
  LIBBPF_ERRNO__LIBELF,
  LIBBPF_ERRNO__LOAD,
  LIBBPF_ERRNO__NLPARSE,
  LIBBPF_ERRNO__PROG2BIG,
  LIBBPF_ERRNO__PROGTYPE,
  LIBBPF_ERRNO__RELOC,
  LIBBPF_ERRNO__VERIFY,
  LIBBPF_ERRNO__WRNGPID,
  MAP_INFO,
  MAP_INFO_LEN,
  OBJECT_OPEN_OPTS,
} from './abi.js';
import { Fd } from './fd.js';
import {
  bpfMapDelete,
  bpfMapLookup,
  bpfMapLookupBatch,
  bpfMapNextKey,
  bpfMapUpdate,
  btfFindByNameKind,
  btfNameByOffset,
  btfTypeById,
  copyBytes,
  cVsnprintf,
  errno,
  koffi,
  LibbpfPrintFn,
  libbpf,
  libbpfSetPrint,
  linkDestroy,
  linkDisconnect,
  linkFd,
  mapFd,
  mapInitialValue,
  mapName,
  mapReuseFd,
  mapSetInitialValue,
  mapSetMaxEntries,
  objBtf,
  objClose,
  objFindMap,
  objLoad,
  objNextMap,
  objNextProg,
  objOpenFile,
  type Ptr,
  progAttach,
  progFd,
  progName,
  progSectionName,
  progSetAutoload,
} from './ffi.js';
import {
  type CgroupIterOrder,
  type CgroupTarget,
  cstr,
  errnoName,
  iterCreate,
  linkCreateCgroupIter,
  type MapInfo,
  mapInfo,
  objInfo,
  objPinAt,
  type ProgInfo,
  progInfo,
  readAll,
  sysError,
} from './sys.js';

// --- libbpf's own messages ------------------------------------------------

export type LibbpfLogger = (level: 'warn' | 'info' | 'debug', line: string) => void;
// Silent by default: failures carry libbpf's lines in the thrown error; the
// daemon routes them into its own log with setLibbpfLogger.
let logger: LibbpfLogger = () => {};
/** Lines libbpf printed during the current open/load, kept for error messages. */
let captured: string[] | null = null;
const printBuf = Buffer.alloc(1 << 16);
const printCb = koffi.register((level: number, fmt: Ptr, ap: Ptr) => {
  // va_list can only be consumed once: format it in C, once, into our buffer.
  const n = cVsnprintf(printBuf, printBuf.length, fmt, ap);
  const text = printBuf.toString('utf8', 0, Math.min(Math.max(n, 0), printBuf.length - 1)).replace(/\n$/, '');
  captured?.push(text);
  logger(level === 0 ? 'warn' : level === 1 ? 'info' : 'debug', text);
  return 0;
}, koffi.pointer(LibbpfPrintFn));
libbpfSetPrint(printCb);

/** Routes libbpf's messages (warnings by default to stderr) to `fn`. */
export function setLibbpfLogger(fn: LibbpfLogger): void {
  logger = fn;
}

// --- objects --------------------------------------------------------------

/**
 * libbpf's own error numbers (enum libbpf_errno, libbpf.h: LIBBPF_ERRNO__START
 * 4000), which it returns like errno values; said in words here.
 */
const LIBBPF_ERRORS: Record<number, string> = {
  [LIBBPF_ERRNO__LIBELF]: 'libelf failed to read it (LIBBPF_ERRNO__LIBELF)',
  [LIBBPF_ERRNO__FORMAT]: 'not a BPF ELF object (LIBBPF_ERRNO__FORMAT)',
  [LIBBPF_ERRNO__KVERSION]: 'bad or missing kernel version section (LIBBPF_ERRNO__KVERSION)',
  [LIBBPF_ERRNO__ENDIAN]: 'built for the other byte order (LIBBPF_ERRNO__ENDIAN)',
  [LIBBPF_ERRNO__INTERNAL]: 'libbpf internal error (LIBBPF_ERRNO__INTERNAL)',
  [LIBBPF_ERRNO__RELOC]: 'a relocation failed (LIBBPF_ERRNO__RELOC)',
  [LIBBPF_ERRNO__LOAD]: 'the kernel refused to load it (LIBBPF_ERRNO__LOAD)',
  [LIBBPF_ERRNO__VERIFY]: 'the verifier rejected it (LIBBPF_ERRNO__VERIFY)',
  [LIBBPF_ERRNO__PROG2BIG]: 'a program is too big (LIBBPF_ERRNO__PROG2BIG)',
  [LIBBPF_ERRNO__KVER]: 'the kernel version does not match (LIBBPF_ERRNO__KVER)',
  [LIBBPF_ERRNO__PROGTYPE]: 'a program type the kernel does not support (LIBBPF_ERRNO__PROGTYPE)',
  [LIBBPF_ERRNO__WRNGPID]: 'wrong netlink pid (LIBBPF_ERRNO__WRNGPID)',
  [LIBBPF_ERRNO__INVSEQ]: 'bad netlink sequence (LIBBPF_ERRNO__INVSEQ)',
  [LIBBPF_ERRNO__NLPARSE]: 'netlink parse error (LIBBPF_ERRNO__NLPARSE)',
};

/** An error number from libbpf in words: its own codes (4000+) or the errno name. */
export function libbpfErrorName(n: number): string {
  return LIBBPF_ERRORS[n] ?? errnoName(n);
}

const LOG_SIZE = 4 << 20;
/** How many lines of the verifier log an E_VERIFIER message shows. */
const LOG_TAIL = 12;

export interface OpenOptions {
  /** Values for `const volatile` globals (in .rodata), by variable name. */
  rodata?: Record<string, Buffer>;
  /** Pinned or shared maps (an Fd, or a map of another loaded object) to use instead of creating new ones, by map name. */
  reuseMaps?: Record<string, { readonly fd: number }>;
  /** max_entries to set before load, by map name (a map the loader sizes, e.g. an output array). */
  maxEntries?: Record<string, number>;
  /**
   * Load only these programs (others are kept out of the kernel, so that one
   * the kernel cannot take does not spoil them). Each must be in the object:
   * checked before anything is loaded (E_NOT_FOUND).
   */
  programs?: string[];
  /** Each program of `programs` must have a section starting so (E_BAD_INPUT before load). */
  section?: string;
}

/**
 * An opened and loaded BPF object file. Throws E_LOAD when the file cannot be
 * opened or relocated, E_VERIFIER (with `.log`) when the kernel rejects a
 * program. Needs CAP_BPF (and CAP_PERFMON for tracing programs).
 */
export class BpfObject {
  #obj: Ptr;
  readonly path: string;
  readonly programs = new Map<string, BpfProgram>();
  readonly maps = new Map<string, BpfMap>();

  private constructor(obj: Ptr, path: string) {
    this.#obj = obj;
    this.path = path;
  }

  static load(path: string, opts: OpenOptions = {}): BpfObject {
    const logBuf = Buffer.alloc(LOG_SIZE);
    // struct bpf_object_open_opts of the installed libbpf (layout in abi.ts, checked against
    // bpf/libbpf.h at build time): sz is its sizeof; the kernel log goes to our buffer.
    const O = OBJECT_OPEN_OPTS;
    const oo = Buffer.alloc(O.size);
    oo.writeBigUInt64LE(BigInt(O.size), O.sz.off);
    oo.writeBigUInt64LE(koffi.address(logBuf), O.kernelLogBuf.off);
    oo.writeBigUInt64LE(BigInt(LOG_SIZE), O.kernelLogSize.off);
    captured = [];
    try {
      // Paths are byte strings (latin1), as everywhere in cgview.
      const obj = objOpenFile(cstr(path), oo) as Ptr;
      if (!obj) {
        const e = errno();
        throw new CgviewError('E_LOAD', `open BPF object ${path}: ${libbpfErrorName(e)}`, {
          errno: e,
          path,
          log: captured.join('\n'),
        });
      }
      const self = new BpfObject(obj, path);
      try {
        self.#prepare(opts, logBuf);
      } catch (e) {
        self.close();
        throw e;
      }
      return self;
    } finally {
      captured = null;
    }
  }

  #prepare(opts: OpenOptions, logBuf: Buffer): void {
    const sections = new Map<string, string>();
    for (let p = objNextProg(this.#obj, null) as Ptr; p; p = objNextProg(this.#obj, p) as Ptr) {
      const name = progName(p) as string;
      sections.set(name, progSectionName(p) as string);
      if (opts.programs && !opts.programs.includes(name)) progSetAutoload(p, false);
    }
    // Refused before anything reaches the kernel: nothing to undo.
    for (const name of opts.programs ?? []) {
      const sec = sections.get(name);
      if (sec === undefined)
        throw new CgviewError(
          'E_NOT_FOUND',
          `program ${name} not in ${this.path} (has: ${[...sections.keys()].join(', ') || 'none'})`,
          { path: this.path },
        );
      if (opts.section !== undefined && !sec.startsWith(opts.section))
        throw new CgviewError(
          'E_BAD_INPUT',
          `program ${name} of ${this.path} is SEC("${sec}"), not ${opts.section}`,
          { path: this.path },
        );
    }
    if (opts.rodata) this.#setRodata(opts.rodata);
    for (const [name, fd] of Object.entries(opts.reuseMaps ?? {})) {
      const m = objFindMap(this.#obj, name) as Ptr;
      if (!m) throw new CgviewError('E_NOT_FOUND', `map ${name} not in ${this.path}`, { path: this.path });
      const r = mapReuseFd(m, fd.fd) as number;
      if (r < 0) throw sysError(`reuse map ${name} for`, this.path, -r);
    }
    for (const [name, n] of Object.entries(opts.maxEntries ?? {})) {
      const m = objFindMap(this.#obj, name) as Ptr;
      if (!m) throw new CgviewError('E_NOT_FOUND', `map ${name} not in ${this.path}`, { path: this.path });
      const r = mapSetMaxEntries(m, n) as number;
      if (r < 0) throw sysError(`set max_entries of map ${name} in`, this.path, -r);
    }
    const r = objLoad(this.#obj) as number;
    if (r < 0) {
      const log = logBuf.toString('utf8', 0, Math.max(0, logBuf.indexOf(0))).trimEnd();
      const lines = captured ?? [];
      if (log.length > 0) {
        const tail = log.split('\n').slice(-LOG_TAIL).join('\n');
        // libbpf names the program whose load failed: "prog 'NAME': BPF program load failed".
        const failed = lines
          .map((l) => /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(l)?.[1])
          .find((n) => n !== undefined);
        const which = failed ? `program ${failed}` : 'a program';
        throw new CgviewError('E_VERIFIER', `load ${this.path}: the verifier rejected ${which}:\n${tail}`, {
          errno: -r,
          path: this.path,
          log,
          hint: 'run with --verbose for the whole verifier log',
        });
      }
      if (-r === EPERM)
        throw new CgviewError('E_PERMISSION', `load ${this.path}: EPERM`, {
          errno: EPERM,
          path: this.path,
          log: lines.join('\n'),
          hint: 'loading BPF programs needs root (CAP_BPF and CAP_PERFMON)',
        });
      throw new CgviewError(
        'E_LOAD',
        `load ${this.path}: ${libbpfErrorName(-r)}\n${lines.slice(-LOG_TAIL).join('\n')}`,
        {
          errno: -r,
          path: this.path,
          log: lines.join('\n'),
        },
      );
    }
    for (let p = objNextProg(this.#obj, null) as Ptr; p; p = objNextProg(this.#obj, p) as Ptr) {
      const fd = progFd(p) as number;
      if (fd < 0) continue; // not loaded (autoload off)
      const name = progName(p) as string;
      this.programs.set(name, new BpfProgram(this, p, name, progSectionName(p) as string));
    }
    for (let m = objNextMap(this.#obj, null) as Ptr; m; m = objNextMap(this.#obj, m) as Ptr) {
      const name = mapName(m) as string;
      this.maps.set(name, new BpfMap(mapFd(m) as number, name, this));
    }
  }

  /** Writes `const volatile` globals: walks the BTF DATASEC ".rodata" for each variable's offset. */
  #setRodata(values: Record<string, Buffer>): void {
    let rodata: Ptr = 0n;
    for (let m = objNextMap(this.#obj, null) as Ptr; m; m = objNextMap(this.#obj, m) as Ptr) {
      if ((mapName(m) as string).endsWith('.rodata')) rodata = m;
    }
    const btf = objBtf(this.#obj) as Ptr;
    if (!rodata || !btf)
      throw new CgviewError('E_NOT_FOUND', `${this.path} has no .rodata to set`, { path: this.path });
    const size = [0];
    const init = mapInitialValue(rodata, size) as Ptr;
    const data = copyBytes(init, size[0]!);
    const secId = btfFindByNameKind(btf, '.rodata', BTF_KIND_DATASEC) as number;
    if (secId < 0)
      throw new CgviewError('E_NOT_FOUND', `${this.path}: no BTF for .rodata`, { path: this.path });
    // struct btf_type, then vlen * struct btf_var_secinfo (layouts in abi.ts)
    const T = BTF_TYPE;
    const V = BTF_VAR_SECINFO;
    const sec = btfTypeById(btf, secId) as Ptr;
    const vlen = btfInfoVlen(copyBytes(sec, T.size).readUInt32LE(T.info.off));
    const vars = copyBytes(sec + BigInt(T.size), V.size * vlen);
    const offsets = new Map<string, { offset: number; size: number }>();
    for (let i = 0; i < vlen; i++) {
      const at = i * V.size;
      const v = btfTypeById(btf, vars.readUInt32LE(at + V.type.off)) as Ptr;
      const name = btfNameByOffset(btf, copyBytes(v, T.size).readUInt32LE(T.nameOff.off)) as string;
      offsets.set(name, {
        offset: vars.readUInt32LE(at + V.offset.off),
        size: vars.readUInt32LE(at + V.varSize.off),
      });
    }
    for (const [name, value] of Object.entries(values)) {
      const at = offsets.get(name);
      if (!at)
        throw new CgviewError('E_NOT_FOUND', `${this.path} has no const volatile ${name}`, {
          path: this.path,
        });
      if (value.length !== at.size)
        throw new CgviewError('E_BAD_INPUT', `${name} is ${at.size} bytes, got ${value.length}`, {
          path: this.path,
        });
      value.copy(data, at.offset);
    }
    const r = mapSetInitialValue(rodata, data, data.length) as number;
    if (r < 0) throw sysError('set .rodata of', this.path, -r);
  }

  /** A loaded program by name. Throws E_NOT_FOUND (listing the programs there are). */
  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (!p)
      throw new CgviewError(
        'E_NOT_FOUND',
        `program ${name} not in ${this.path} (has: ${[...this.programs.keys()].join(', ')})`,
        {
          path: this.path,
        },
      );
    return p;
  }

  /** A map of the object by name. Throws E_NOT_FOUND. */
  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new CgviewError('E_NOT_FOUND', `map ${name} not in ${this.path}`, { path: this.path });
    return m;
  }

  /** @internal */
  get ptr(): Ptr {
    if (!this.#obj) throw new Error(`BPF object ${this.path} is closed`);
    return this.#obj;
  }

  get closed(): boolean {
    return this.#obj === 0n;
  }

  /** Unloads what no link or pin still holds. Idempotent. */
  close(): void {
    if (!this.#obj) return;
    objClose(this.#obj);
    this.#obj = 0n;
  }
}

/** One loaded program of a BpfObject (its fd belongs to the object). */
export class BpfProgram {
  constructor(
    readonly object: BpfObject,
    readonly ptr: Ptr,
    readonly name: string,
    readonly section: string,
  ) {}

  get fd(): number {
    void this.object.ptr; // throws when the object was closed
    return progFd(this.ptr) as number;
  }

  /** Kernel info of the program (id, tag, run counts). Throws E_SYSCALL. */
  info(): ProgInfo {
    return progInfo(this.fd);
  }

  /**
   * Attaches a program whose section says where (tp_btf/..., fentry/...).
   * The link lives while the returned Link is open or pinned.
   */
  attach(): Link {
    const l = progAttach(this.ptr) as Ptr;
    if (!l) throw sysError(`attach ${this.name} (${this.section})`, undefined, errno());
    // Own the fd ourselves: once disconnected, bpf_link__destroy frees libbpf's
    // struct without closing the fd.
    const fd = linkFd(l) as number;
    linkDisconnect(l);
    linkDestroy(l);
    return new Link(new Fd(fd, `link ${this.name}`));
  }

  /** Creates an `iter/cgroup` link for one cgroup (Linux 6.1+); see linkCreateCgroupIter. */
  cgroupIter(target: CgroupTarget, order: CgroupIterOrder = 'self'): Link {
    return new Link(linkCreateCgroupIter(this.fd, target, order));
  }
}

/** A BPF link held by an fd. Pin it to keep it beyond close(). */
export class Link {
  constructor(readonly fd: Fd) {}

  /**
   * Pins the link as `name` in bpffs directory `dir` (see objPinAt; Linux 6.5+).
   * Throws E_EXISTS when the name is taken, E_SYSCALL (EPERM, EXDEV) when `dir` is not bpffs.
   */
  pinAt(dir: Fd, name: string): void {
    objPinAt(this.fd, dir, name);
  }

  /** Runs an iterator link once and returns what it printed (BPF_ITER_CREATE + read, Linux 5.8+). Throws E_SYSCALL. */
  read(): Buffer {
    const it = iterCreate(this.fd);
    try {
      return readAll(it);
    } finally {
      it.close();
    }
  }

  close(): void {
    this.fd.close();
  }
}

/** A BPF map by fd. Keys and values are raw bytes (decoders live with each view). */
export class BpfMap {
  readonly #fd: number | Fd;
  readonly name: string;
  readonly #object: BpfObject | undefined;
  #info: MapInfo | undefined;

  /** A map of a loaded object (its fd belongs to the object), or one held by its own Fd (e.g. a pinned map). */
  constructor(fd: number | Fd, name: string, object?: BpfObject) {
    this.#fd = fd;
    this.name = name;
    this.#object = object;
  }

  /** Throws once the owning object or Fd is closed, so a reused fd number is never touched. */
  get fd(): number {
    if (this.#object) {
      void this.#object.ptr;
      return this.#fd as number;
    }
    return typeof this.#fd === 'number' ? this.#fd : this.#fd.fd;
  }

  /** Kernel info of the map (type, sizes, id), read once. Throws E_SYSCALL. */
  info(): MapInfo {
    this.#info ??= mapInfo(this.fd);
    return this.#info;
  }

  /** Pins the map as `name` in bpffs directory `dir`. Throws E_EXISTS, E_SYSCALL. */
  pinAt(dir: Fd, name: string): void {
    objPinAt(this.fd, dir, name);
  }

  /** The value for `key`, or null when absent. Throws E_SYSCALL. */
  lookup(key: Buffer): Buffer | null {
    const v = Buffer.alloc(this.info().valueSize);
    if ((bpfMapLookup(this.fd, key, v) as number) < 0) {
      const e = errno();
      if (e === ENOENT) return null;
      throw sysError(`lookup in map ${this.name}`, undefined, e);
    }
    return v;
  }

  /** Sets `key` to `value` (flags: BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2). Throws E_SYSCALL. */
  update(key: Buffer, value: Buffer, flags = 0): void {
    if ((bpfMapUpdate(this.fd, key, value, flags) as number) < 0)
      throw sysError(`update map ${this.name}`, undefined, errno());
  }

  /** Deletes `key`; returns false when it was not there. Throws E_SYSCALL. */
  delete(key: Buffer): boolean {
    if ((bpfMapDelete(this.fd, key) as number) < 0) {
      const e = errno();
      if (e === ENOENT) return false;
      throw sysError(`delete from map ${this.name}`, undefined, e);
    }
    return true;
  }

  /** Every key, by BPF_MAP_GET_NEXT_KEY. Throws E_SYSCALL. */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    const ks = this.info().keySize;
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(ks);
      if ((bpfMapNextKey(this.fd, prev, next) as number) < 0) {
        const e = errno();
        if (e === ENOENT) return out;
        throw sysError(`iterate map ${this.name}`, undefined, e);
      }
      out.push(next);
      prev = next;
    }
  }

  /**
   * All entries. Uses BPF_MAP_LOOKUP_BATCH where the map type allows it and
   * falls back to key-by-key lookups elsewhere.
   */
  entries(): Array<[Buffer, Buffer]> {
    const { keySize, valueSize, maxEntries } = this.info();
    const batch = Math.max(1, Math.min(maxEntries, 4096));
    const keys = Buffer.alloc(keySize * batch);
    const values = Buffer.alloc(valueSize * batch);
    const inBatch = Buffer.alloc(Math.max(8, keySize));
    const outBatch = Buffer.alloc(Math.max(8, keySize));
    const out: Array<[Buffer, Buffer]> = [];
    let first = true;
    for (;;) {
      const count = [batch];
      const r = bpfMapLookupBatch(
        this.fd,
        first ? null : inBatch,
        outBatch,
        keys,
        values,
        count,
        null,
      ) as number;
      const e = r < 0 ? errno() : 0;
      if (r < 0 && e !== ENOENT) {
        // the map type has no batch lookup: EINVAL, EOPNOTSUPP, or the kernel-internal ENOTSUPP
        if (first && (e === EINVAL || e === EOPNOTSUPP || e === ENOTSUPP)) return this.#entriesOneByOne();
        throw sysError(`batch lookup in map ${this.name}`, undefined, e);
      }
      for (let i = 0; i < count[0]!; i++)
        out.push([
          Buffer.from(keys.subarray(i * keySize, (i + 1) * keySize)),
          Buffer.from(values.subarray(i * valueSize, (i + 1) * valueSize)),
        ]);
      if (e === ENOENT) return out; // no more entries
      outBatch.copy(inBatch);
      first = false;
    }
  }

  /**
   * Values of keys 0 .. n-1 of an ARRAY map into `values` (n * value size
   * bytes, reused by the caller), by one BPF_MAP_LOOKUP_BATCH (Linux 5.6+)
   * when the kernel copies all n at once, more calls otherwise. `keys` is
   * scratch of n * 4 bytes. Returns the number of values copied (n unless
   * the map is smaller). Throws E_SYSCALL.
   */
  lookupArrayBatch(n: number, keys: Buffer, values: Buffer): number {
    const { valueSize, maxEntries } = this.info();
    n = Math.min(n, maxEntries);
    if (values.length < n * valueSize || keys.length < n * 4)
      throw new CgviewError(
        'E_BAD_INPUT',
        `lookupArrayBatch: buffers too small for ${n} values of map ${this.name}`,
      );
    const inBatch = Buffer.alloc(8);
    const outBatch = Buffer.alloc(8);
    let done = 0;
    while (done < n) {
      const count = [n - done];
      const r = bpfMapLookupBatch(
        this.fd,
        done === 0 ? null : inBatch,
        outBatch,
        keys.subarray(done * 4),
        values.subarray(done * valueSize),
        count,
        null,
      ) as number;
      const e = r < 0 ? errno() : 0;
      if (r < 0 && e !== ENOENT) throw sysError(`batch lookup in map ${this.name}`, undefined, e);
      done += count[0]!;
      if (e === ENOENT || count[0] === 0) break; // the array ends
      outBatch.copy(inBatch);
    }
    return done;
  }

  #entriesOneByOne(): Array<[Buffer, Buffer]> {
    const out: Array<[Buffer, Buffer]> = [];
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) out.push([k, v]);
    }
    return out;
  }

  /** Closes the map's own Fd (maps of a BpfObject close with it). Idempotent. */
  close(): void {
    if (typeof this.#fd !== 'number') this.#fd.close();
  }
}

// --- map compatibility ------------------------------------------------------

const btfLoadFromKernelById = libbpf.func('void *btf__load_from_kernel_by_id(uint32_t id)');
const btfFree = libbpf.func('void btf__free(void *btf)');

/**
 * What a map must match to be reused in place of a new one (as cilium/ebpf's
 * MapSpec.Compatible): type, key and value sizes, max_entries, flags, and the
 * layout of its value type from the map's BTF (member names, offsets and
 * types, so that a same-size layout change is not taken for the old one).
 */
export interface MapSpec {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** The value type as text from the map's BTF ('' when the map has none). */
  valueLayout: string;
}

/** The spec of a map held by `fd` (pinned, or of a loaded object). Throws E_SYSCALL. */
export function mapSpec(fd: Fd | number): MapSpec {
  const i = mapInfo(fd);
  const raw = objInfo(fd, MAP_INFO_LEN, 'map');
  const btfId = raw.readUInt32LE(MAP_INFO.btfId.off);
  const valueTypeId = raw.readUInt32LE(MAP_INFO.btfValueTypeId.off);
  return {
    type: i.type,
    keySize: i.keySize,
    valueSize: i.valueSize,
    maxEntries: i.maxEntries,
    flags: i.flags,
    valueLayout: btfId && valueTypeId ? kernelBtfLayout(btfId, valueTypeId) : '',
  };
}

/** Why two map specs differ, or null when a map of spec `have` can stand for one of `want`. */
export function mapSpecMismatch(have: MapSpec, want: MapSpec): string | null {
  for (const k of ['type', 'keySize', 'valueSize', 'maxEntries', 'flags'] as const)
    if (have[k] !== want[k]) return `${k} ${have[k]}, want ${want[k]}`;
  if (have.valueLayout !== want.valueLayout) return 'value layout differs';
  return null;
}

function kernelBtfLayout(btfId: number, typeId: number): string {
  const btf = btfLoadFromKernelById(btfId) as Ptr;
  if (!btf) throw sysError(`load BTF id ${btfId}`, undefined, errno());
  try {
    return btfLayout(btf, typeId, 0);
  } finally {
    btfFree(btf);
  }
}

/** A type of a BTF as text: names, sizes, member offsets; pointers are not followed. */
function btfLayout(btf: Ptr, id: number, depth: number): string {
  if (id === 0) return 'void';
  if (depth > 16) return '...';
  // struct btf_type then kind-specific data (layouts in abi.ts)
  const T = BTF_TYPE;
  const t = btfTypeById(btf, id) as Ptr;
  if (!t) return `?${id}`;
  const head = copyBytes(t, T.size);
  const name = btfNameByOffset(btf, head.readUInt32LE(T.nameOff.off)) as string;
  const info = head.readUInt32LE(T.info.off);
  const kind = btfInfoKind(info);
  const vlen = btfInfoVlen(info);
  const sizeOrType = head.readUInt32LE(T.sizeOrType.off);
  const after = t + BigInt(T.size);
  switch (kind) {
    case BTF_KIND_INT:
      // one u32 follows: encoding, bit offset and bit count, shown as it is
      return `int ${name}:${sizeOrType}:${copyBytes(after, 4).readUInt32LE(0).toString(16)}`;
    case BTF_KIND_PTR:
      return 'ptr';
    case BTF_KIND_ARRAY: {
      const A = BTF_ARRAY;
      const a = copyBytes(after, A.size);
      return `[${a.readUInt32LE(A.nelems.off)}]${btfLayout(btf, a.readUInt32LE(A.type.off), depth + 1)}`;
    }
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      // offset: the bit offset, or bitfield size << 24 | offset
      const M = BTF_MEMBER;
      const ms = copyBytes(after, M.size * vlen);
      const members: string[] = [];
      for (let i = 0; i < vlen; i++) {
        const at = i * M.size;
        const mname = btfNameByOffset(btf, ms.readUInt32LE(at + M.nameOff.off)) as string;
        members.push(
          `${mname}@${ms.readUInt32LE(at + M.offset.off)}:${btfLayout(btf, ms.readUInt32LE(at + M.type.off), depth + 1)}`,
        );
      }
      return `${kind === BTF_KIND_STRUCT ? 'struct' : 'union'} ${name}:${sizeOrType}{${members.join(',')}}`;
    }
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
      return `${kind} ${name}:${sizeOrType}`;
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return btfLayout(btf, sizeOrType, depth + 1);
    default:
      return `kind${kind} ${name}`;
  }
}
