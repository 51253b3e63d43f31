/**
 * The view kit's build: `cgview build FILE.bpf.c` and the on-the-fly build
 * of `cgview pin ./x.bpf.c:prog`. Compiles with the flags every view needs
 * (`-g -O2 -target bpf -D__TARGET_ARCH_<arch> -Wall`) against the kit's
 * headers (bpf/include) and a `vmlinux.h` made once per kernel BTF and
 * cached; describes an object (its programs with their sections, its maps)
 * from the ELF file alone, without loading anything (no privileges needed).
 *
 * The build always runs in the CLI, with the rights of whoever runs it, never
 * in the daemon: the daemon (root) must not run a compiler on a file a user
 * controls. It receives the built object like any other `file.bpf.o:prog`
 * and copies it into its object store (objstore.ts). docs/writing-views.md.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CgviewError } from '../errors.js';

// --- describing an object (pure) -------------------------------------------

export interface ObjectProgram {
  name: string;
  /** The ELF section, i.e. the program type and attach point: `iter/cgroup`, `tp_btf/sched_switch`. */
  section: string;
  /** `view`: an iter/cgroup program (a view); `collector`: anything else, loaded and attached by the daemon. */
  kind: 'view' | 'collector';
}

export interface ObjectMap {
  /** As declared (`.bss`, `.rodata`, `.data` for globals). */
  name: string;
  /** BPF_MAP_TYPE_* in lower case without the prefix (`cgrp_storage`), when the BTF says it. */
  type?: string;
  maxEntries?: number;
  /** A map libbpf makes for global variables (.bss, .data, .rodata, .kconfig). */
  internal: boolean;
}

export interface ObjectDescription {
  programs: ObjectProgram[];
  maps: ObjectMap[];
  /** Names of the `const volatile` globals (set before load). */
  rodata: string[];
}

/** enum bpf_map_type (include/uapi/linux/bpf.h), by value. */
const MAP_TYPES = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
  'arena',
];

const EM_BPF = 247;
const SHT_SYMTAB = 2;
const SHF_EXECINSTR = 4;
const STT_FUNC = 2;

interface Section {
  name: string;
  type: number;
  flags: bigint;
  offset: number;
  size: number;
  link: number;
}

function notBpf(why: string): CgviewError {
  return new CgviewError('E_LOAD', `not a BPF ELF object: ${why}`);
}

/** A view object as the kit describes it: programs, maps and rodata from the ELF and its BTF. Throws E_LOAD. */
export function describeObject(buf: Buffer): ObjectDescription {
  try {
    return describeElf(buf);
  } catch (e) {
    // A damaged file reads past a buffer somewhere: say so, as for any other malformed object.
    if (e instanceof RangeError) throw notBpf(`damaged (${e.message})`);
    throw e;
  }
}

function describeElf(buf: Buffer): ObjectDescription {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw notBpf('no ELF header');
  if (buf[4] !== 2 || buf[5] !== 1) throw notBpf('not 64-bit little-endian');
  if (buf.readUInt16LE(0x12) !== EM_BPF) throw notBpf(`machine ${buf.readUInt16LE(0x12)}, not EM_BPF`);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > buf.length) throw notBpf('section headers out of bounds');
  const raw: Array<Omit<Section, 'name'> & { nameOff: number }> = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    const s = {
      nameOff: buf.readUInt32LE(at),
      type: buf.readUInt32LE(at + 4),
      flags: buf.readBigUInt64LE(at + 8),
      offset: Number(buf.readBigUInt64LE(at + 24)),
      size: Number(buf.readBigUInt64LE(at + 32)),
      link: buf.readUInt32LE(at + 40),
    };
    if (s.type !== 8 /* SHT_NOBITS */ && s.offset + s.size > buf.length)
      throw notBpf(`section ${i} out of bounds`);
    raw.push(s);
  }
  const strtab = raw[shstrndx];
  if (!strtab) throw notBpf('no section name table');
  const cstr = (off: number, base: number, end: number) => {
    const from = base + off;
    if (from >= end) return '';
    const nul = buf.indexOf(0, from);
    return buf.toString('latin1', from, nul < 0 || nul > end ? end : nul);
  };
  const sections: Section[] = raw.map((s) => ({
    ...s,
    name: cstr(s.nameOff, strtab.offset, strtab.offset + strtab.size),
  }));

  const programs: ObjectProgram[] = [];
  const mapSymbols: string[] = [];
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab) {
    const str = sections[symtab.link];
    if (!str) throw notBpf('symbol table without strings');
    const mapsIdx = sections.findIndex((s) => s.name === '.maps');
    for (let at = symtab.offset; at + 24 <= symtab.offset + symtab.size; at += 24) {
      const name = cstr(buf.readUInt32LE(at), str.offset, str.offset + str.size);
      const info = buf[at + 4]!;
      const shndx = buf.readUInt16LE(at + 6);
      const sec = sections[shndx];
      if (!sec || !name) continue;
      if ((info & 0xf) === STT_FUNC && sec.flags & BigInt(SHF_EXECINSTR) && sec.name !== '.text')
        programs.push({
          name,
          section: sec.name,
          kind: sec.name.startsWith('iter/cgroup') ? 'view' : 'collector',
        });
      else if (shndx === mapsIdx && mapsIdx > 0) mapSymbols.push(name);
    }
  }
  const btfSec = sections.find((s) => s.name === '.BTF');
  const btf = btfSec ? parseBtf(buf.subarray(btfSec.offset, btfSec.offset + btfSec.size)) : null;
  const maps: ObjectMap[] = mapSymbols.map((name) => ({ name, internal: false, ...btf?.mapDefs.get(name) }));
  for (const s of sections)
    if (/^\.(bss|data|rodata|kconfig)(\..*)?$/.test(s.name) && !/^\.rodata\.str/.test(s.name) && s.size > 0)
      maps.push({ name: s.name, internal: true });
  return { programs, maps, rodata: btf?.datasecVars.get('.rodata') ?? [] };
}

