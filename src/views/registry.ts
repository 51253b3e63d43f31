/**
 * Views: the built-in ones and user BPF objects ("file.bpf.o:program").
 * A view is an `iter/cgroup` program; the registry loads each object once
 * and hands out its program for link creation. Views that read data a
 * collector gathers name that collector; the collector is started before the
 * view object loads, so that the object can reuse the collector's maps.
 */
import path from 'node:path';
import { CgviewError } from '../errors.js';
import { bpfBuildDir } from '../kernel/features.js';
import { BpfObject, type BpfProgram, type Fd, mapInfo, progMapIds } from '../kernel/index.js';
import type { ViewIdentity } from '../tree/reconcile.js';
import { collectorInstance, nullProto } from './collectors.js';
import { CONTRACT, type ObjectFile } from './contract.gen.js';
import { checkStoredObject } from './objstore.js';
import { userCollectorOf } from './user-collectors.js';

export interface ViewDef {
  /** The spec as given: built-in name or "path.bpf.o:program". */
  spec: string;
  /** Default file name of a pin. */
  defaultName: string;
  object: string;
  program: string;
  /** Collector this view reads from, if any. */
  collector?: string;
  description: string;
  /** Kfuncs the program's object calls (built-in views): the kernel must have them (docs/views.md). */
  kfuncs?: string[];
}

type C = typeof CONTRACT;
type ProgramOf<F extends ObjectFile> = keyof C[F]['programs'] & string;

/** A built-in view: object and program names come from the objects (contract.gen.ts). */
function builtin<F extends ObjectFile>(
  object: F,
  program: ProgramOf<F>,
  rest: { collector?: string; description: string },
): Omit<ViewDef, 'spec' | 'defaultName'> {
  return { object, program, kfuncs: [...CONTRACT[object].kfuncs], ...rest };
}

// A null prototype, and every lookup through Object.hasOwn: a spec such as
// "constructor" or "__proto__" (a client's word) names no view.
const BUILTIN = nullProto<Record<string, Omit<ViewDef, 'spec' | 'defaultName'>>>({
  info: builtin('info.bpf.o', 'info', { description: 'identity of the cgroup: id, level, name' }),
  sched_lat: builtin('sched_lat.bpf.o', 'sched_lat', {
    collector: 'sched_lat',
    description: "scheduling queueing delay of the cgroup's tasks (the RFC's metric)",
  }),
  // Its own object: the css-iterator kfuncs it calls (Linux 6.7) must not
  // keep sched_lat from loading on an older kernel.
  sched_lat_tree: builtin('sched_lat_tree.bpf.o', 'sched_lat_tree', {
    collector: 'sched_lat',
    description: 'sched_lat summed over the cgroup and all its descendants',
  }),
});

export function builtinViews(): string[] {
  return Object.keys(BUILTIN);
}

/** Parses a view spec. Throws E_BAD_INPUT / E_NOT_FOUND with what was expected. */
export function parseViewSpec(spec: string): ViewDef {
  const b = Object.hasOwn(BUILTIN, spec) ? BUILTIN[spec] : undefined;
  if (b) return { spec, defaultName: spec, ...b, object: path.join(bpfBuildDir(), b.object) };
  const i = spec.lastIndexOf(':');
  if (i > 0 && spec.slice(0, i).endsWith('.o')) {
    const object = spec.slice(0, i);
    const program = spec.slice(i + 1);
    if (!path.isAbsolute(object))
      throw new CgviewError('E_BAD_INPUT', `view object must be an absolute path: ${object}`, {
        hint: 'the cgview CLI resolves relative paths against the current directory',
      });
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(program))
      throw new CgviewError('E_BAD_INPUT', `bad program name ${JSON.stringify(program)}`);
    return {
      spec,
      defaultName: program,
      object,
      program,
      // Its programs that are not iter/cgroup are its collector (user-collectors.ts).
      ...userCollectorOf(object),
      description: `user view ${program} from ${object}`,
    };
  }
  throw new CgviewError('E_NOT_FOUND', `unknown view ${JSON.stringify(spec)}`, {
    hint: `built-in views: ${builtinViews().join(', ')}; or give path/to/file.bpf.o:program`,
  });
}

