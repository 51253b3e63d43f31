/**
 * The manager: wires the daemon's parts together and serves the requests
 * the control socket passes on (pin, unpin, ls, resolve, status, rescan).
 *
 * The data path goes one way: inotify events (watches.ts) → dirty scopes
 * (tree/dirty.ts, pure) → the scheduler → the reconciler (views prepared,
 * snapshot, pure diff, apply) → a result that the manager turns into state
 * transitions (state-store.ts, the only writer of the state file) and
 * scopes for the scheduler. Requests go the same way: a handler
 * (requests.ts) returns a transition and a scope; nothing else changes
 * state or queues work.
 */
import { cgroup2Root } from '../cgroup/hierarchy.js';
import { CgviewError } from '../errors.js';
import { bpfBuildDir } from '../kernel/features.js';
import { IN_Q_OVERFLOW, type InotifyEvent, showPath } from '../kernel/index.js';
import { type DirtyScope, eventScopes } from '../tree/dirty.js';
import {
  childKey,
  encodeName,
  join,
  normalize,
  parentRel,
  relativeTo,
  treeDirForCgroup,
} from '../tree/paths.js';
import { pinsFor } from '../tree/reconcile.js';
import type { State } from '../tree/state.js';
import { type ExpectedDir, scanTree, TagCache } from '../tree/treefs.js';
import { type Collectors, collectorInstance } from '../views/collectors.js';
import { objectStoreDir, storeUserView } from '../views/objstore.js';
import { parseViewSpec, ViewSet } from '../views/registry.js';
import { CollectorsWithUser } from '../views/user-collectors.js';
import type { Logger } from './log.js';
import { type ReconcileResult, Reconciler } from './reconciler.js';
import { DEFAULT_FILE_MODE, type PinRequest, planPin, planUnpin, type RequestContext } from './requests.js';
import { ensureDir, RootRuntime, rootOf } from './roots.js';
import { Scheduler } from './scheduler.js';
import { StateStore, type Transition } from './state-store.js';
import { type Watch, WatchRegistry } from './watches.js';

export type { PinRequest } from './requests.js';

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
  /**
   * Built-in views the default tree inherits (default: info). Given
   * explicitly (--default-views), a view missing from an existing default
   * tree is added at start.
   */
  defaultViewList?: { views: string[]; explicit: boolean };
  log: Logger;
  /** Where to publish the index of trees for unprivileged `cgview cat` (none: not published). */
  indexFile?: string;
  /** Seconds between rescans when inotify cannot be trusted (watch limit reached). */
  pollSeconds?: number;
}

/** How often, and how far apart, an untag that cannot finish is tried again. */
const UNTAG_TRIES = 10;
const UNTAG_RETRY_MS = 5000;
const RACE_RETRY_MS = 200;

