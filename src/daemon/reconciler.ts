/**
 * The reconciler: one scope of one tree, one way through — views prepared
 * (loaded) → snapshot (cgroups, tree) → pure diff → apply → watches for
 * what is now mirrored. It writes no state and queues no work: what it
 * found that needs either (local pins whose directory went, directories to
 * look at again) is in its result, for the manager to commit and schedule.
 */
import { scanCgroups } from '../cgroup/hierarchy.js';
import {
  type DirEntry,
  type Fd,
  IN_ATTRIB,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  listDir,
  openDirAt,
  statFd,
} from '../kernel/index.js';
import type { DirtyScope } from '../tree/dirty.js';
import { childKey, encodeRel, isWithin, join, parentRel } from '../tree/paths.js';
import { type ActualDir, type CgroupNode, type Diff, diff, type Op } from '../tree/reconcile.js';
import { applyOps, scanNames, scanTree, TagCache, treeDirExists } from '../tree/treefs.js';
import type { LoadedView, ViewSet } from '../views/registry.js';
import type { Logger } from './log.js';
import type { RootRuntime } from './roots.js';
import type { WatchRegistry } from './watches.js';

// IN_ATTRIB: a chown of a cgroup directory (delegation, revocation) changes who owns its mirror.
const CG_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ATTRIB;
/** Directories per snapshot-diff-apply round of a 'names' scope. */
const NAMES_CHUNK = 512;
const TREE_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF;

export interface ReconcileResult {
  done: number;
  failed: number;
  /** Local pins of directories that went with their cgroup (S4): to drop from the state. */
  goneLocal: string[];
  /** Scopes to look at again: at once (directories made before their watch), or after a pause (a race). */
  again: DirtyScope[];
  later: DirtyScope[];
}

/** Views of a tree, loaded before its diff. */
export class PreparedViews {
  readonly #loaded = new Map<string, LoadedView>();
  readonly #errors = new Map<string, Error>();
  constructor(views: ViewSet, specs: Iterable<string>, hierarchyId: number) {
    for (const spec of specs) {
      if (this.#loaded.has(spec) || this.#errors.has(spec)) continue;
      try {
        this.#loaded.set(spec, views.get(spec, hierarchyId));
      } catch (e) {
        this.#errors.set(spec, e as Error);
      }
    }
  }
  get errors(): ReadonlyMap<string, Error> {
    return this.#errors;
  }
  /** What a pin of the view must be (undefined: the view did not load, so any of our pins is kept). */
  identity(spec: string): { tag: string; mapIds?: number[] } | undefined {
    const v = this.#loaded.get(spec);
    return v ? { tag: v.tag, ...(v.sharedMapIds.length ? { mapIds: v.sharedMapIds } : {}) } : undefined;
  }
  get(spec: string): LoadedView {
    const v = this.#loaded.get(spec);
    if (v) return v;
    throw this.#errors.get(spec) ?? new Error(`view ${spec} was not prepared`);
  }
}

export class Reconciler {
  readonly #loadErrorLogged = new Map<string, number>();

  constructor(
    private readonly views: ViewSet,
    private readonly watches: WatchRegistry<RootRuntime>,
    private readonly log: Logger,
  ) {}

  /** Loads every view of a tree (logging a view that does not load once a minute, not on every event). */
  prepare(rt: RootRuntime): PreparedViews {
    const specs = [...rt.cfg.inherit, ...Object.values(rt.cfg.local).flat()].map((p) => p.view);
    const prepared = new PreparedViews(this.views, specs, rt.hierarchyId);
    for (const [view, e] of prepared.errors) {
      const last = this.#loadErrorLogged.get(view) ?? 0;
      if (Date.now() - last > 60_000) {
        this.#loadErrorLogged.set(view, Date.now());
        this.log('error', 'cannot load view', { view, error: e.message });
      }
    }
    return prepared;
  }

  #applyCtx(rt: RootRuntime, views: PreparedViews) {
    return {
      rootFd: rt.fd!,
      treeDir: rt.cfg.dir,
      cgroupRoot: rt.cfg.cgroup,
      v2: rt.v2,
      hierarchyId: rt.hierarchyId,
      view: (spec: string) => views.get(spec),
      log: (level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) =>
        this.log(level, msg, { root: rt.cfg.dir, ...fields }),
    };
  }