/** Starts collectors on demand; returns the maps a view object must reuse. */
export interface CollectorHost {
  acquire(name: string): Record<string, Fd>;
  /** Whether an instance runs in this process (acquired, not stopped). */
  running(name: string): boolean;
  /**
   * Undoes an acquire() whose view failed to load: a collector it started
   * is stopped; one it adopted or replaced keeps its pins (their counters
   * are an earlier daemon's) and is only let go.
   */
  release(name: string): void;
}

const RETRY_MS = 30_000;

/** A tagged root as ViewSet.closeUnused sees it: the views it names, and its hierarchy. */
export interface ViewUser {
  cfg: {
    inherit: ReadonlyArray<{ view: string }>;
    local: Readonly<Record<string, ReadonlyArray<{ view: string }>>>;
  };
  /** Hierarchy of the tree's cgroups (0: cgroup v2); known only once the tree is open. */
  hierarchyId: number;
  /** Null while the tree could not be opened (its hierarchy is then unknown). */
  fd: unknown;
}

export interface LoadedView {
  def: ViewDef;
  program: BpfProgram;
  /** Kernel tag of the program (hash of its instructions): pins of the same program are adopted. */
  tag: string;
  /** Ids of the collector maps the program reads (empty for views without a collector). */
  sharedMapIds: number[];
}

/**
 * Loads each view object once, on first use. A view that reads a collector
 * is loaded once per hierarchy (its maps are that hierarchy's collector's).
 */
export class ViewSet {
  readonly #objects = new Map<string, BpfObject>();
  readonly #views = new Map<string, LoadedView>();
  readonly #failed = new Map<string, { at: number; error: unknown }>();
  readonly #fast = new Map<string, LoadedView>();

  constructor(private readonly collectors: CollectorHost) {}