export class Manager {
  readonly opts: ManagerOptions;
  readonly log: Logger;
  readonly store: StateStore;
  readonly views: ViewSet;
  readonly collectors: Collectors;
  readonly roots: RootRuntime[] = [];
  readonly startedAt = Date.now();
  #watches: WatchRegistry<RootRuntime> | null = null;
  #reconciler: Reconciler | null = null;
  readonly #scheduler = new Scheduler<RootRuntime>((rt, scopes) => this.#runScopes(rt, scopes));
  #pollTimer: NodeJS.Timeout | null = null;
  #rescanTimer: NodeJS.Timeout | null = null;
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
    this.store = new StateStore(opts.stateFile, opts.indexFile, opts.log, opts.privateDir);
    this.collectors = new CollectorsWithUser(opts.privateDir, bpfBuildDir(), opts.log);
    this.views = new ViewSet(this.collectors);
  }

  /** The state as saved. */
  get state(): Readonly<State> {
    return this.store.state;
  }

  /** Creates the default tree on first start, reconciles everything, starts watching. */
  start(): void {
    const watches = new WatchRegistry<RootRuntime>({
      events: (batch, n) => this.#onEvents(batch, n),
      limitHit: () => this.#onWatchLimit(),
      readError: (e) => this.log('error', 'inotify read failed', { error: e.message }),
      debug: (msg, fields) => this.log('debug', msg, fields),
    });
    this.#watches = watches;
    this.#reconciler = new Reconciler(this.views, watches, this.log);
    if (!this.state.initialized) {
      let root: Transition & { kind: 'initialize' } = { kind: 'initialize' };
      if (this.opts.defaultViews && !this.state.roots.some((r) => r.dir === this.opts.bpffs)) {
        ensureDir(this.opts.bpffs);
        root = {
          kind: 'initialize',
          root: {
            dir: this.opts.bpffs,
            cgroup: this.opts.cgroupRoot ?? cgroup2Root(),
            mode: 'auto',
            inherit: this.#defaultViews().map((v) => ({ view: v, name: v, fileMode: DEFAULT_FILE_MODE })),
            local: {},
          },
        };
        this.log('info', 'created the default view tree', {
          dir: this.opts.bpffs,
          views: this.#defaultViews().join(','),
        });
      }
      this.store.commit(root);
    }
    this.store.writeIndex();
    for (const cfg of this.state.roots) {
      const rt = new RootRuntime(cfg);
      this.roots.push(rt);
      this.#open(rt);
    }
    // A crash while untagging: finish it.
    for (const rt of this.roots.filter((r) => r.cfg.untagging))
      this.#guard(rt, 'untag', () => this.#untag(rt));
    // Collectors nobody uses any more go; a root whose hierarchy is unknown
    // (it could not be opened) might use one, so then none is stopped.
    this.#stopUnusedCollectors();
    for (const rt of [...this.roots])
      this.#guard(rt, 'reconcile', () => this.#reconcile(rt, { rel: '', depth: 'deep' }));
    this.#addDefaultViews();
    // One scoped reconcile (a no-op) per tree, so that V8 has compiled the
    // event path before the first real event: the first cgroups after a start
    // would otherwise wait several ms for it.
    for (const rt of [...this.roots]) {
      const leaf = this.#watches.rels(rt, 'cgroup').find((r) => r !== '');
      if (leaf !== undefined)
        this.#guard(rt, 'warm-up', () => this.#reconcile(rt, { rel: leaf, depth: 'deep' }));
    }
  }

  #defaultViews(): string[] {
    return this.opts.defaultViewList?.views ?? ['info'];
  }

  /** --default-views given: views of the list that the default tree does not inherit yet are added to it. */
  #addDefaultViews(): void {
    if (!this.opts.defaultViews || !this.opts.defaultViewList?.explicit) return;
    const rt = this.roots.find((r) => r.cfg.dir === this.opts.bpffs && !r.cfg.untagging);
    if (!rt) return;
    for (const view of this.#defaultViews()) {
      if (rt.cfg.inherit.some((e) => e.name === view)) continue;
      try {
        this.pin({ view, dir: this.opts.bpffs, inherit: true, name: view });
      } catch (e) {
        this.log('warn', 'cannot add a default view to the default tree', { view, error: e });
      }
    }
  }

  stop(): void {
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    if (this.#rescanTimer) clearTimeout(this.#rescanTimer);
    this.#scheduler.close();
    this.#watches?.close();
    this.#watches = null;
    for (const rt of this.roots) rt.close();
    this.views.close();
    this.collectors.close();
  }

  // --- requests ------------------------------------------------------------

  #requestContext(): RequestContext {
    return {
      roots: this.roots,
      privateDir: this.opts.privateDir,
      ...(this.opts.cgroupRoot ? { cgroupRoot: this.opts.cgroupRoot } : {}),
      views: this.views,
    };
  }

  /** cgview pin. Returns what was done. */
  pin(asked: PinRequest): Record<string, unknown> {
    // A user object is copied first; only that root-owned copy is ever loaded (objstore.ts).
    const req = { ...asked, view: storeUserView(asked.view, objectStoreDir(this.opts.stateFile)) };
    let plan: ReturnType<typeof planPin>;
    try {
      plan = planPin(this.#requestContext(), req);
      this.store.commit(plan.transition);
    } catch (e) {
      // A pin that is refused (or cannot be saved) keeps nothing its planning
      // loaded: not the view, not a collector it started.
      this.#releaseUnused();
      throw e;
    }
    const { rt } = plan;
    if (plan.created) this.roots.push(rt);
    this.log('info', plan.created ? 'tagged' : 'pinned', {
      dir: plan.result['dir'],
      cgroup: rt.cfg.cgroup,
      view: req.view,
      name: plan.result['name'],
      inherit: !!req.inherit,
      mode: rt.cfg.mode,
    });
    if (plan.created) this.#open(rt);
    this.#reconcile(rt, plan.scope);
    return plan.result;
  }

  /** cgview unpin DIR/NAME. */
  unpin(file: string): Record<string, unknown> {
    const plan = planUnpin(this.#requestContext(), file);
    this.store.commit(...plan.transitions); // one save: all or nothing
    if (plan.scope) this.#reconcile(plan.rt, plan.scope);
    // The unpin is saved: a failure to finish the untag now is retried, not the request's.
    else this.#guard(plan.rt, 'untag', () => this.#untag(plan.rt));
    this.#releaseUnused();
    this.log('info', 'unpinned', { path: plan.result['path'], inherited: plan.result['inherited'] });
    return plan.result;
  }

  /**
   * Tagged roots, or the entries of one tree directory. `expect`: the
   * directory a caller checked (an unprivileged peer's right to list it);
   * another inode found there now is refused (E_PERMISSION), and the one
   * opened is the one listed.
   */
  ls(dir?: string, expect?: ExpectedDir): Record<string, unknown> {
    if (dir === undefined)
      return {
        roots: this.roots.map((rt) => ({
          dir: rt.cfg.dir,
          cgroup: rt.cfg.cgroup,
          mode: rt.cfg.mode,
          inherit: rt.cfg.inherit.map((p) => p.name),
          dirs: rt.model.dirs.size,
        })),
      };
    const d = normalize(dir);
    const rt = d ? rootOf(this.roots, d) : undefined;
    if (!d || !rt)
      throw new CgviewError('E_NOT_TAGGED', `${showPath(dir)} is not in a tagged view tree`, { path: dir });
    const rel = rt.cgroupRel(d);
    const tree = scanTree(rt.fd!, rel, new TagCache(), false, (r) => r === rel, expect);
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
      watches: this.#watches?.count ?? 0,
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
        // What is there: the directories and view files the last reconciles found or made.
        dirs: rt.model.dirs.size,
        pins: rt.model.pinCount,
        conflicts: rt.conflicts,
        error: rt.lastError,
      })),
      collectors: this.collectors.status(),
    };
  }

  /**
   * Full reconcile of every root (after an overflow, on request, or
   * periodically when degraded). The timers here only decide when; the
   * reconciles run from the scheduler's queue.
   */
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
    // Through the scheduler like every other reconcile, at once: what was
    // pending folds into these (a tree being untagged is untagged instead).
    for (const rt of this.roots) this.#scheduler.mark(rt, { rel: '', depth: 'deep' });
    this.#scheduler.flush();
    // A full reconcile adds every missing watch: if none failed, inotify can be trusted again.
    if (why === 'poll' && this.stats.watchLimitHits === hitsBefore && this.#pollTimer) {
      clearInterval(this.#pollTimer);
      this.#pollTimer = null;
      this.stats.degraded = null;
      this.log('info', 'every watch is in place again: periodic rescans stop');
    }
  }

  /** Reconciles every scope marked dirty since the last flush (at once). */
  flush(): void {
    this.#scheduler.flush();
  }

  // --- trees -----------------------------------------------------------------

  /** Runs one root's work; a failure is that root's (logged, shown in status), not the daemon's. */
  #guard(rt: RootRuntime, what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      rt.lastError = `${what}: ${(e as Error).message}`;
      this.log('error', `${what} failed`, { root: rt.cfg.dir, error: (e as Error).message });
    }
  }

  #open(rt: RootRuntime): void {
    if (!rt.open()) this.log('error', 'cannot open view tree', { dir: rt.cfg.dir, error: rt.lastError });
  }

  /** One scope of one tree through the reconciler; what it found goes to the store and the scheduler. */
  #reconcile(rt: RootRuntime, scope: DirtyScope): void {
    if (rt.cfg.untagging) return; // being emptied: #untag's business
    if (!rt.fd) {
      this.#open(rt);
      if (!rt.fd) return;
    }
    this.stats.reconciles++;
    const res: ReconcileResult = this.#reconciler!.run(rt, scope);
    this.stats.opsApplied += res.done;
    this.stats.opsFailed += res.failed;
    for (const s of res.again) this.#scheduler.mark(rt, s);
    for (const s of res.later) this.#scheduler.later(rt, s, RACE_RETRY_MS);
    // Last: a save that fails throws, and the next reconcile of that part finds the same pins gone.
    if (res.goneLocal.length) {
      this.store.commit({ kind: 'dropLocal', root: rt.cfg, rels: res.goneLocal });
      this.log('info', 'local pins dropped with their cgroup', { root: rt.cfg.dir, rels: res.goneLocal });
    }
  }

  #runScopes(rt: RootRuntime, scopes: DirtyScope[]): void {
    if (!this.roots.includes(rt)) return;
    if (rt.cfg.untagging) {
      this.#guard(rt, 'untag', () => this.#untag(rt));
      return;
    }
    for (const s of scopes) {
      try {
        this.#reconcile(rt, s);
      } catch (e) {
        rt.lastError = `reconcile: ${(e as Error).message}`;
        this.log('error', 'reconcile failed', { root: rt.cfg.dir, rel: s.rel, error: (e as Error).message });
      }
    }
  }

  /**
   * S4: untag. Removes every pin and mirrored directory (the root directory
   * itself stays), then forgets the root. The state says `untagging` until
   * the tree is empty, so a crash in between is finished by the next start.
   */
  #untag(rt: RootRuntime): void {
    if (!rt.fd) return; // not open: nothing removed, so the root is not dropped either
    const failed = this.#reconciler!.untag(rt);
    if (failed > 0) {
      // Something could not be removed (a user made a directory meanwhile,
      // or one too deep to remove): the root stays, marked untagging, and
      // is tried again a few times, then at the next start or rescan.
      rt.untagTries++;
      rt.lastError = `untag: ${failed} operations failed (try ${rt.untagTries})`;
      if (rt.untagTries < UNTAG_TRIES) this.#scheduler.later(rt, { rel: '', depth: 'deep' }, UNTAG_RETRY_MS);
      return;
    }
    // Saved first: if the save fails, the tree stays known (and untagging) and nothing is forgotten.
    try {
      this.store.commit({ kind: 'untagged', root: rt.cfg });
    } catch (e) {
      rt.untagTries++;
      if (rt.untagTries < UNTAG_TRIES) this.#scheduler.later(rt, { rel: '', depth: 'deep' }, UNTAG_RETRY_MS);
      throw e;
    }
    this.#watches?.removeAll(rt);
    this.#scheduler.forget(rt);
    rt.close();
    this.roots.splice(this.roots.indexOf(rt), 1);
    this.log('info', 'untagged', { dir: rt.cfg.dir });
    this.#releaseUnused();
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

  /** Stops the collectors and closes the views no tagged root uses any more. */
  #releaseUnused(): void {
    this.#stopUnusedCollectors();
    this.views.closeUnused(this.roots);
  }

  #stopUnusedCollectors(): void {
    // A root that could not be opened has an unknown hierarchy and might use
    // a collector: then none is stopped.
    if (!this.roots.every((rt) => rt.fd)) return;
    for (const inst of this.collectors.stopUnused(this.#collectorsInUse())) this.views.dropInstance(inst);
  }

  // --- watching --------------------------------------------------------------

  #onWatchLimit(): void {
    // ENOSPC: fs.inotify.max_user_watches reached. Fall back to polling.
    this.stats.watchLimitHits++;
    if (this.stats.degraded) return;
    this.stats.degraded =
      'inotify watch limit reached (fs.inotify.max_user_watches): rescanning periodically';
    this.log('warn', this.stats.degraded);
    if (this.#pollTimer) return;
    this.#pollTimer = setInterval(() => this.rescanAll('poll'), (this.opts.pollSeconds ?? 5) * 1000);
    this.#pollTimer.unref();
  }

  #onEvents(batch: Array<{ ev: InotifyEvent; watches: Watch<RootRuntime>[] }>, received: number): void {
    this.stats.events += received;
    for (const { ev, watches } of batch) {
      if (ev.mask & IN_Q_OVERFLOW) {
        this.stats.overflows++;
        this.rescanAll('inotify queue overflow: events were lost');
        continue;
      }
      for (const w of watches) {
        const rt = w.owner;
        const effect = eventScopes(w, ev, {
          mode: rt.cfg.mode,
          childKey,
          viewNames: (rel) => pinsFor(rt.cfg, rel).map((p) => p.name),
          cgroupWatched: (rel) => this.#watches?.has(rt, 'cgroup', rel) ?? false,
        });
        if (effect.unwatch) this.#watches?.remove(rt, w.side, effect.unwatch.rel, effect.unwatch.subtree);
        for (const s of effect.scopes) this.#scheduler.mark(rt, s);
      }
    }
  }
}