  /**
   * Makes the tree under `scope` right. 'shallow' looks at the scope's own
   * directory only (its files, owner, mode), 'deep' at the whole subtree,
   * 'names' at some view files of every directory mirrored already. The
   * tree root must be open.
   */
  run(rt: RootRuntime, scope: DirtyScope): ReconcileResult {
    const fd = rt.fd!;
    const views = this.prepare(rt);
    if (scope.depth === 'names') return this.#runNames(rt, fd, views, scope.names ?? []);
    // The scope's parent must exist in the tree; otherwise widen the scope.
    let s = scope.rel;
    let depth = scope.depth;
    while (s !== '') {
      const parent = parentRel(s)!;
      if (parent === '' || treeDirExists(fd, parent)) break;
      s = parent;
      depth = 'deep';
    }
    const shallow = depth === 'shallow';
    // Watch each cgroup before reading it: a child made after the read sends an event.
    const watchCgroup = (rel: string) => {
      if (!this.watches.has(rt, 'cgroup', rel))
        this.watches.add(rt, 'cgroup', rel, join(rt.cfg.cgroup, rel), CG_MASK);
    };
    const cgroups = scanCgroups(rt.cfg.cgroup, s, shallow, shallow ? undefined : watchCgroup);
    const tree = scanTree(fd, s, new TagCache(), shallow, (r) => cgroups.has(r));
    const d = diff({ root: rt.cfg, cgroups, tree, viewTag: (v) => views.identity(v), scope: s });
    const res = applyOps(this.#applyCtx(rt, views), d.ops);
    const out: ReconcileResult = { done: res.done, failed: res.failed, goneLocal: [], again: [], later: [] };
    if (depth === 'deep') {
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
      rt.model.replaceScope(s, cgroups, presentAfter(d, tree, res.failedOps));
      out.again = this.#watchScope(rt, s, cgroups, d.dirs, tree);
      // S4: a directory that goes takes its own (non-inherited) pins with it;
      // a new cgroup of the same name later starts with the inherit list only.
      out.goneLocal = Object.keys(rt.cfg.local).filter((r) => r !== '' && isWithin(s, r) && !cgroups.has(r));
    } else {
      // Every file of the directory was looked at: what is there now is all of it.
      const after = presentAfter(d, tree, res.failedOps).get(s);
      rt.model.setDir(s, after ?? null);
      // Its owner may have changed (that is what a chown's event asks for).
      rt.model.setCgroup(s, cgroups.get(s) ?? null);
    }
    // Something changed under us: look again shortly (not at once, so that a
    // failure that persists cannot turn into a busy loop).
    if (res.raced) out.later.push({ rel: s, depth: 'deep' });
    return out;
  }

  /** A pin or unpin of inherited views: only those files, in every directory the tree holds. */
  #runNames(rt: RootRuntime, fd: Fd, views: PreparedViews, names: string[]): ReconcileResult {
    const rels = [...rt.model.dirs.keys()];
    const out: ReconcileResult = { done: 0, failed: 0, goneLocal: [], again: [], later: [] };
    const tags = new TagCache();
    const ctx = this.#applyCtx(rt, views);
    const only = new Set(names);
    let raced = false;
    // In chunks, each through snapshot, diff and apply, so that the directories
    // the snapshot opened serve the apply without holding one fd per directory.
    for (let i = 0; i < rels.length; i += NAMES_CHUNK) {
      const chunk = rels.slice(i, i + NAMES_CHUNK);
      const open = new Map<string, Fd>();
      try {
        // The cgroups as the model has them: every change to one (made, removed,
        // renamed, chowned) sends an event whose reconcile follows this one.
        const cgroups = new Map<string, CgroupNode>();
        for (const r of chunk) {
          const c = rt.model.cgroups.get(r);
          if (c) cgroups.set(r, c);
        }
        const missed: string[] = [];
        const tree = scanNames(fd, chunk, names, tags, open, missed);
        // A directory that could not be opened is looked at again, whole.
        for (const rel of missed) out.later.push({ rel, depth: 'deep' });
        const d = diff({ root: rt.cfg, cgroups, tree, viewTag: (v) => views.identity(v), names: only });
        const res = applyOps(ctx, d.ops, open);
        out.done += res.done;
        out.failed += res.failed;
        raced ||= res.raced;
        const present = presentAfter(d, tree, res.failedOps);
        for (const rel of d.dirs) rt.model.setFiles(rel, names, present.get(rel) ?? []);
      } finally {
        for (const f of open.values()) f.close();
      }
    }
    // Something changed under us, or too much to look at one by one: the whole tree, shortly.
    if (raced || out.later.length > 64) out.later = [{ rel: '', depth: 'deep' }];
    return out;
  }

