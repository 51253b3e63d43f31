/**
 * Where `cgview top` gets its samples: the trees (the daemon's public index
 * of trees beside the socket, or the one directory named on the command
 * line) and, per refresh, every view file of every tree directory and the
 * cgroup's own files in cgroupfs (cgroup.procs, cgroup.threads, cpu.stat, or
 * v1 tasks and cpuacct.usage). Nothing goes through the daemon, so top works
 * with the daemon stopped and for any user on what that user can read; what
 * it cannot read is recorded per cgroup, with the errno. As root, the
 * sched_lat files of trees that inherit it may come from one bulk walk of
 * the daemon's pinned collector maps instead (src/top/bulk.ts).
 *
 * Paths are byte strings (one char per byte), as everywhere in cgview.
 */
import fs from 'node:fs';
import { cgroupMounts, mountOf } from '../cgroup/hierarchy.js';
import { CgviewError } from '../errors.js';
import { BPF_FS_MAGIC } from '../kernel/magic.js';
import { classifyView, type ViewSample } from '../stats/keys.js';
import {
  cgroupForTreeDir,
  decodeName,
  decodeRel,
  join,
  normalize,
  relativeTo,
  treeDirForCgroup,
} from '../tree/paths.js';
import type { RootsIndex } from '../tree/state.js';
import { parseViewOutput } from '../views/parse.js';
import { PinnedCollectors, TOP_BULK_VIEWS, TreeBulk, trustedPrivateDir } from './bulk.js';
import { isSchedShaped } from './model.js';

/** A tagged tree: its bpffs directory and the cgroup directory it mirrors (null: not known). */
export interface TreeRoot {
  dir: string;
  cgroup: string | null;
  /** Its inherit list as the index gives it (pin name, view), when it does. */
  inherit?: Array<{ name: string; view: string }>;
}

/** Where one run of top looks: a tree, and the directory inside it to start from. */
export interface Target {
  tree: TreeRoot;
  /** The tree directory to start from (the tree's root or one of its directories). */
  start: string;
  /** How the cgroups of this tree are named: 'v2', or the v1 hierarchy's controllers ('cpu,cpuacct'). */
  hierarchy: string;
  /** The hierarchy's mount point (null when the cgroup is not known). */
  mount: string | null;
  /** v1 only: the hierarchy has cpuacct (cpuacct.usage). */
  cpuacct: boolean;
  /** Root's bulk path for this tree's inherited sched_lat views (src/top/bulk.ts); files without it. */
  bulk?: TreeBulk;
}

export interface ReadError {
  /** A view file name, or a cgroupfs file ('cgroup.procs', 'cpu.stat', …), or 'dir' for the tree directory. */
  what: string;
  code: string;
}

/** One cgroup at one refresh. */
export interface CgroupSample {
  /** Its tree directory (unique; the row's identity). */
  key: string;
  /** The tree directory of its parent (undefined for the first directory of a target). */
  parent: string | undefined;
  target: Target;
  /** The cgroup directory (null when the tree's cgroup is not known). */
  cgroup: string | null;
  /** The path relative to the hierarchy's root with real names ('/' for the root); tree-relative when unknown. */
  path: string;
  /** Levels below the target's start directory (0 is the start). */
  depth: number;
  procs?: number;
  threads?: number;
  /** Cumulative CPU time in microseconds (v2 cpu.stat usage_usec; v1 cpuacct.usage / 1000). */
  cpuUsec?: number;
  /** Parsed view files by file name. */
  views: Map<string, ViewSample>;
  errors: ReadError[];
  /** The sampler's: each view file's last text and sample. */
  [FILES]?: Map<string, Cached>;
}

export interface Snapshot {
  /** CLOCK_MONOTONIC at the start of the refresh, ns. */
  monoNs: bigint;
  /** Date.now() at the start of the refresh. */
  at: number;
  cgroups: CgroupSample[];
  /** Targets whose start directory could not be listed at all. */
  missing: ReadError[];
}

const bp = (p: string): Buffer => Buffer.from(p, 'latin1');