// BTF kinds (include/uapi/linux/btf.h)
const K_INT = 1;
const K_PTR = 2;
const K_ARRAY = 3;
const K_STRUCT = 4;
const K_UNION = 5;
const K_ENUM = 6;
const K_TYPEDEF = 8;
const K_VOLATILE = 9;
const K_CONST = 10;
const K_RESTRICT = 11;
const K_FUNC_PROTO = 13;
const K_VAR = 14;
const K_DATASEC = 15;
const K_DECL_TAG = 17;
const K_TYPE_TAG = 18;
const K_ENUM64 = 19;

interface BtfType {
  name: string;
  kind: number;
  vlen: number;
  sizeOrType: number;
  /** Offset of the kind-specific data that follows struct btf_type. */
  extra: number;
}

/** The BTF of an object: map definitions (type, max_entries) of `.maps`, and the variables of each DATASEC. */
function parseBtf(b: Buffer): {
  mapDefs: Map<string, { type?: string; maxEntries?: number }>;
  datasecVars: Map<string, string[]>;
} | null {
  if (b.length < 24 || b.readUInt16LE(0) !== 0xeb9f) return null;
  const hdrLen = b.readUInt32LE(4);
  const typeOff = hdrLen + b.readUInt32LE(8);
  const typeLen = b.readUInt32LE(12);
  const strOff = hdrLen + b.readUInt32LE(16);
  const strLen = b.readUInt32LE(20);
  if (typeOff + typeLen > b.length || strOff + strLen > b.length) return null;
  const name = (off: number) => {
    if (off >= strLen) return '';
    const nul = b.indexOf(0, strOff + off);
    return b.toString('latin1', strOff + off, nul < 0 ? strOff + strLen : nul);
  };
  const types: (BtfType | undefined)[] = [undefined]; // id 0 is void
  for (let at = typeOff; at + 12 <= typeOff + typeLen; ) {
    const info = b.readUInt32LE(at + 4);
    const t: BtfType = {
      name: name(b.readUInt32LE(at)),
      kind: (info >>> 24) & 0x1f,
      vlen: info & 0xffff,
      sizeOrType: b.readUInt32LE(at + 8),
      extra: at + 12,
    };
    types.push(t);
    const per: Record<number, number> = {
      [K_INT]: 4,
      [K_ARRAY]: 12,
      [K_STRUCT]: 12 * t.vlen,
      [K_UNION]: 12 * t.vlen,
      [K_ENUM]: 8 * t.vlen,
      [K_FUNC_PROTO]: 8 * t.vlen,
      [K_VAR]: 4,
      [K_DATASEC]: 12 * t.vlen,
      [K_DECL_TAG]: 4,
      [K_ENUM64]: 12 * t.vlen,
    };
    at = t.extra + (per[t.kind] ?? 0);
  }
  const skipMods = (id: number): BtfType | undefined => {
    for (let i = 0; i < 32; i++) {
      const t = types[id];
      if (!t || ![K_TYPEDEF, K_VOLATILE, K_CONST, K_RESTRICT, K_TYPE_TAG].includes(t.kind)) return t;
      id = t.sizeOrType;
    }
    return undefined;
  };
  // __uint(name, N) is `int (*name)[N]`: a pointer to an array of N elements.
  const uintMember = (id: number): number | undefined => {
    const p = skipMods(id);
    if (p?.kind !== K_PTR) return undefined;
    const a = skipMods(p.sizeOrType);
    return a?.kind === K_ARRAY ? b.readUInt32LE(a.extra + 8) : undefined;
  };
  const mapDefs = new Map<string, { type?: string; maxEntries?: number }>();
  const datasecVars = new Map<string, string[]>();
  for (const t of types) {
    if (t?.kind !== K_DATASEC) continue;
    const vars: string[] = [];
    for (let i = 0; i < t.vlen; i++) {
      const v = types[b.readUInt32LE(t.extra + 12 * i)];
      if (v?.kind !== K_VAR) continue;
      vars.push(v.name);
      if (t.name !== '.maps') continue;
      const def = skipMods(v.sizeOrType);
      if (def?.kind !== K_STRUCT) continue;
      const out: { type?: string; maxEntries?: number } = {};
      for (let m = 0; m < def.vlen; m++) {
        const mname = name(b.readUInt32LE(def.extra + 12 * m));
        const n = uintMember(b.readUInt32LE(def.extra + 12 * m + 4));
        if (n === undefined) continue;
        if (mname === 'type') out.type = MAP_TYPES[n] ?? String(n);
        if (mname === 'max_entries') out.maxEntries = n;
      }
      mapDefs.set(v.name, out);
    }
    datasecVars.set(t.name, vars);
  }
  return { mapDefs, datasecVars };
}

