/**
 * The manager: owns the persisted state (tagged roots, inherit lists), keeps
 * every view tree reconciled with its cgroup subtree, follows both with
 * inotify, and serves pin/unpin/ls/status requests.
 *
 * Every change is: update state → save atomically → reconcile (pure diff,
 * then apply). Reconciling from scratch is always correct, which is what a
 * restart, an inotify overflow and a crash at any point rely on.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  cgroup2Root,
  cgroupMounts,
  checkCgroupDir,
  childCgroups,
  hierarchyIdOf,
  mountOf,
  scanCgroups,
} from '../cgroup/hierarchy.js';
import { CgviewError, isCgviewError } from '../errors.js';
import { bpfBuildDir } from '../kernel/features.js';
import {
  type DirEntry,
  type Fd,
  IN_ATTRIB,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_IGNORED,
  IN_ISDIR,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_Q_OVERFLOW,
  Inotify,
  type InotifyEvent,
  listDir,
  mkdirAt,
  openDir,
  openDirAt,
  requireBpffs,
  requireRootOwned,
  showPath,
  statFd,
} from '../kernel/index.js';
import {
  baseName,
  childKey,
  decodeRel,
  encodeName,
  encodeRel,
  isWithin,
  join,
  normalize,
  parentRel,
  relativeTo,
  treeDirForCgroup,
} from '../tree/paths.js';
import { type ActualDir, diff, pinsFor } from '../tree/reconcile.js';
import {
  loadState,
  type Mode,
  type RootsIndex,
  type State,
  saveState,
  type TagRoot,
  type ViewPin,
  writeFileAtomic,
} from '../tree/state.js';
import { applyOps, scanTree, TagCache, treeDirExists } from '../tree/treefs.js';
import { Collectors, collectorInstance } from '../views/collectors.js';
import { parseViewSpec, ViewSet } from '../views/registry.js';
import type { Logger } from './log.js';

export interface ManagerOptions {
  /** Default view tree (and where the default root is tagged). */
  bpffs: string;
  /** Cgroup directory the default tree mirrors (default: the cgroup v2 root). */
  cgroupRoot?: string;
  stateFile: string;
  /** bpffs directory for collectors' pinned links and maps. */
  privateDir: string;
  /** Create the default tree (info inherited, auto mode) on first start. */
  defaultViews: boolean;
  log: Logger;
  /** Where to publish the index of trees for unprivileged `cgview cat` (none: not published). */
  indexFile?: string;
  /** Seconds between rescans when inotify cannot be trusted (watch limit reached). */
  pollSeconds?: number;
}

export interface PinRequest {
  view: string;
  dir: string;
  cgroup?: string;
  inherit?: boolean;
  name?: string;
  mode?: Mode;
  fileMode?: number;
}

const DEFAULT_FILE_MODE = 0o440;
// IN_ATTRIB: a chown of a cgroup directory (delegation, revocation) changes who owns its mirror.
const CG_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ATTRIB;
const TREE_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF;

interface Watch {
  root: RootRuntime;
  side: 'cgroup' | 'tree';
  rel: string;
}

function sideMap(w: Watch): Map<string, number> {
  return w.side === 'cgroup' ? w.root.cgWatches : w.root.treeWatches;
}

/** A tagged root while the daemon runs. */
class RootRuntime {
  fd: Fd | null = null;
  v2 = true;
  hierarchyId = 0;
  conflicts: string[] = [];
  /** Directories mirrored (status): one watch each; approximate when the watch limit was hit. */
  get dirs(): number {
    return this.treeWatches.size || this.cgWatches.size;
  }
  /** Pins in place (status): the inherit list in every directory plus local pins. */
  get pins(): number {
    return (
      this.dirs * this.cfg.inherit.length + Object.values(this.cfg.local).reduce((n, ps) => n + ps.length, 0)
    );
  }
  lastError: string | null = null;
  untagTries = 0;
  untagTimer: NodeJS.Timeout | null = null;
  /** rel → wd, per side. */
  readonly cgWatches = new Map<string, number>();
  readonly treeWatches = new Map<string, number>();
  constructor(public cfg: TagRoot) {}
}