  #key(def: ViewDef, hierarchyId: number): string {
    return def.collector ? `${def.spec}\0${collectorInstance(def.collector, hierarchyId)}` : def.spec;
  }

  /** The loaded view for a tree of the given hierarchy (0: cgroup v2). Throws what BpfObject.load throws. */
  get(spec: string, hierarchyId = 0): LoadedView {
    // Hot path (one call per pin): no parsing when the view is loaded.
    const fast = this.#fast.get(`${spec}\0${hierarchyId}`);
    if (fast && !fast.program.object.closed) return fast;
    const def = parseViewSpec(spec);
    const vkey = this.#key(def, hierarchyId);
    const have = this.#views.get(vkey);
    if (have && !have.program.object.closed) return have;
    // A view that failed to load is not retried on every event: once per RETRY_MS.
    const failed = this.#failed.get(vkey);
    if (failed && Date.now() - failed.at < RETRY_MS) throw failed.error;
    try {
      const v = this.#load(def, vkey, hierarchyId);
      this.#failed.delete(vkey);
      this.#fast.set(`${spec}\0${hierarchyId}`, v);
      return v;
    } catch (e) {
      this.#failed.set(vkey, { at: Date.now(), error: e });
      throw e;
    }
  }

  /** Forgets load failures (a pin request retries at once). */
  forgetFailures(): void {
    this.#failed.clear();
  }

  #load(def: ViewDef, vkey: string, hierarchyId: number): LoadedView {
    const instance = def.collector ? collectorInstance(def.collector, hierarchyId) : undefined;
    // One object per view program: only that program is loaded, so a
    // program of the same file the kernel refuses spoils nothing else.
    const okey = `${def.object}\0${def.program}\0${instance ?? ''}`;
    let obj = this.#objects.get(okey);
    if (obj && !obj.closed) return this.#describe(def, vkey, obj, instance);
    const wasRunning = instance ? this.collectors.running(instance) : true;
    try {
      // A user object loads only from its root-owned copy (objstore.ts).
      if (!Object.hasOwn(BUILTIN, def.spec)) checkStoredObject(def.object);
      const reuseMaps = instance ? this.collectors.acquire(instance) : undefined;
      obj = BpfObject.load(def.object, {
        programs: [def.program],
        section: 'iter/cgroup',
        ...(reuseMaps ? { reuseMaps } : {}),
      });
      try {
        const v = this.#describe(def, vkey, obj, instance);
        this.#objects.set(okey, obj);
        return v;
      } catch (e) {
        obj.close();
        throw e;
      }
    } catch (e) {
      // Nothing that failed stays loaded: a collector started for this view goes too.
      if (instance && !wasRunning) this.collectors.release(instance);
      throw e;
    }
  }

  #describe(def: ViewDef, vkey: string, obj: BpfObject, instance: string | undefined): LoadedView {
    const program = obj.program(def.program);
    // acquire() of a running instance only hands back its map fds.
    const shared = instance ? this.collectors.acquire(instance) : {};
    // Only the collector maps this program really uses (a view may read a subset).
    const used = new Set(progMapIds(program.fd));
    const sharedMapIds = Object.values(shared)
      .map((fd) => mapInfo(fd).id)
      .filter((id) => used.has(id));
    const loaded = { def, program, tag: program.info().tag, sharedMapIds };
    this.#views.set(vkey, loaded);
    return loaded;
  }

  /**
   * What a pin of a loaded view must be (pins are compared against it),
   * without loading it: its program's tag, and for a collector's view the
   * collector's shared maps.
   */
  identityOf(spec: string, hierarchyId = 0): ViewIdentity | undefined {
    try {
      const v = this.#views.get(this.#key(parseViewSpec(spec), hierarchyId));
      return v ? { tag: v.tag, ...(v.sharedMapIds.length ? { mapIds: v.sharedMapIds } : {}) } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Closes the objects of views reading from a collector instance (before it stops). */
  dropInstance(instance: string): void {
    this.#fast.clear();
    for (const key of this.#views.keys()) if (key.endsWith(`\0${instance}`)) this.#views.delete(key);
    for (const [key, obj] of this.#objects)
      if (key.endsWith(`\0${instance}`)) {
        obj.close();
        this.#objects.delete(key);
      }
  }

  /**
   * Closes every loaded object that no pin of `users` (the tagged roots)
   * names any more: after an unpin or untag, so that a daemon that has seen
   * many views does not hold them all (the counterpart of stopping unused
   * collectors). A view named again is loaded again. Pins already in the
   * trees keep their programs: their links hold them, not these objects.
   */
  closeUnused(users: Iterable<ViewUser>): void {
    const used = new Set<string>();
    // A tree that could not be opened has an unknown hierarchy: its collector
    // views are kept for every hierarchy.
    const anyHierarchy = new Set<string>();
    for (const u of users)
      for (const p of [...u.cfg.inherit, ...Object.values(u.cfg.local).flat()]) {
        let def: ViewDef;
        try {
          def = parseViewSpec(p.view);
        } catch {
          continue; // a view that no longer parses was never loaded
        }
        if (def.collector && !u.fd) anyHierarchy.add(def.spec);
        else used.add(this.#key(def, u.hierarchyId));
      }
    const keep = (key: string, v: LoadedView | undefined) =>
      used.has(key) || (v !== undefined && anyHierarchy.has(v.def.spec));
    const kept = new Set<BpfObject>();
    for (const [key, v] of this.#views)
      if (keep(key, v)) kept.add(v.program.object);
      else this.#views.delete(key);
    for (const [key, obj] of this.#objects)
      if (!kept.has(obj)) {
        obj.close();
        this.#objects.delete(key);
      }
    this.#fast.clear();
    for (const key of this.#failed.keys()) if (!used.has(key)) this.#failed.delete(key);
  }

  close(): void {
    this.#fast.clear();
    for (const o of this.#objects.values()) o.close();
    this.#objects.clear();
    this.#views.clear();
  }
}