/** Programs and maps of an object file (read whole, bounded). Throws E_NOT_FOUND, E_LOAD. */
export function describeObjectFile(file: string, maxBytes = 64 << 20): ObjectDescription {
  let buf: Buffer;
  try {
    const st = fs.statSync(file);
    if (st.size > maxBytes) throw new CgviewError('E_LOAD', `${file} is larger than ${maxBytes} bytes`);
    buf = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof CgviewError) throw e;
    throw new CgviewError('E_NOT_FOUND', `${file}: ${(e as NodeJS.ErrnoException).code}`, { cause: e });
  }
  try {
    return describeObject(buf);
  } catch (e) {
    if (e instanceof CgviewError) throw new CgviewError(e.code, `${file}: ${e.message}`, { path: file });
    throw e;
  }
}

// --- where things are ---------------------------------------------------------

/** The repository (or installed package) root: dist/src/views/ is three levels below it. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

/** The kit's headers: `#include <cgview/…>` finds them here. */
export function kitIncludeDir(): string {
  return path.join(packageRoot(), 'bpf/include');
}

/**
 * The build cache: $CGVIEW_CACHE_DIR, else /var/cache/cgview for root (the
 * daemon takes an object only from directories nobody but root can write)
 * and $XDG_CACHE_HOME/cgview or ~/.cache/cgview for everyone else.
 */
export function buildCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['CGVIEW_CACHE_DIR']) return path.resolve(env['CGVIEW_CACHE_DIR']);
  if (process.geteuid?.() === 0) return '/var/cache/cgview';
  const xdg = env['XDG_CACHE_HOME'];
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'cgview');
}

/** __TARGET_ARCH_<x> for bpf_tracing.h, from the machine that builds (Node's process.arch). */
export function targetArch(arch: string = process.arch): string {
  const m: Record<string, string> = {
    x64: 'x86',
    ia32: 'x86',
    arm64: 'arm64',
    arm: 'arm',
    s390x: 's390',
    ppc64: 'powerpc',
    riscv64: 'riscv',
    loong64: 'loongarch',
    mips64el: 'mips',
  };
  const a = m[arch];
  if (!a) throw new CgviewError('E_NOT_SUPPORTED', `no BPF target architecture known for ${arch}`);
  return a;
}

/**
 * Makes (mode 0755) or checks a cache directory: it must be the caller's and
 * writable by nobody else, since what is in it is compiled code the caller
 * (root, for pins) will load. Throws E_PERMISSION.
 */
function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(dir);
  const uid = process.geteuid?.() ?? st.uid;
  if (!st.isDirectory() || st.uid !== uid || st.mode & 0o022)
    throw new CgviewError(
      'E_PERMISSION',
      `build cache ${dir} is not a directory that only uid ${uid} can write (owner ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`,
      { path: dir, hint: 'remove it, or set CGVIEW_CACHE_DIR to a directory of your own' },
    );
}