  /**
   * S4 untag: removes every pin and mirrored directory (the root directory
   * itself stays). Returns the number of ops that failed (0: the tree is empty).
   */
  untag(rt: RootRuntime): number {
    const live = scanCgroups(rt.cfg.cgroup);
    const tree = scanTree(rt.fd!, '', new TagCache(), false, (r) => live.has(r));
    // Desired: nothing. The same diff with an empty config and no cgroups.
    const { ops } = diff({
      root: { ...rt.cfg, inherit: [], local: {} },
      cgroups: new Map(),
      tree,
      viewTag: () => undefined,
    });
    const none = new PreparedViews(this.views, [], rt.hierarchyId);
    const res = applyOps(this.#applyCtx(rt, none), ops);
    if (res.failed === 0) rt.model.clear();
    return res.failed;
  }

  /**
   * Adds watches for the directories of a scope just reconciled. A directory
   * made between our scan and its new watch sends us no event, so each newly
   * watched directory is listed once more and any child we did not know of
   * is returned, to be reconciled.
   */
  #watchScope(
    rt: RootRuntime,
    scope: string,
    cgroups: Map<string, CgroupNode>,
    dirs: Set<string>,
    tree: Map<string, ActualDir>,
  ): DirtyScope[] {
    const again: DirtyScope[] = [];
    // Watches of removed directories go by themselves (IN_IGNORED); a full
    // reconcile also drops any the kernel kept (e.g. conflicts found later).
    if (scope === '') {
      for (const rel of this.watches.rels(rt, 'cgroup'))
        if (!cgroups.has(rel)) this.watches.remove(rt, 'cgroup', rel);
      for (const rel of this.watches.rels(rt, 'tree'))
        if (!dirs.has(rel)) this.watches.remove(rt, 'tree', rel);
    }
    // Lists a directory just watched; children made before the watch get reconciled.
    const late = (rel: string, names: DirEntry[]) => {
      for (const e of names) {
        if (!e.isDir) continue;
        const k = childKey(e.name);
        const child = rel === '' ? k : `${rel}/${k}`;
        if (!dirs.has(child)) again.push({ rel: child, depth: 'deep' });
      }
    };
    const rootOwned = new Map<string, boolean>();
    const rootsAlong = (rel: string): boolean => {
      const known = rootOwned.get(rel);
      if (known !== undefined) return known;
      // Root's both as found by the scan (a root-owned dir left group- or
      // world-writable is not root's alone, though the reconcile just fixed its
      // mode) and as the apply left it: the owner of its cgroup, which this
      // reconcile may just have given it (a delegation made while we were down).
      const cg = cgroups.get(rel);
      const found = tree.get(rel);
      const own =
        cg?.uid === 0 && (!found || (found.uid === 0 && found.mode !== undefined && !(found.mode & 0o022)));
      const parent = parentRel(rel);
      const ok =
        rel === '' || (!!cg && own && parent !== null && isWithin(scope, parent) && rootsAlong(parent));
      rootOwned.set(rel, ok);
      return ok;
    };
    for (const rel of cgroups.keys()) {
      if (rt.conflicts.some((c) => isWithin(c, rel))) continue;
      if (this.watches.has(rt, 'tree', rel) || !dirs.has(rel)) continue;
      // In auto mode, a directory whose cgroup and whose ancestors' cgroups are
      // all root's is root's along the whole path: nobody else can change the
      // path, so it is watched by path (one call). Elsewhere users write, so
      // the watch and the listing go through a dir fd.
      if (rt.cfg.mode === 'auto' && rootsAlong(rel)) {
        this.watches.add(rt, 'tree', rel, join(rt.cfg.dir, encodeRel(rel)), TREE_MASK);
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
          this.watches.add(rt, 'tree', rel, fd, TREE_MASK) &&
          (rt.cfg.mode === 'manual' || statFd(fd).uid !== 0)
        )
          late(rel, listDir(fd));
      } finally {
        fd.close();
      }
    }
    return again;
  }
}

/** The view files in place per directory once `d` was applied: those kept, and those pinned without failure. */
function presentAfter(d: Diff, tree: Map<string, ActualDir>, failed: Set<Op>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const failedMkdir = new Set<string>();
  for (const op of failed) if (op.op === 'mkdir') failedMkdir.add(op.rel);
  const removed = new Set<string>();
  for (const op of d.ops) if (op.op === 'rmfile' && !failed.has(op)) removed.add(`${op.rel}\0${op.name}`);
  for (const rel of d.dirs) {
    if (failedMkdir.has(rel)) continue;
    const names = new Set<string>();
    for (const [n, f] of tree.get(rel)?.files ?? [])
      if (f.kind === 'view' && !removed.has(`${rel}\0${n}`)) names.add(n);
    out.set(rel, names);
  }
  for (const op of d.ops)
    if (op.op === 'pin') {
      const names = out.get(op.rel);
      if (!names) continue;
      if (failed.has(op)) names.delete(op.name);
      else names.add(op.name);
    }
  return out;
}