/** The public index of trees, or null when there is none (E_PERMISSION/E_NOT_FOUND are left to the caller). */
export function readIndex(file: string): RootsIndex | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return null;
  }
  try {
    const x = JSON.parse(text) as RootsIndex;
    if (!Array.isArray(x.roots)) return null;
    const roots = x.roots
      .filter(
        (r): r is RootsIndex['roots'][number] => typeof r?.dir === 'string' && typeof r?.cgroup === 'string',
      )
      .map((r) => {
        const inherit = Array.isArray(r.inherit)
          ? r.inherit.filter(
              (p): p is { name: string; view: string } =>
                typeof p?.name === 'string' && typeof p?.view === 'string',
            )
          : undefined;
        return { dir: r.dir, cgroup: r.cgroup, ...(inherit ? { inherit } : {}) };
      });
    return { roots, ...(typeof x.privateDir === 'string' ? { privateDir: x.privateDir } : {}) };
  } catch {
    return null;
  }
}

function isBpffs(p: string): boolean {
  try {
    return fs.statfsSync(bp(p)).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

function targetOf(tree: TreeRoot, start: string, mounts = cgroupMounts()): Target {
  if (tree.cgroup === null) return { tree, start, hierarchy: '?', mount: null, cpuacct: false };
  try {
    const m = mountOf(tree.cgroup, mounts);
    return {
      tree,
      start,
      hierarchy: m.version === 2 ? 'v2' : m.options.join(','),
      mount: m.path,
      cpuacct: m.version === 1 && m.options.includes('cpuacct'),
    };
  } catch {
    return { tree, start, hierarchy: '?', mount: null, cpuacct: false };
  }
}

/**
 * The targets for `cgview top [ARG]`: every tree in the index (no ARG), the
 * tree directory ARG, or the tree directories that mirror the cgroup ARG.
 */
export function discover(
  arg: string | undefined,
  indexFile: string,
  opts: { bulk?: boolean } = {},
): Target[] {
  const index = readIndex(indexFile);
  const targets = discoverIn(arg, indexFile, index);
  if (opts.bulk !== false && process.env['CGVIEW_TOP_NO_BULK'] !== '1') attachBulk(targets, indexFile, index);
  return targets;
}

/**
 * Gives the targets whose tree inherits sched_lat or sched_lat_tree (as a
 * built-in view) the bulk path, when top may read the daemon's collector
 * maps (src/top/bulk.ts trustedPrivateDir: root, and a trusted private
 * directory named in the index).
 */
function attachBulk(targets: Target[], indexFile: string, index: RootsIndex | null): void {
  const priv = trustedPrivateDir(indexFile, index?.privateDir);
  if (priv === undefined) return;
  const collectors = new PinnedCollectors(priv);
  for (const t of targets) {
    if (t.tree.cgroup === null || t.hierarchy === '?') continue;
    const files = new Map<string, string>();
    for (const p of t.tree.inherit ?? []) if (TOP_BULK_VIEWS.has(p.view)) files.set(p.name, p.view);
    if (files.size) t.bulk = new TreeBulk(collectors, t.tree.cgroup, files);
  }
}

function discoverIn(arg: string | undefined, indexFile: string, index: RootsIndex | null): Target[] {
  const roots = index?.roots ?? [];
  const mounts = cgroupMounts();
  if (arg === undefined) {
    if (!index)
      throw new CgviewError('E_NOT_FOUND', `no index of trees at ${indexFile}`, {
        path: indexFile,
        hint: 'the daemon writes it when it starts (cgview daemon); or name a tree directory: cgview top /sys/fs/bpf/cgview',
      });
    if (!roots.length)
      throw new CgviewError('E_NOT_TAGGED', `the index ${indexFile} lists no tree`, {
        hint: 'pin a view first: cgview pin sched_lat /sys/fs/bpf/cgview --inherit',
      });
    return roots.map((r) => targetOf(r, r.dir, mounts));
  }
  const p = normalize(arg);
  if (p === null) throw new CgviewError('E_BAD_INPUT', `${arg}: give an absolute path without '..'`);
  let st: fs.Stats;
  try {
    st = fs.statSync(bp(p));
  } catch (e) {
    throw new CgviewError('E_NOT_FOUND', `${p}: ${(e as NodeJS.ErrnoException).code}`, { path: p });
  }
  if (!st.isDirectory()) throw new CgviewError('E_BAD_INPUT', `${p} is not a directory`);
  if (isBpffs(p)) {
    // The innermost tree of the index that holds it; without one, the directory is a tree of its own, its cgroup unknown.
    let best: RootsIndex['roots'][number] | undefined;
    for (const r of roots)
      if (relativeTo(r.dir, p) !== null && (!best || r.dir.length > best.dir.length)) best = r;
    if (best) return [targetOf(best, p, mounts)];
    // Not in the index (another daemon's socket, or none): the cgroup is the one whose id its views print.
    return [targetOf({ dir: p, cgroup: cgroupById(p, mounts) }, p, mounts)];
  }
  const out: Target[] = [];
  for (const r of roots) {
    const d = treeDirForCgroup(r, p);
    if (d !== null && fs.existsSync(bp(d))) out.push(targetOf(r, d, mounts));
  }
  if (!out.length)
    throw new CgviewError('E_NOT_TAGGED', `no view tree in ${indexFile} mirrors ${p}`, {
      path: p,
      hint: 'cgview ls shows the tagged trees; name a tree directory to look at it directly',
    });
  return out;
}

/**
 * The cgroup directory a tree directory mirrors, found by the cgroup id its
 * views print (a cgroup's id is its directory's inode number): a walk of the
 * hierarchies (v2 first), once at start. Null when no view prints an id or
 * no readable cgroup has it.
 */
function cgroupById(treeDir: string, mounts: ReturnType<typeof cgroupMounts>): string | null {
  let id: string | undefined;
  let hierarchyId: string | undefined;
  try {
    for (const e of fs.readdirSync(bp(treeDir), { withFileTypes: true, encoding: 'buffer' })) {
      if (!e.isFile()) continue;
      try {
        const v = parseViewOutput(readSmall(`${treeDir}/${e.name.toString('latin1')}`));
        id ??= v.get('cgroup_id');
        hierarchyId ??= v.get('hierarchy_id');
      } catch {
        /* unreadable or not a view */
      }
    }
  } catch {
    return null;
  }
  if (id === undefined || !/^[0-9]+$/.test(id)) return null;
  const want = BigInt(id);
  const order = [...mounts].sort((a, b) => (a.version === b.version ? 0 : a.version === 2 ? -1 : 1));
  const pick = hierarchyId === '0' ? order.filter((m) => m.version === 2) : order;
  for (const m of pick) {
    const stack = [m.path];
    while (stack.length) {
      const d = stack.pop()!;
      try {
        if (fs.statSync(bp(d), { bigint: true }).ino === want) return d;
        for (const e of fs.readdirSync(bp(d), { withFileTypes: true, encoding: 'buffer' }))
          if (e.isDirectory()) stack.push(`${d === '/' ? '' : d}/${e.name.toString('latin1')}`);
      } catch {
        /* gone or unreadable */
      }
    }
  }
  return null;
}

// --- reading ---------------------------------------------------------------------------------

const BUF = Buffer.allocUnsafe(1 << 16);
// Non-blocking: a FIFO where a view or cgroup file should be never stalls top (as root too).
const O_VIEW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
/** cgroup.procs of 4 million pids is under 32 MiB: more is no cgroupfs file. */
const MAX_COUNTED_BYTES = 1 << 26;

/** Reads a small file whole (as latin1 text); throws the errno error. */
function readSmall(p: string): string {
  const fd = fs.openSync(bp(p), O_VIEW);
  try {
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, BUF, n, BUF.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === BUF.length)
        throw Object.assign(new Error(`${p}: more than ${BUF.length} bytes`), { code: 'EFBIG' });
    }
    return BUF.toString('latin1', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Lines of a file of any length (cgroup.procs of a big cgroup), without keeping its text. */
function countLines(p: string): number {
  const fd = fs.openSync(bp(p), O_VIEW);
  try {
    let lines = 0;
    for (let total = 0; ; ) {
      const r = fs.readSync(fd, BUF, 0, BUF.length, null);
      if (r === 0) return lines;
      total += r;
      if (total > MAX_COUNTED_BYTES)
        throw Object.assign(new Error(`${p}: more than ${MAX_COUNTED_BYTES} bytes`), { code: 'EFBIG' });
      for (let i = BUF.indexOf(10, 0); i >= 0 && i < r; i = BUF.indexOf(10, i + 1)) lines++;
    }
  } finally {
    fs.closeSync(fd);
  }
}

const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'EIO';

/** A view file's last text and what it parsed to. */
interface Cached {
  text: string;
  sample: ViewSample;
  /** Only gauges and text (no counter, no histogram): read again only every STATIC_EVERY refreshes. */
  static: boolean;
}

/** The text of a Cached that came from the bulk path (no file text: the next file read parses). */
const FROM_BULK = '\0bulk';

/** Same figures (the same view's layout, values, histogram buckets): the model may take the old object. */
function sameSample(a: ViewSample, b: ViewSample): boolean {
  if (a.id !== b.id || a.metrics.length !== b.metrics.length || a.text.size !== b.text.size) return false;
  if (a.metrics === b.metrics) return true;
  for (let i = 0; i < a.metrics.length; i++) {
    const x = a.metrics[i]!;
    const y = b.metrics[i]!;
    if (x.key !== y.key || x.kind !== y.kind || x.value !== y.value || x.labels || y.labels) return false;
    if (x.hist || y.hist) {
      const h = x.hist;
      const k = y.hist;
      if (!h || !k || h.count !== k.count || h.sum !== k.sum || h.cum.length !== k.cum.length) return false;
      for (let j = 0; j < h.cum.length; j++)
        if (h.cum[j] !== k.cum[j] || h.bounds[j] !== k.bounds[j]) return false;
    }
  }
  return true;
}

/** Where a sample keeps its view files' last texts (the sampler's cache lives in the samples it kept). */
const FILES = Symbol('files');

/** Views without counters (`info`) hold what rarely changes: re-read every this many refreshes. */
export const STATIC_EVERY = 10;

const isStatic = (v: ViewSample): boolean => v.metrics.every((m) => m.kind === 'gauge');
function readCgroupFiles(s: CgroupSample, t: Target): void {
  const cg = s.cgroup;
  if (cg === null) return;
  const v2 = t.hierarchy === 'v2';
  try {
    s.threads = countLines(`${cg}/${v2 ? 'cgroup.threads' : 'tasks'}`);
  } catch (e) {
    s.errors.push({ what: v2 ? 'cgroup.threads' : 'tasks', code: code(e) });
  }
  // No thread, no process: most cgroups of a big host are inner or empty ones, and this read is a third of their cost.
  if (s.threads === 0) s.procs = 0;
  else {
    try {
      s.procs = countLines(`${cg}/cgroup.procs`);
    } catch (e) {
      s.errors.push({ what: 'cgroup.procs', code: code(e) });
    }
  }
  if (s.cpuUsec === undefined) readCpu(s, t);
}

/** Cumulative CPU of a cgroup and its descendants (v2 cpu.stat usage_usec, v1 cpuacct.usage), into `s`. */
function readCpu(s: { cgroup: string | null; errors: ReadError[]; cpuUsec?: number }, t: Target): void {
  const cg = s.cgroup;
  if (cg === null) return;
  const v2 = t.hierarchy === 'v2';
  try {
    if (v2) {
      const text = readSmall(`${cg}/cpu.stat`);
      // usage_usec is the first line (kernel/cgroup/rstat.c); a search keeps working if that changes.
      const m = text.startsWith('usage_usec ')
        ? /^usage_usec (\d+)/.exec(text)
        : /^usage_usec (\d+)$/m.exec(text);
      if (m) s.cpuUsec = Number(m[1]);
    } else if (t.cpuacct) s.cpuUsec = Number(readSmall(`${cg}/cpuacct.usage`).trim()) / 1000;
  } catch (e) {
    s.errors.push({ what: v2 ? 'cpu.stat' : 'cpuacct.usage', code: code(e) });
  }
}

/** Display path of a tree directory: the cgroup's path below its hierarchy's root, real names. */
function displayPath(t: Target, treeDir: string, cgroup: string | null): string {
  if (cgroup !== null && t.mount !== null) {
    const rel = relativeTo(t.mount, cgroup);
    // A v1 hierarchy's cgroups carry its controllers, so that they are not taken for v2 ones of the same path.
    if (rel !== null) return t.hierarchy === 'v2' ? `/${rel}` : `${t.hierarchy}:/${rel}`;
  }
  const rel = relativeTo(t.tree.dir, treeDir) ?? '';
  return `/${decodeRel(rel) ?? rel}`;
}

/**
 * Takes the refreshes: every directory of every target down to `maxDepth`
 * levels below its start, with its views and cgroup files. It keeps each
 * view file's last text: an unchanged text gives the same ViewSample object
 * (the model then knows the interval's deltas are zero without parsing).
 */
export class Sampler {
  readonly targets: readonly Target[];
  readonly maxDepth: number;
  #refreshes = 0;
  /** The last refresh's samples and, per directory, its children's keys (for reusing idle subtrees). */
  #prev = new Map<string, CgroupSample>();
  #kids = new Map<string, string[]>();
  /** Directories read in the last refresh, and reused (statistics for the benchmark and docs). */
  readonly stats = { read: 0, reused: 0, bulk: 0 };

  /** Reuse idle subtrees (see #reusable); CGVIEW_TOP_NO_REUSE=1 turns it off (benchmarks: the cost of reading everything). */
  readonly reuse: boolean;

  constructor(
    targets: readonly Target[],
    maxDepth = Number.POSITIVE_INFINITY,
    reuse = process.env['CGVIEW_TOP_NO_REUSE'] !== '1',
  ) {
    this.targets = targets;
    this.maxDepth = maxDepth;
    this.reuse = reuse;
  }

  /** One view file (null: it printed nothing, its cgroup is gone). */
  #view(
    t: Target,
    dir: string,
    name: string,
    readStatic: boolean,
    idle: boolean,
    prev: Map<string, Cached> | undefined,
    next: Map<string, Cached>,
  ): ViewSample | null {
    const old = prev?.get(name);
    // A full refresh reads an idle directory's listing, counts and static views, not its sched views (see #reusable).
    if (old && ((old.static && !readStatic) || (idle && !old.static && isSchedShaped(old.sample)))) {
      next.set(name, old);
      return old.sample;
    }
    // Root's bulk path: the cgroup's sample from this refresh's one walk, by the id its file printed last time.
    const id = old?.sample.id;
    if (t.bulk?.want(name) && id !== undefined) {
      const b = t.bulk.sample(name, id);
      if (b) {
        this.stats.bulk++;
        if (sameSample(old!.sample, b)) {
          next.set(name, old!);
          return old!.sample;
        }
        next.set(name, { text: FROM_BULK, sample: b, static: false });
        return b;
      }
    }
    const text = readSmall(`${dir}/${name}`);
    if (text === '') return null;
    if (old && old.text === text) {
      next.set(name, old);
      return old.sample;
    }
    // View output is UTF-8 by convention; keys and numbers are ASCII, text values stay bytes for display.
    const sample = classifyView(parseViewOutput(text));
    next.set(name, { text, sample, static: isStatic(sample) });
    return sample;
  }

  /**
   * An idle subtree: the directory's cumulative CPU (which counts its
   * descendants) has not moved since the last refresh, so no task in it ran,
   * so no wait in it ended and no counter of a sched-shaped view moved. Its
   * last samples are kept as they are (no directory listed, no file read),
   * if every view of the directory is sched-shaped or static (a view of
   * another kind may count what moves without a task running). Every
   * STATIC_EVERY-th refresh reads everything.
   */
  #reusable(ps: CgroupSample): boolean {
    if (ps.cpuUsec === undefined || ps.errors.length) return false;
    for (const v of ps.views.values()) if (!isStatic(v) && !isSchedShaped(v)) return false;
    return true;
  }

  #reuse(key: string, into: CgroupSample[], kids: Map<string, string[]>): void {
    const ps = this.#prev.get(key);
    if (!ps) return;
    into.push(ps);
    this.stats.reused++;
    const ks = this.#kids.get(key);
    if (ks) {
      kids.set(key, ks);
      for (const k of ks) this.#reuse(k, into, kids);
    }
  }

  sample(): Snapshot {
    const snap: Snapshot = { monoNs: process.hrtime.bigint(), at: Date.now(), cgroups: [], missing: [] };
    const full = this.#refreshes++ % STATIC_EVERY === 0 || !this.reuse;
    const readStatic = full;
    const kids = new Map<string, string[]>();
    const seen = new Set<string>();
    this.stats.read = 0;
    this.stats.reused = 0;
    this.stats.bulk = 0;
    for (const t of this.targets) t.bulk?.refresh(this.#prev.size);
    for (const t of this.targets) {
      const startCg =
        t.tree.cgroup === null ? null : cgroupForTreeDir(t.tree as { dir: string; cgroup: string }, t.start);
      // Depth-first with an explicit stack: a deep tree costs no recursion.
      const stack: Array<{ dir: string; cg: string | null; depth: number; parent: string | undefined }> = [
        { dir: t.start, cg: startCg, depth: 0, parent: undefined },
      ];
      while (stack.length) {
        const { dir, cg, depth, parent } = stack.pop()!;
        if (seen.has(dir)) continue; // trees of the index that overlap: each directory once
        seen.add(dir);
        const ps = this.#prev.get(dir);
        let cpuNow: { cgroup: string | null; errors: ReadError[]; cpuUsec?: number } | undefined;
        let idle = false;
        if (this.reuse && ps && cg !== null && ps.cgroup === cg && ps.depth === depth && this.#reusable(ps)) {
          cpuNow = { cgroup: cg, errors: [] };
          readCpu(cpuNow, t);
          idle = cpuNow.cpuUsec === ps.cpuUsec;
          if (idle && !full) {
            this.#reuse(dir, snap.cgroups, kids);
            continue;
          }
        }
        this.stats.read++;
        let entries: fs.Dirent<Buffer>[];
        try {
          entries = fs.readdirSync(bp(dir), { withFileTypes: true, encoding: 'buffer' });
        } catch (e) {
          if (depth === 0) snap.missing.push({ what: dir, code: code(e) });
          continue; // a directory removed meanwhile (its cgroup went away)
        }
        const s: CgroupSample = {
          key: dir,
          parent,
          target: t,
          cgroup: cg,
          path: displayPath(t, dir, cg),
          depth,
          views: new Map(),
          errors: [],
          ...(cpuNow?.cpuUsec !== undefined ? { cpuUsec: cpuNow.cpuUsec } : {}),
        };
        const files = new Map<string, Cached>();
        s[FILES] = files;
        const children: string[] = [];
        for (const e of entries) {
          const name = e.name.toString('latin1');
          if (e.isDirectory()) children.push(name);
          else if (e.isFile()) {
            try {
              const v = this.#view(t, dir, name, readStatic, idle, ps?.[FILES], files);
              if (v) s.views.set(name, v);
            } catch (err) {
              s.errors.push({ what: name, code: err instanceof CgviewError ? 'E_BAD_INPUT' : code(err) });
            }
          }
        }
        readCgroupFiles(s, t);
        // A cgroup gone while it was read: its files say ENOENT/ENODEV; no row.
        if (
          s.errors.length &&
          !s.views.size &&
          s.errors.every((x) => x.code === 'ENOENT' || x.code === 'ENODEV')
        )
          continue;
        snap.cgroups.push(s);
        if (depth >= this.maxDepth) continue;
        children.sort();
        const ks: string[] = [];
        for (let i = children.length - 1; i >= 0; i--) {
          const real = decodeName(children[i]!);
          if (real === null) continue; // not a mirrored cgroup's name
          const child = join(dir, children[i]!);
          ks.push(child);
          stack.push({ dir: child, cg: cg === null ? null : join(cg, real), depth: depth + 1, parent: dir });
        }
        kids.set(dir, ks.reverse());
      }
    }
    this.#kids = kids;
    this.#prev = new Map(snap.cgroups.map((c) => [c.key, c]));
    return snap;
  }
}