/** Whether `file` is a regular file of the caller's that nobody else can write (false when absent). Throws E_PERMISSION. */
function ownFile(file: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return false;
  }
  const uid = process.geteuid?.() ?? st.uid;
  if (!st.isFile() || st.uid !== uid || st.mode & 0o022)
    throw new CgviewError('E_PERMISSION', `build cache: ${file} is not a file only uid ${uid} can write`, {
      path: file,
      hint: 'remove it (it is made again)',
    });
  return true;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes `data` to `dest` atomically (temporary file in the same directory, then rename). */
function writeAtomic(dest: string, data: Buffer | string, mode = 0o644): void {
  const tmp = path.join(path.dirname(dest), `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export interface BuildOptions {
  /** Where the object goes; default: the build cache (by content). */
  out?: string;
  cacheDir?: string;
  clang?: string;
  bpftool?: string;
  /** Kernel BTF the vmlinux.h is made from. */
  btf?: string;
  /** More include directories (after the kit's). */
  include?: string[];
}

/** Runs a tool; E_BUILD when it cannot be started. */
function tool(cmd: string, args: string[], what: string, hint: string) {
  const r = spawnSync(cmd, args, { encoding: 'buffer', maxBuffer: 256 << 20 });
  if (r.error)
    throw new CgviewError(
      'E_BUILD',
      `${what}: cannot run ${cmd}: ${(r.error as NodeJS.ErrnoException).code}`,
      {
        cause: r.error,
        hint,
      },
    );
  return r;
}

/**
 * The directory holding a `vmlinux.h` for the running kernel's BTF (made
 * once with bpftool, cached by the BTF's sha256). Throws E_BUILD, E_NOT_FOUND.
 */
export function vmlinuxHeaderDir(opts: BuildOptions = {}): string {
  const btf = opts.btf ?? '/sys/kernel/btf/vmlinux';
  let data: Buffer;
  try {
    data = fs.readFileSync(btf);
  } catch (e) {
    throw new CgviewError('E_NOT_FOUND', `kernel BTF ${btf}: ${(e as NodeJS.ErrnoException).code}`, {
      cause: e,
      hint: 'views need a kernel built with CONFIG_DEBUG_INFO_BTF; cgview doctor checks it',
    });
  }
  const root = opts.cacheDir ?? buildCacheDir();
  const dir = path.join(root, 'vmlinux', sha256(data).slice(0, 32));
  const header = path.join(dir, 'vmlinux.h');
  // A header someone else could have written would be compiled into the view: checked each time.
  ensurePrivateDir(root);
  ensurePrivateDir(path.join(root, 'vmlinux'));
  ensurePrivateDir(dir);
  if (ownFile(header)) return dir;
  const bpftool = opts.bpftool ?? findTool('bpftool', ['/usr/sbin/bpftool', '/sbin/bpftool']);
  const r = tool(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], 'make vmlinux.h', 'install bpftool');
  if (r.status !== 0)
    throw new CgviewError('E_BUILD', `make vmlinux.h: bpftool failed:\n${r.stderr.toString('utf8').trim()}`);
  writeAtomic(header, r.stdout);
  return dir;
}

function findTool(name: string, fallbacks: string[]): string {
  for (const d of (process.env['PATH'] ?? '').split(':'))
    if (d && fs.existsSync(path.join(d, name))) return path.join(d, name);
  return fallbacks.find((f) => fs.existsSync(f)) ?? name;
}

/** The clang command line of a view (without -c/-o): what `cgview build` runs. */
export function clangFlags(vmlinuxDir: string, include: string[] = []): string[] {
  return [
    '-g',
    '-O2',
    '-target',
    'bpf',
    `-D__TARGET_ARCH_${targetArch()}`,
    '-Wall',
    `-I${kitIncludeDir()}`,
    ...include.map((d) => `-I${d}`),
    `-I${vmlinuxDir}`,
  ];
}

/** The prerequisites of a make-style dependency file (clang -MD). */
export function parseDepFile(text: string): string[] {
  const body = text.replace(/\\\r?\n/g, ' ');
  const colon = body.search(/:(\s|$)/);
  const rest = colon < 0 ? '' : body.slice(colon + 1);
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === '\\' && i + 1 < rest.length && rest[i + 1] === ' ') {
      cur += ' ';
      i++;
    } else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

export interface BuildResult {
  /** The object made (or found in the cache). */
  object: string;
  /** True when the build cache had it (nothing was compiled). */
  cached: boolean;
  /** clang's warnings (empty when cached). */
  diagnostics: string;
  description: ObjectDescription;
}

/** The most of clang's output an E_BUILD message carries (the rest is its `log`). */
const MAX_DIAGNOSTICS = 16 << 10;

function clangVersion(clang: string): string {
  const r = tool(clang, ['--version'], 'build', 'install clang (Debian: apt-get install clang)');
  return r.stdout.toString('utf8').split('\n')[0] ?? '';
}

function fileHash(file: string): string | null {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return null;
  }
}

/**
 * Builds a view source. With `out`, the object goes there; without, into
 * the build cache, named by a hash of the source, the flags, clang's version
 * and the kernel BTF, and reused while every file the build read (clang's
 * dependency list: headers included) is unchanged. Throws E_BUILD with
 * clang's diagnostics, E_NOT_FOUND for a missing source.
 */
export function buildView(src: string, opts: BuildOptions = {}): BuildResult {
  const source = path.resolve(src);
  let text: Buffer;
  try {
    text = fs.readFileSync(source);
  } catch (e) {
    throw new CgviewError('E_NOT_FOUND', `build ${src}: ${(e as NodeJS.ErrnoException).code}`, {
      path: source,
      cause: e,
    });
  }
  const clang = opts.clang ?? findTool('clang', []);
  const vmlinuxDir = vmlinuxHeaderDir(opts);
  const flags = clangFlags(vmlinuxDir, opts.include);
  const cacheRoot = opts.cacheDir ?? buildCacheDir();
  const objects = path.join(cacheRoot, 'objects');
  // The source's own directory is part of the key: its quoted #includes are looked up there.
  const key = sha256(JSON.stringify([sha256(text), source, flags, clangVersion(clang)]));
  const cachedObj = path.join(objects, `${key}.bpf.o`);
  const manifest = path.join(objects, `${key}.deps`);
  ensurePrivateDir(cacheRoot);
  ensurePrivateDir(objects);
  if (!opts.out && ownFile(cachedObj) && ownFile(manifest)) {
    const hit = cacheHit(cachedObj, manifest);
    if (hit) return { object: cachedObj, cached: true, diagnostics: '', description: hit };
  }
  const dest = opts.out ? path.resolve(opts.out) : cachedObj;
  const tmp = path.join(
    opts.out ? path.dirname(dest) : objects,
    `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  const dep = `${tmp}.d`;
  try {
    const r = tool(
      clang,
      [...flags, '-MD', '-MF', dep, '-c', source, '-o', tmp],
      `build ${src}`,
      'install clang (Debian: apt-get install clang)',
    );
    const diagnostics = r.stderr.toString('utf8');
    if (r.status !== 0) {
      const shown =
        diagnostics.length > MAX_DIAGNOSTICS ? `…\n${diagnostics.slice(-MAX_DIAGNOSTICS)}` : diagnostics;
      throw new CgviewError('E_BUILD', `build ${src}: clang failed:\n${shown.trimEnd()}`, {
        path: source,
        log: `${clang} ${[...flags, '-c', source].join(' ')}\n${diagnostics}`,
        hint: 'fix the source; docs/writing-views.md shows a view that builds',
      });
    }
    // The content compiled must be the content hashed (no change while clang read it).
    const again = fileHash(source);
    if (again !== sha256(text))
      throw new CgviewError('E_BUILD', `build ${src}: the source changed while it was compiled`, {
        path: source,
        hint: 'build again',
      });
    const description = describeObjectFile(tmp);
    if (!opts.out) {
      const deps = parseDepFile(fs.readFileSync(dep, 'utf8'));
      const list = deps.map((d) => [path.resolve(d), fileHash(path.resolve(d))]);
      writeAtomic(manifest, `${JSON.stringify(list)}\n`);
    }
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, dest);
    return { object: dest, cached: false, diagnostics, description };
  } finally {
    fs.rmSync(tmp, { force: true });
    fs.rmSync(dep, { force: true });
  }
}

/** A cached object whose recorded dependencies are all unchanged: its description; else null. */
function cacheHit(obj: string, manifest: string): ObjectDescription | null {
  try {
    const list = JSON.parse(fs.readFileSync(manifest, 'utf8')) as Array<[string, string | null]>;
    if (!Array.isArray(list)) return null;
    for (const [file, hash] of list) if (fileHash(file) !== hash) return null;
    return describeObjectFile(obj);
  } catch {
    return null;
  }
}

/** `x.bpf.c` → `x.bpf.o` beside it (any other name: `.o` appended). */
export function defaultObjectPath(src: string): string {
  return src.endsWith('.c') ? `${src.slice(0, -2)}.o` : `${src}.o`;
}

/** A view spec whose object is a C source (`./x.bpf.c:prog`, `x.c:prog`). */
export function isSourceSpec(spec: string): boolean {
  const i = spec.lastIndexOf(':');
  return i > 0 && spec.slice(0, i).endsWith('.c');
}