export class Manager {
  readonly opts: ManagerOptions;
  readonly log: Logger;
  state: State;
  readonly views: ViewSet;
  readonly collectors: Collectors;
  readonly roots: RootRuntime[] = [];
  readonly startedAt = Date.now();
  #inotify: Inotify | null = null;
  /** Watch descriptor → what it stands for; trees whose cgroups overlap share a wd (one per directory). */
  readonly #watches = new Map<number, Watch[]>();
  #pending = new Map<RootRuntime, Map<string, 'deep' | 'shallow'>>();
  #flushScheduled = false;
  #pollTimer: NodeJS.Timeout | null = null;
  #rescanTimer: NodeJS.Timeout | null = null;
  readonly #loadErrorLogged = new Map<string, number>();
  #lastRescan = 0;
  readonly stats = {
    overflows: 0,
    watchLimitHits: 0,
    rescans: 0,
    reconciles: 0,
    opsApplied: 0,
    opsFailed: 0,
    events: 0,
    degraded: null as string | null,
  };

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.state = loadState(opts.stateFile);
    this.collectors = new Collectors(opts.privateDir, bpfBuildDir(), opts.log);
    this.views = new ViewSet(this.collectors);
  }

  /** Loads state, creates the default tree on first start, reconciles everything, starts watching. */
  start(): void {
    this.#inotify = new Inotify(
      (evs) => this.#onEvents(evs),
      (e) => this.log('error', 'inotify read failed', { error: e.message }),
    );
    if (!this.state.initialized) {
      if (this.opts.defaultViews && !this.state.roots.some((r) => r.dir === this.opts.bpffs)) {
        this.#ensureDir(this.opts.bpffs);
        this.state.roots.push({
          dir: this.opts.bpffs,
          cgroup: this.opts.cgroupRoot ?? cgroup2Root(),
          mode: 'auto',
          inherit: [{ view: 'info', name: 'info', fileMode: DEFAULT_FILE_MODE }],
          local: {},
        });
        this.log('info', 'created the default view tree', { dir: this.opts.bpffs, view: 'info' });
      }
      this.state.initialized = true;
      this.#save();
    }
    this.#writeIndex();
    for (const cfg of this.state.roots) {
      const rt = new RootRuntime(cfg);
      this.roots.push(rt);
      this.#openRoot(rt);
    }
    // A crash while untagging: finish it.
    for (const rt of this.roots.filter((r) => r.cfg.untagging))
      this.#guard(rt, 'untag', () => this.#untag(rt));
    // Collectors nobody uses any more go; a root whose hierarchy is unknown
    // (it could not be opened) might use one, so then none is stopped.
    this.#stopUnusedCollectors();
    for (const rt of this.roots) this.#guard(rt, 'reconcile', () => this.#fullReconcile(rt));
    // One scoped reconcile (a no-op) per tree, so that V8 has compiled the
    // event path before the first real event: the first cgroups after a start
    // would otherwise wait several ms for it.
    for (const rt of this.roots) {
      const leaf = [...rt.cgWatches.keys()].find((r) => r !== '');
      if (leaf !== undefined) this.#guard(rt, 'warm-up', () => this.#reconcile(rt, leaf, 'deep'));
    }
  }

  /** Runs one root's work; a failure is that root's (logged, shown in status), not the daemon's. */
  #guard(rt: RootRuntime, what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      rt.lastError = `${what}: ${(e as Error).message}`;
      this.log('error', `${what} failed`, { root: rt.cfg.dir, error: (e as Error).message });
    }
  }

  #stopUnusedCollectors(): void {
    // A root that could not be opened has an unknown hierarchy and might use
    // a collector: then none is stopped.
    if (!this.roots.every((rt) => rt.fd)) return;
    for (const inst of this.collectors.stopUnused(this.#collectorsInUse())) this.views.dropInstance(inst);
  }

  stop(): void {
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    if (this.#rescanTimer) clearTimeout(this.#rescanTimer);
    this.#inotify?.close();
    this.#inotify = null;
    for (const rt of this.roots) {
      if (rt.untagTimer) clearTimeout(rt.untagTimer);
      rt.fd?.close();
      rt.fd = null;
    }
    this.views.close();
    this.collectors.close();
  }

  // --- requests ------------------------------------------------------------

  /** cgview pin. Returns what was done. */
  pin(req: PinRequest): Record<string, unknown> {
    const dir = normalize(req.dir);
    if (!dir)
      throw new CgviewError('E_BAD_INPUT', `DIR must be an absolute path without '..': ${showPath(req.dir)}`);
    const def = parseViewSpec(req.view);
    const name = req.name ?? def.defaultName;
    if (!/^[^/\0.]{1,255}$/.test(name))
      throw new CgviewError('E_BAD_INPUT', `bad pin name ${JSON.stringify(name)}`, {
        hint: "a file name without '/' or '.' (bpffs refuses names with a dot)",
      });
    const fileMode = req.fileMode ?? DEFAULT_FILE_MODE;
    if (!Number.isInteger(fileMode) || fileMode < 0 || fileMode > 0o777)
      throw new CgviewError('E_BAD_INPUT', `bad file mode ${String(req.fileMode)}`);
    const pin: ViewPin = { view: req.view, name, fileMode };

    let rt = this.#rootOf(dir);
    let created = false;
    let rel = '';
    if (rt?.cfg.untagging)
      throw new CgviewError(
        'E_TAGGED',
        `${showPath(rt.cfg.dir)} is being untagged; try again when it is done`,
        {
          path: dir,
          hint: 'cgview status shows why untagging waits',
        },
      );
    if (rt) {
      rel = this.#cgroupRel(rt, dir);
      const cg = join(rt.cfg.cgroup, rel);
      if (req.cgroup !== undefined && normalize(req.cgroup) !== cg)
        throw new CgviewError('E_TAGGED', `${showPath(dir)} is already tagged with ${showPath(cg)}`, {
          path: dir,
        });
      if (req.mode !== undefined && req.mode !== rt.cfg.mode)
        throw new CgviewError('E_TAGGED', `${showPath(rt.cfg.dir)} is mirrored in ${rt.cfg.mode} mode`, {
          path: dir,
        });
      if (rel !== '' && !fs.existsSync(Buffer.from(dir, 'latin1')))
        throw new CgviewError(
          'E_NOT_FOUND',
          `${showPath(dir)} is not in the tree (no directory for that cgroup)`,
          { path: dir },
        );
      const taken = [
        ...rt.cfg.inherit,
        ...(req.inherit ? Object.values(rt.cfg.local).flat() : (rt.cfg.local[rel] ?? [])),
      ];
      if (taken.some((p) => p.name === name))
        throw new CgviewError(
          'E_EXISTS',
          `pin ${req.view} as ${showPath(join(dir, name))}: that name is taken`,
          { path: dir },
        );
    } else {
      const cgroup = checkCgroupDir(req.cgroup ?? this.opts.cgroupRoot ?? cgroup2Root()).dir;
      this.#checkNewRoot(dir);
      rt = new RootRuntime({ dir, cgroup, mode: req.mode ?? 'auto', inherit: [], local: {} });
      this.#setHierarchy(rt);
      created = true;
    }
    // A view file would shadow a mirrored cgroup of the same name (the view
    // wins, see reconcile.ts): say so instead of un-mirroring it.
    const names = req.inherit
      ? [...scanCgroups(rt.cfg.cgroup).keys()].filter((r) => r !== '').map(baseName) // anywhere in the tree
      : childCgroups(join(rt.cfg.cgroup, rel)); // in this directory
    const shadowed = names.find((n) => encodeName(n) === name);
    if (shadowed !== undefined)
      throw new CgviewError(
        'E_EXISTS',
        `pin ${req.view} as ${name}: a cgroup of that name is mirrored in this tree`,
        {
          path: dir,
          hint: 'choose another --name',
        },
      );
    // Load first: a view that does not verify changes nothing.
    this.views.forgetFailures();
    this.views.get(req.view, rt.hierarchyId);
    if (req.inherit) rt.cfg.inherit.push(pin);
    else rt.cfg.local[rel] = [...(rt.cfg.local[rel] ?? []), pin];
    if (created) {
      this.state.roots.push(rt.cfg);
      this.roots.push(rt);
    }
    this.#save();
    this.log('info', created ? 'tagged' : 'pinned', {
      dir,
      cgroup: rt.cfg.cgroup,
      view: req.view,
      name,
      inherit: !!req.inherit,
      mode: rt.cfg.mode,
    });
    if (created) this.#openRoot(rt);
    if (req.inherit || created) this.#fullReconcile(rt);
    else this.#reconcile(rt, rel, 'shallow');
    return {
      dir,
      name,
      tagged: created,
      cgroup: join(rt.cfg.cgroup, rel),
      inherit: !!req.inherit,
      mode: rt.cfg.mode,
    };
  }

  /** cgview unpin DIR/NAME. */
  unpin(file: string): Record<string, unknown> {
    const p = normalize(file);
    if (!p || p === '/') throw new CgviewError('E_BAD_INPUT', `expected DIR/NAME, got ${showPath(file)}`);
    const dir = path.posix.dirname(p);
    const name = path.posix.basename(p);
    const rt = this.#rootOf(dir);
    if (!rt)
      throw new CgviewError('E_NOT_TAGGED', `${showPath(dir)} is not in a tagged view tree`, { path: dir });
    const rel = this.#cgroupRel(rt, dir);
    let inherited = false;
    const i = rt.cfg.inherit.findIndex((x) => x.name === name);
    if (i >= 0) {
      rt.cfg.inherit.splice(i, 1);
      inherited = true;
    } else {
      const list = rt.cfg.local[rel] ?? [];
      const j = list.findIndex((x) => x.name === name);
      if (j < 0) throw new CgviewError('E_NOT_FOUND', `no view pinned as ${showPath(p)}`, { path: p });
      list.splice(j, 1);
      if (list.length === 0) delete rt.cfg.local[rel];
    }
    const empty = rt.cfg.inherit.length === 0 && Object.keys(rt.cfg.local).length === 0;
    if (empty) rt.cfg.untagging = true;
    this.#save();
    if (empty) this.#untag(rt);
    else if (inherited) this.#fullReconcile(rt);
    else this.#reconcile(rt, rel, 'shallow');
    this.#stopUnusedCollectors();
    this.log('info', 'unpinned', { path: p, inherited });
    return { path: p, inherited, untagged: empty };
  }

  /** Tagged roots, or the entries of one tree directory. */
  ls(dir?: string): Record<string, unknown> {
    if (dir === undefined)
      return {
        roots: this.roots.map((rt) => ({
          dir: rt.cfg.dir,
          cgroup: rt.cfg.cgroup,
          mode: rt.cfg.mode,
          inherit: rt.cfg.inherit.map((p) => p.name),
          dirs: rt.dirs,
        })),
      };
    const d = normalize(dir);
    const rt = d ? this.#rootOf(d) : undefined;
    if (!d || !rt)
      throw new CgviewError('E_NOT_TAGGED', `${showPath(dir)} is not in a tagged view tree`, { path: dir });
    const rel = this.#cgroupRel(rt, d);
    const tree = scanTree(rt.fd!, rel, new TagCache(), false, (r) => r === rel);
    const here = tree.get(rel);
    if (!here) throw new CgviewError('E_NOT_FOUND', `${showPath(d)} does not exist`, { path: d });
    const pins = pinsFor(rt.cfg, rel);
    return {
      dir: d,
      cgroup: join(rt.cfg.cgroup, rel),
      views: pins.map((p) => {
        const f = here.files.get(p.name);
        return {
          name: p.name,
          view: p.view,
          mode: p.fileMode.toString(8),
          present: !!f,
          cgroupId: f?.cgroupId,
        };
      }),
      subdirs: [...tree.keys()]
        .filter((r) => r !== rel && parentRel(r) === rel)
        .map((r) => encodeName(r.slice(rel === '' ? 0 : rel.length + 1))),
    };
  }

  /** Tree directories that mirror a cgroup directory (for cgview cat). */
  resolve(cgroupDir: string): Array<{ dir: string; views: string[] }> {
    const cg = normalize(cgroupDir);
    if (!cg) throw new CgviewError('E_BAD_INPUT', `not an absolute path: ${showPath(cgroupDir)}`);
    const out: Array<{ dir: string; views: string[] }> = [];
    for (const rt of this.roots) {
      const rel = relativeTo(rt.cfg.cgroup, cg);
      if (rel === null) continue;
      out.push({ dir: treeDirForCgroup(rt.cfg, cg)!, views: pinsFor(rt.cfg, rel).map((p) => p.name) });
    }
    return out;
  }

  status(): Record<string, unknown> {
    return {
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      stateFile: this.opts.stateFile,
      bpffs: this.opts.bpffs,
      watches: this.#inotify?.watchCount ?? 0,
      ...this.stats,
      roots: this.roots.map((rt) => ({
        dir: rt.cfg.dir,
        cgroup: rt.cfg.cgroup,
        hierarchy: rt.v2 ? 'v2' : 'v1',
        mode: rt.cfg.mode,
        inherit: rt.cfg.inherit.map((p) => ({
          name: p.name,
          view: p.view,
          fileMode: p.fileMode.toString(8),
        })),
        local: Object.fromEntries(Object.entries(rt.cfg.local).map(([r, ps]) => [r, ps.map((p) => p.name)])),
        dirs: rt.dirs,
        pins: rt.pins,
        conflicts: rt.conflicts,
        error: rt.lastError,
      })),
      collectors: this.collectors.status(),
    };
  }

  // --- roots -----------------------------------------------------------------

  /** Cgroup-relative path of a directory of `rt`'s tree (tree names are encoded, see paths.ts). */
  #cgroupRel(rt: RootRuntime, dir: string): string {
    const rel = decodeRel(relativeTo(rt.cfg.dir, dir)!);
    if (rel === null)
      throw new CgviewError('E_NO_MATCH', `${showPath(dir)} is not the name of a mirrored cgroup`, {
        path: dir,
      });
    return rel;
  }

  #rootOf(dir: string): RootRuntime | undefined {
    return this.roots.find((rt) => relativeTo(rt.cfg.dir, dir) !== null);
  }

  #checkNewRoot(dir: string): void {
    if (relativeTo(this.opts.privateDir, dir) !== null)
      throw new CgviewError('E_BAD_INPUT', `${dir} is cgview's private directory`, { path: dir });
    for (const rt of this.roots)
      if (relativeTo(dir, rt.cfg.dir) !== null)
        throw new CgviewError(
          'E_TAGGED',
          `${showPath(dir)} contains the tagged tree ${showPath(rt.cfg.dir)}`,
          { path: dir },
        );
    this.#ensureDir(dir);
    const fd = openDir(dir);
    try {
      requireBpffs(fd, dir);
      this.#requireTrusted(fd, dir);
      if (listDir(fd).length > 0)
        throw new CgviewError(
          'E_EXISTS',
          `${showPath(dir)} is not empty: a view tree starts in an empty bpffs directory`,
          {
            path: dir,
          },
        );
    } finally {
      fd.close();
    }
  }

  /** Makes a missing tree root directory when its parent is on bpffs. */
  #ensureDir(dir: string): void {
    try {
      openDir(dir).close(); // there already (checked by the caller)
      return;
    } catch (e) {
      if (!isCgviewError(e, 'E_NOT_FOUND')) throw e;
    }
    const parent = openDir(path.posix.dirname(dir));
    try {
      requireBpffs(parent, path.posix.dirname(dir));
      try {
        mkdirAt(parent, path.posix.basename(dir), 0o755);
      } catch (e) {
        if (!isCgviewError(e, 'E_EXISTS')) throw e;
      }
    } finally {
      parent.close();
    }
  }

  #setHierarchy(rt: RootRuntime): void {
    const mount = mountOf(rt.cfg.cgroup, cgroupMounts());
    rt.v2 = mount.version === 2;
    rt.hierarchyId = hierarchyIdOf(mount);
  }

  /**
   * A tree root must be root's alone, and so must every directory above it
   * (or be sticky, like /sys/fs/bpf): a user who could rename it or its
   * parents could swap the tree under the daemon.
   */
  #requireTrusted(fd: Fd, dir: string): void {
    requireRootOwned(fd, dir);
    for (let p = path.posix.dirname(dir); ; p = path.posix.dirname(p)) {
      const st = fs.lstatSync(Buffer.from(p, 'latin1'));
      const mode = st.mode & 0o7777;
      if (st.uid !== 0 || (mode & 0o022 && !(mode & 0o1000)))
        throw new CgviewError(
          'E_PERMISSION',
          `${showPath(p)}, above ${showPath(dir)}, is not root's alone: refused`,
          {
            path: p,
            hint: 'put view trees where only root can rename directories',
          },
        );
      if (p === '/') break;
    }
  }

  #openRoot(rt: RootRuntime): void {
    try {
      this.#setHierarchy(rt);
      this.#ensureDir(rt.cfg.dir);
      const fd = openDir(rt.cfg.dir);
      try {
        requireBpffs(fd, rt.cfg.dir);
        this.#requireTrusted(fd, rt.cfg.dir);
      } catch (e) {
        fd.close();
        throw e;
      }
      rt.fd = fd;
      rt.lastError = null;
    } catch (e) {
      rt.lastError = (e as Error).message;
      this.log('error', 'cannot open view tree', { dir: rt.cfg.dir, error: rt.lastError });
    }
  }

  /**
   * S4: untag. Removes every pin and mirrored directory (the root directory
   * itself stays), then forgets the root. The state says `untagging` until
   * the tree is empty, so a crash in between is finished by the next start.
   */
  #untag(rt: RootRuntime): void {
    if (rt.fd) {
      const live = scanCgroups(rt.cfg.cgroup);
      const tree = scanTree(rt.fd, '', new TagCache(), false, (r) => live.has(r));
      // Desired: nothing. Reuse diff with an empty config and no cgroups.
      const { ops } = diff({
        root: { ...rt.cfg, inherit: [], local: {} },
        cgroups: new Map(),
        tree,
        viewTag: () => undefined,
      });
      const res = applyOps(this.#applyCtx(rt), ops);
      if (res.failed > 0) {
        // Something could not be removed (a user made a directory meanwhile,
        // or one too deep to remove): the root stays, marked untagging, and
        // is tried again a few times, then at the next start or rescan.
        rt.untagTries++;
        rt.lastError = `untag: ${res.failed} operations failed (try ${rt.untagTries})`;
        if (rt.untagTries < 10)
          rt.untagTimer = setTimeout(() => {
            rt.untagTimer = null;
            if (this.roots.includes(rt)) this.#guard(rt, 'untag', () => this.#untag(rt));
          }, 5000).unref();
        return;
      }
    } else return; // not open: nothing removed, so the root is not dropped either
    for (const rel of [...rt.cgWatches.keys()]) this.#unwatch(rt, 'cgroup', rel);
    for (const rel of [...rt.treeWatches.keys()]) this.#unwatch(rt, 'tree', rel);
    rt.fd?.close();
    rt.fd = null;
    this.roots.splice(this.roots.indexOf(rt), 1);
    this.state.roots = this.state.roots.filter((r) => r !== rt.cfg);
    this.#save();
    this.log('info', 'untagged', { dir: rt.cfg.dir });
  }

  #collectorsInUse(): Set<string> {
    const used = new Set<string>();
    for (const rt of this.roots)
      for (const p of [...rt.cfg.inherit, ...Object.values(rt.cfg.local).flat()]) {
        try {
          const c = parseViewSpec(p.view).collector;
          if (c) used.add(collectorInstance(c, rt.hierarchyId));
        } catch {
          /* a view that no longer parses uses no collector */
        }
      }
    return used;
  }

  #save(): void {
    saveState(this.opts.stateFile, this.state);
    this.#writeIndex();
  }

  /** The public index of trees (see RootsIndex), readable by every user. */
  #writeIndex(): void {
    if (!this.opts.indexFile) return;
    const index: RootsIndex = {
      roots: this.state.roots.filter((r) => !r.untagging).map((r) => ({ dir: r.dir, cgroup: r.cgroup })),
    };
    try {
      writeFileAtomic(this.opts.indexFile, `${JSON.stringify(index)}\n`, 0o644, 0o755);
    } catch (e) {
      this.log('warn', 'cannot write the index of trees', {
        file: this.opts.indexFile,
        error: (e as Error).message,
      });
    }
  }

  // --- reconciliation --------------------------------------------------------

  #applyCtx(rt: RootRuntime) {
    return {
      rootFd: rt.fd!,
      treeDir: rt.cfg.dir,
      cgroupRoot: rt.cfg.cgroup,
      v2: rt.v2,
      hierarchyId: rt.hierarchyId,
      views: this.views,
      log: (level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) =>
        this.log(level, msg, { root: rt.cfg.dir, ...fields }),
    };
  }

  #fullReconcile(rt: RootRuntime): void {
    this.#reconcile(rt, '', 'deep');
  }

  /**
   * Makes the tree under `scope` right. 'shallow' looks at the scope's own
   * directory only (its files), 'deep' at the whole subtree.
   */
  #reconcile(rt: RootRuntime, scope: string, depthMode: 'deep' | 'shallow'): void {
    if (rt.cfg.untagging) return; // being emptied: #untag's business
    if (!rt.fd) {
      this.#openRoot(rt);
      if (!rt.fd) return;
    }
    this.stats.reconciles++;
    // Make sure every view of this root is loaded, so pins are compared with its current program.
    for (const p of [...rt.cfg.inherit, ...Object.values(rt.cfg.local).flat()]) {
      try {
        this.views.get(p.view, rt.hierarchyId);
      } catch (e) {
        // Logged once a minute per view, not on every event.
        const last = this.#loadErrorLogged.get(p.view) ?? 0;
        if (Date.now() - last > 60_000) {
          this.#loadErrorLogged.set(p.view, Date.now());
          this.log('error', 'cannot load view', { view: p.view, error: (e as Error).message });
        }
      }
    }
    // The scope's parent must exist in the tree; otherwise widen the scope.
    let s = scope;
    while (s !== '') {
      const parent = parentRel(s)!;
      if (parent === '' || treeDirExists(rt.fd, parent)) break;
      s = parent;
      depthMode = 'deep';
    }
    const shallow = depthMode === 'shallow';
    // Watch each cgroup before reading it: a child made after the read sends an event.
    const watchCgroup = (rel: string) => {
      if (!rt.cgWatches.has(rel)) this.#watch(rt, 'cgroup', rel, join(rt.cfg.cgroup, rel), CG_MASK);
    };
    const cgroups = scanCgroups(rt.cfg.cgroup, s, shallow, shallow ? undefined : watchCgroup);
    const tree = scanTree(rt.fd, s, new TagCache(), shallow, (r) => cgroups.has(r));
    const d = diff({
      root: rt.cfg,
      cgroups,
      tree,
      viewTag: (v) => this.views.identityOf(v, rt.hierarchyId),
      scope: s,
    });
    const res = applyOps(this.#applyCtx(rt), d.ops);
    this.stats.opsApplied += res.done;
    this.stats.opsFailed += res.failed;
    if (depthMode === 'deep') {
      rt.conflicts = [...rt.conflicts.filter((c) => !isWithin(s, c)), ...d.conflicts];
      for (const c of d.conflicts)
        this.log(
          'warn',
          'cgroup not mirrored: its name is taken by a view file, or too long for bpffs once encoded',
          {
            root: rt.cfg.dir,
            rel: c,
          },
        );
      this.#updateWatches(rt, s, cgroups, d.dirs, tree);
      // S4: a directory that goes takes its own (non-inherited) pins with it;
      // a new cgroup of the same name later starts with the inherit list only.
      const gone = Object.keys(rt.cfg.local).filter((r) => r !== '' && isWithin(s, r) && !cgroups.has(r));
      if (gone.length) {
        for (const r of gone) delete rt.cfg.local[r];
        this.#save();
        this.log('info', 'local pins dropped with their cgroup', { root: rt.cfg.dir, rels: gone });
      }
    }
    // Something changed under us: look again shortly (not at once, so that a
    // failure that persists cannot turn into a busy loop).
    if (res.raced) setTimeout(() => this.#markDirty(rt, s, 'deep'), 200).unref();
  }

  // --- watching --------------------------------------------------------------

  /**
   * Adds watches for the directories of a scope just reconciled. A directory
   * made between our scan and its new watch sends us no event, so each newly
   * watched directory is listed once more and any child we did not know of
   * is marked for reconciling.
   */
  #updateWatches(
    rt: RootRuntime,
    scope: string,
    cgroups: Map<string, unknown>,
    dirs: Set<string>,
    tree: Map<string, ActualDir>,
  ): void {
    const ino = this.#inotify;
    if (!ino) return;
    // Watches of removed directories go by themselves (IN_IGNORED); a full
    // reconcile also drops any the kernel kept (e.g. conflicts found later).
    if (scope === '') {
      for (const rel of [...rt.cgWatches.keys()]) if (!cgroups.has(rel)) this.#unwatch(rt, 'cgroup', rel);
      for (const rel of [...rt.treeWatches.keys()]) if (!dirs.has(rel)) this.#unwatch(rt, 'tree', rel);
    }
    // Lists a directory just watched; children made before the watch get reconciled.
    const late = (
      rel: string,
      names: DirEntry[],
      known: (c: string) => boolean,
      key: (n: string) => string,
    ) => {
      for (const e of names) {
        if (!e.isDir) continue;
        const k = key(e.name);
        const child = rel === '' ? k : `${rel}/${k}`;
        if (!known(child)) this.#markDirty(rt, child, 'deep');
      }
    };
    const rootOwned = new Map<string, boolean>();
    const rootsAlong = (rel: string): boolean => {
      const known = rootOwned.get(rel);
      if (known !== undefined) return known;
      // As found by the scan (a root-owned dir left group- or world-writable is
      // not root's alone, though the reconcile just fixed its mode), or made
      // now by us for a root cgroup.
      const cg = cgroups.get(rel) as { uid: number; gid: number } | undefined;
      const found = tree.get(rel);
      const own = found
        ? found.uid === 0 && found.mode !== undefined && !(found.mode & 0o022)
        : cg?.uid === 0;
      const parent = parentRel(rel);
      const ok =
        rel === '' || (!!cg && own && parent !== null && isWithin(scope, parent) && rootsAlong(parent));
      rootOwned.set(rel, ok);
      return ok;
    };
    for (const rel of cgroups.keys()) {
      if (rt.conflicts.some((c) => isWithin(c, rel))) continue;
      if (!rt.treeWatches.has(rel) && dirs.has(rel)) {
        // In auto mode, a directory whose cgroup and whose ancestors' cgroups are
        // all root's is root's along the whole path: nobody else can change the
        // path, so it is watched by path (one call). Elsewhere users write, so
        // the watch and the listing go through a dir fd.
        if (rt.cfg.mode === 'auto' && rootsAlong(rel)) {
          this.#watch(rt, 'tree', rel, join(rt.cfg.dir, encodeRel(rel)), TREE_MASK);
          continue;
        }
        let fd: Fd;
        try {
          fd = openDirAt(rt.fd!, rel === '' ? '.' : encodeRel(rel));
        } catch {
          continue;
        }
        try {
          // Only a user can have made a directory before the watch: in manual
          // mode, or in a directory a user owns.
          if (
            this.#watch(rt, 'tree', rel, fd, TREE_MASK) &&
            (rt.cfg.mode === 'manual' || statFd(fd).uid !== 0)
          )
            late(rel, listDir(fd), (c) => dirs.has(c), childKey);
        } finally {
          fd.close();
        }
      }
    }
  }

  /**
   * Records what a watch descriptor stands for. The kernel gives one wd per
   * directory: a tree whose cgroups overlap another's shares it, and a
   * directory watched already (moved, say) gets its old wd, whose old
   * meaning for the same tree and side goes.
   */
  #bind(wd: number, w: Watch): void {
    const list = (this.#watches.get(wd) ?? []).filter((o) => {
      if (o.root !== w.root || o.side !== w.side) return true;
      const map = sideMap(o);
      if (map.get(o.rel) === wd) map.delete(o.rel);
      return false;
    });
    list.push(w);
    this.#watches.set(wd, list);
    sideMap(w).set(w.rel, wd);
  }

  /** Adds a watch; false when it could not be added (gone, or the watch limit). */
  #watch(rt: RootRuntime, side: 'cgroup' | 'tree', rel: string, p: string | Fd, mask: number): boolean {
    try {
      const wd = typeof p === 'string' ? this.#inotify!.add(p, mask) : this.#inotify!.addFd(p, mask);
      this.#bind(wd, { root: rt, side, rel });
      return true;
    } catch (e) {
      if (isCgviewError(e) && e.errno === 28) {
        // ENOSPC: fs.inotify.max_user_watches reached. Fall back to polling.
        this.stats.watchLimitHits++;
        if (!this.stats.degraded) {
          this.stats.degraded =
            'inotify watch limit reached (fs.inotify.max_user_watches): rescanning periodically';
          this.log('warn', this.stats.degraded);
          this.#startPolling();
        }
      } else
        this.log('debug', 'watch failed', {
          path: typeof p === 'string' ? showPath(p) : p.what,
          error: (e as Error).message,
        });
      return false;
    }
  }

  /** Drops the watches of `rel` and everything below it from one side of a tree. */
  #dropWatches(rt: RootRuntime, side: 'cgroup' | 'tree', rel: string): void {
    const map = side === 'cgroup' ? rt.cgWatches : rt.treeWatches;
    for (const r of [...map.keys()]) if (isWithin(rel, r)) this.#unwatch(rt, side, r);
  }

  /** Drops one tree's watch of `rel`; the kernel watch goes when no tree uses it any more. */
  #unwatch(rt: RootRuntime, side: 'cgroup' | 'tree', rel: string): void {
    const map = side === 'cgroup' ? rt.cgWatches : rt.treeWatches;
    const wd = map.get(rel);
    if (wd === undefined) return;
    map.delete(rel);
    const list = (this.#watches.get(wd) ?? []).filter(
      (o) => !(o.root === rt && o.side === side && o.rel === rel),
    );
    if (list.length) this.#watches.set(wd, list);
    else {
      this.#watches.delete(wd);
      this.#inotify?.remove(wd);
    }
  }

  #startPolling(): void {
    if (this.#pollTimer) return;
    this.#pollTimer = setInterval(() => this.rescanAll('poll'), (this.opts.pollSeconds ?? 5) * 1000);
    this.#pollTimer.unref();
  }

  /** Full reconcile of every root (after an overflow, or periodically when degraded). */
  rescanAll(why: string): void {
    // Overflows can come in a storm (anyone can cause one with mkdir/rmdir
    // loops): at most one rescan a second, the rest folded into the next.
    const since = Date.now() - this.#lastRescan;
    if (why !== 'poll' && since < 1000) {
      if (!this.#rescanTimer)
        this.#rescanTimer = setTimeout(() => {
          this.#rescanTimer = null;
          this.rescanAll(why);
        }, 1000 - since);
      return;
    }
    this.#lastRescan = Date.now();
    this.stats.rescans++;
    this.log(why === 'poll' ? 'debug' : 'warn', 'rescanning every view tree', { why });
    const hitsBefore = this.stats.watchLimitHits;
    for (const rt of [...this.roots])
      if (rt.cfg.untagging) this.#guard(rt, 'untag', () => this.#untag(rt));
      else this.#guard(rt, 'rescan', () => this.#fullReconcile(rt));
    // A full reconcile adds every missing watch: if none failed, inotify can be trusted again.
    if (why === 'poll' && this.stats.watchLimitHits === hitsBefore && this.#pollTimer) {
      clearInterval(this.#pollTimer);
      this.#pollTimer = null;
      this.stats.degraded = null;
      this.log('info', 'every watch is in place again: periodic rescans stop');
    }
  }

  #onEvents(events: InotifyEvent[]): void {
    this.stats.events += events.length;
    for (const ev of events) {
      if (ev.mask & IN_Q_OVERFLOW) {
        this.stats.overflows++;
        this.rescanAll('inotify queue overflow: events were lost');
        continue;
      }
      const ws = this.#watches.get(ev.wd);
      if (!ws) continue;
      if (ev.mask & IN_IGNORED) {
        this.#watches.delete(ev.wd);
        this.#inotify?.dropped(ev.wd);
        for (const w of ws) if (sideMap(w).get(w.rel) === ev.wd) sideMap(w).delete(w.rel);
        continue;
      }
      for (const w of ws) this.#onEvent(w, ev);
    }
    this.#scheduleFlush();
  }

  /** One event as one tree sees it. */
  #onEvent(w: Watch, ev: InotifyEvent): void {
    const rt = w.root;
    if (ev.name === '') {
      // The watched directory itself went away: its parent's reconcile handles it.
      if (ev.mask & IN_DELETE_SELF) this.#markDirty(rt, parentRel(w.rel) ?? '', 'shallow');
      // Its owner or mode changed: its directory and views take the new owner.
      else if (ev.mask & IN_ATTRIB && w.side === 'cgroup' && w.rel !== '')
        this.#markDirty(rt, w.rel, 'shallow');
      return;
    }
    // Attributes of an entry: a child directory's own watch reports it too (above);
    // files in a cgroup (cgroup.procs, ...) do not matter.
    if (ev.mask & IN_ATTRIB && !(ev.mask & ~(IN_ATTRIB | IN_ISDIR))) return;
    // Tree names are encoded cgroup names (paths.ts).
    const key = w.side === 'tree' ? childKey(ev.name) : ev.name;
    const child = w.rel === '' ? key : `${w.rel}/${key}`;
    const created = (ev.mask & (IN_CREATE | IN_MOVED_TO)) !== 0;
    // A directory gone or moved away: its watches (and its subtree's) go at
    // once, so that a new directory of the same name gets watches of its own.
    // (A deleted directory was empty, so only its own watch; a moved one takes its subtree.)
    if (ev.mask & IN_ISDIR && ev.mask & (IN_DELETE | IN_MOVED_FROM)) {
      if (ev.mask & IN_MOVED_FROM) this.#dropWatches(rt, w.side, child);
      else this.#unwatch(rt, w.side, child);
    }
    if (w.side === 'cgroup') {
      if (ev.mask & IN_ISDIR) this.#markDirty(rt, child, 'deep');
    } else if (ev.mask & IN_ISDIR) {
      // A directory made in the tree: by us for a cgroup we follow (nothing to do in
      // auto mode), or by a user (manual mode: S2 check). One removed: re-mirror if due.
      if (!(created && rt.cfg.mode === 'auto' && rt.cgWatches.has(child))) this.#markDirty(rt, child, 'deep');
    } else {
      // Files: a view file removed, or renamed over, must be re-pinned; a new
      // entry under a name that is not a view may be a symlink to remove. A
      // file created under a view's name is our own pin.
      const isView = pinsFor(rt.cfg, w.rel).some((p) => p.name === ev.name);
      if (!isView ? created : !(ev.mask & IN_CREATE)) this.#markDirty(rt, w.rel, 'shallow');
    }
  }

  #markDirty(rt: RootRuntime, rel: string, mode: 'deep' | 'shallow'): void {
    let m = this.#pending.get(rt);
    if (!m) {
      m = new Map();
      this.#pending.set(rt, m);
    }
    if (m.get(rel) !== 'deep') m.set(rel, mode);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#pending.size === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Reconciles every scope marked dirty since the last flush. */
  flush(): void {
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [rt, scopes] of pending) {
      if (!this.roots.includes(rt)) continue;
      const deep = [...scopes].filter(([, m]) => m === 'deep').map(([r]) => r);
      const covered = (rel: string) => deep.some((d) => d !== rel && isWithin(d, rel));
      for (const [rel, mode] of scopes) {
        if (covered(rel) || (mode === 'shallow' && deep.includes(rel))) continue;
        try {
          this.#reconcile(rt, rel, mode);
        } catch (e) {
          this.log('error', 'reconcile failed', { root: rt.cfg.dir, rel, error: (e as Error).message });
        }
      }
    }
  }
}
