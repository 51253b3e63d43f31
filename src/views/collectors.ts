/**
 * Collectors: the BPF programs that gather what views print (tracing
 * programs and their maps), loaded once per collector and hierarchy, and
 * kept alive by pinning their links and maps in the daemon's private bpffs
 * directory. A restarted daemon adopts them, so the data survives it.
 *
 * An instance is named "<collector>@<hierarchy id>" (0 is cgroup v2). It is
 * started when the first view that reads it is loaded and stopped when the
 * last pin of such a view goes.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../daemon/log.js';
import { CgviewError, isCgviewError } from '../errors.js';
import { cpuListCount, POSSIBLE_CPUS } from '../kernel/features.js';
import {
  BpfObject,
  type Fd,
  linkInfo,
  listDir,
  mapSpec,
  mapSpecMismatch,
  mkdirAt,
  objGetAt,
  openDir,
  openDirAt,
  progFdById,
  progInfo,
  requireBpffs,
  requireRootOwned,
  unlinkAt,
} from '../kernel/index.js';
import { CONTRACT, type ObjectFile } from './contract.gen.js';
import type { CollectorHost } from './registry.js';

export { cpuListCount };

/** Tag of the program a pinned link runs; null when it cannot be read. */
function pinnedProgTag(dir: Fd, name: string): string | null {
  const l = objGetAt(dir, name);
  if (!l) return null;
  try {
    const p = progFdById(linkInfo(l).progId);
    try {
      return progInfo(p).tag;
    } finally {
      p.close();
    }
  } catch {
    return null;
  } finally {
    l.close();
  }
}

interface CollectorDef {
  object: ObjectFile;
  /** Programs to attach (all of them are tracing programs), in attach order. */
  programs: string[];
  /** Maps to pin; `shared` ones are reused by the view objects and hold the counters. */
  maps: string[];
  shared: string[];
  /** The per-CPU map: its max_entries is the most CPUs the collector can follow. */
  cpuMap?: string;
  /** Load-time settings from the hierarchy id. */
  rodata: (hierarchyId: number) => Record<string, Buffer>;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

// Names come from the objects (contract.gen.ts): a name they do not have does not compile.
type C = typeof CONTRACT;
type ProgramOf<F extends ObjectFile> = keyof C[F]['programs'] & string;
type MapOf<F extends ObjectFile> = C[F]['maps'][number];
type RodataOf<F extends ObjectFile> = keyof C[F]['rodata'] & string;

const SL = 'sched_lat_collector.bpf.o';
const CPU = 'cpu_collector.bpf.o';
const SC = 'sched_culprits_collector.bpf.o';
/** `o` without a prototype: no lookup of a client's name finds an Object.prototype member. */
export function nullProto<T extends object>(o: T): T {
  return Object.setPrototypeOf(o, null) as T;
}

// Null prototype and Object.hasOwn lookups: an instance name comes from a
// directory listing too, and "constructor@0" must name no collector.
const DEFS = nullProto<Record<string, CollectorDef>>({
  sched_lat: {
    object: SL,
    // Attached in this order: the switch and migration programs see every
    // task before any wait can start, so no start is left for them to miss.
    programs: ['sl_switch', 'sl_migrate', 'sl_rmdir', 'sl_wakeup', 'sl_wakeup_new'] satisfies ProgramOf<
      typeof SL
    >[],
    // Every map of the object is pinned.
    maps: [...CONTRACT[SL].maps],
    shared: ['sl_cgrp', 'sl_cg_v1'] satisfies MapOf<typeof SL>[],
    cpuMap: 'sl_cpu' satisfies MapOf<typeof SL>,
    rodata: (h) => ({ v1_hierarchy_id: u32(h) }) satisfies Record<RodataOf<typeof SL>, Buffer>,
  },
  // The `cpu` view's (docs/cpu-views.md). Its per-CPU state is a PERCPU_ARRAY: no CPU limit.
  cpu: {
    object: CPU,
    programs: ['cpu_switch', 'cpu_migrate', 'cpu_rmdir'] satisfies ProgramOf<typeof CPU>[],
    maps: [...CONTRACT[CPU].maps],
    shared: ['cpu_cgrp', 'cpu_cg_v1'] satisfies MapOf<typeof CPU>[],
    rodata: (h) => ({ v1_hierarchy_id: u32(h) }) satisfies Record<RodataOf<typeof CPU>, Buffer>,
  },
  // The `sched_culprits` view's (docs/cpu-views.md); attached in sched_lat's order, for the same reason.
  sched_culprits: {
    object: SC,
    programs: ['sc_switch', 'sc_migrate', 'sc_rmdir', 'sc_wakeup', 'sc_wakeup_new'] satisfies ProgramOf<
      typeof SC
    >[],
    maps: [...CONTRACT[SC].maps],
    shared: ['sc_cgrp', 'sc_cg_v1'] satisfies MapOf<typeof SC>[],
    cpuMap: 'sc_cpu' satisfies MapOf<typeof SC>,
    rodata: (h) => ({ v1_hierarchy_id: u32(h) }) satisfies Record<RodataOf<typeof SC>, Buffer>,
  },
});

/** The collectors, for checks of their definitions against the objects (tests, doctor). */
export function collectorDefs(): Record<string, Readonly<CollectorDef>> {
  return DEFS;
}

/** How an instance came to run in this daemon. */
export type CollectorStart = 'started' | 'adopted' | 'replaced';

interface Running {
  instance: string;
  /** Pinned maps the views reuse, by map name. */
  maps: Record<string, Fd>;
  start: CollectorStart;
  /** For a replaced collector: why the pinned one was not adopted, and the maps (counters) carried over. */
  reasons: string[];
  carried: string[];
  startedAt: number;
}

export function collectorInstance(collector: string, hierarchyId: number): string {
  return `${collector}@${hierarchyId}`;
}

function parseInstance(instance: string): { name: string; def: CollectorDef; hierarchyId: number } {
  const m = /^([a-z_]+)@(\d+)$/.exec(instance);
  const def = m && Object.hasOwn(DEFS, m[1]!) ? DEFS[m[1]!] : undefined;
  if (!m || !def) throw new CgviewError('E_NOT_FOUND', `unknown collector ${instance}`);
  return { name: m[1]!, def, hierarchyId: Number(m[2]) };
}

/** What was found pinned for an instance, against what this version loads. */
type Pinned =
  | { kind: 'none' }
  | { kind: 'compatible'; maps: Record<string, Fd> }
  | { kind: 'incompatible'; reasons: string[]; carry: Record<string, Fd> };

export interface CollectorsOptions {
  /** Text of /sys/devices/system/cpu/possible (default: read it); tests inject a larger machine. */
  possibleCpus?: string;
  /** Tests only: called before each program is attached; what it throws fails the start there. */
  beforeAttach?: (program: string) => void;
}

export class Collectors implements CollectorHost {
  readonly #running = new Map<string, Running>();

  constructor(
    readonly privateDir: string,
    readonly bpfDir: string,
    readonly log: Logger,
    readonly opts: CollectorsOptions = {},
  ) {}

  /** The private directory, made on first use (its parent must be bpffs). */

  running(instance: string): boolean {
    return this.#running.has(instance);
  }

  /**
   * The shared (counter) maps of an instance running in this daemon, without
   * starting it; undefined when it does not run. The Fd objects stay the same
   * while the instance runs, so a reader can tell a restarted collector by
   * identity (src/views/bulk.ts). Not to be closed by the caller.
   */
  sharedMaps(instance: string): Readonly<Record<string, Fd>> | undefined {
    return this.#running.get(instance)?.maps;
  }

  readonly #stopListeners: Array<(instance: string) => void> = [];
  /** Called with the instance name whenever one is stopped here (bulk readers let go of its maps). */
  onStop(fn: (instance: string) => void): void {
    this.#stopListeners.push(fn);
  }

  /** See CollectorHost.release: stops what this daemon started, lets go of what it adopted. */
  release(instance: string): void {
    const r = this.#running.get(instance);
    if (!r) return;
    if (r.start === 'started') {
      this.stop(instance);
      return;
    }
    for (const fd of Object.values(r.maps)) fd.close();
    this.#running.delete(instance);
  }

  /**
   * Maps a view object must reuse; starts the collector instance, or adopts
   * the one an earlier daemon left pinned if its programs and maps are the
   * ones this version loads (else replaces it, carrying its counters over
   * when their maps' layout is the same). Throws E_NOT_SUPPORTED on a machine
   * with more CPUs than the collector follows, and what BpfObject.load throws.
   */
  acquire(instance: string): Record<string, Fd> {
    const have = this.#running.get(instance);
    if (have) return have.maps;
    const { def, hierarchyId } = parseInstance(instance);
    const file = path.join(this.bpfDir, def.object);
    const rodata = def.rodata(hierarchyId);
    // What this version would run: compared with what is pinned, and used when nothing is.
    let obj = BpfObject.load(file, { rodata });
    const priv = (() => {
      try {
        this.#checkCpus(obj, def, instance);
        return openPrivateDir(this.privateDir);
      } catch (e) {
        obj.close();
        throw e;
      }
    })();
    try {
      const pinned = this.#inspect(priv, instance, def, obj);
      if (pinned.kind === 'compatible') {
        obj.close();
        const r: Running = {
          instance,
          maps: pinned.maps,
          start: 'adopted',
          reasons: [],
          carried: [],
          startedAt: Date.now(),
        };
        this.#running.set(instance, r);
        this.log('info', 'collector adopted', { collector: instance });
        return r.maps;
      }
      let carry: Record<string, Fd> = {};
      let reasons: string[] = [];
      if (pinned.kind === 'incompatible') {
        ({ carry, reasons } = pinned);
        obj.close();
        try {
          obj = BpfObject.load(file, { rodata, reuseMaps: carry });
        } catch (e) {
          for (const fd of Object.values(carry)) fd.close();
          throw e;
        }
      }
      const r = this.#start(priv, instance, def, obj, carry);
      r.reasons = reasons;
      this.#running.set(instance, r);
      if (r.start === 'replaced')
        this.log('warn', 'collector replaced: the pinned one is not what this version loads', {
          collector: instance,
          reasons,
          carried: r.carried,
          ...(r.carried.length ? {} : { note: 'counters start afresh' }),
        });
      else this.log('info', 'collector started', { collector: instance });
      return r.maps;
    } finally {
      obj.close();
      priv.close();
    }
  }

  /** Refuses a machine with more possible CPUs than the collector has per-CPU slots. */
  #checkCpus(obj: BpfObject, def: CollectorDef, instance: string): void {
    if (!def.cpuMap) return;
    const slots = obj.map(def.cpuMap).info().maxEntries;
    const text = this.opts.possibleCpus ?? fs.readFileSync(POSSIBLE_CPUS, 'latin1');
    const n = cpuListCount(text);
    if (n > slots)
      throw new CgviewError(
        'E_NOT_SUPPORTED',
        `collector ${instance}: this machine has ${n} possible CPUs, the collector follows at most ${slots}`,
        { hint: `views that read it cannot run here; cgview doctor shows the limit (${POSSIBLE_CPUS})` },
      );
  }

  /**
   * What an earlier daemon left pinned for `instance`, against `fresh` (what
   * this version loads): program tags and map specs (sizes, flags, value
   * layout). Incomplete leftovers (a crash while starting) are cleared.
   */
  #inspect(priv: Fd, instance: string, def: CollectorDef, fresh: BpfObject): Pinned {
    let dir: Fd;
    try {
      dir = openDirAt(priv, instance);
    } catch {
      return { kind: 'none' };
    }
    const carry: Record<string, Fd> = {};
    try {
      requireRootOwned(dir, `${this.privateDir}/${instance}`);
      const entries = listDir(dir);
      const names = new Set(entries.filter((e) => e.isFile).map((e) => e.name));
      const complete =
        entries.length === names.size &&
        def.programs.every((p) => names.has(`link_${p}`)) &&
        def.maps.every((m) => names.has(m));
      if (!complete) {
        // A start that did not finish (a crash, or a failed replacement that
        // kept the counters it carried): its counter maps are carried again
        // when their layout is this version's; the rest goes.
        for (const m of def.shared) {
          if (!names.has(m)) continue;
          let fd: Fd | null = null;
          try {
            fd = objGetAt(dir, m, `map ${m}`);
            if (fd && !mapSpecMismatch(mapSpec(fd), mapSpec(fresh.map(m).fd))) {
              carry[m] = fd;
              fd = null;
            }
          } catch {
            // Not a map this version can read: not carried, cleared below with the rest.
          } finally {
            fd?.close();
          }
        }
        const carried = Object.keys(carry);
        this.log(
          'warn',
          `collector pins incomplete, ${carried.length ? 'counters carried over' : 'starting afresh'}`,
          {
            collector: instance,
            carried,
          },
        );
        this.#clear(dir, carry);
        if (carried.length === 0) return { kind: 'none' };
        return { kind: 'incompatible', reasons: ['pins incomplete (a start that did not finish)'], carry };
      }
      const reasons: string[] = [];
      // A pin this version does not make (e.g. a program it dropped) would keep running if adopted.
      const expected = new Set([...def.programs.map((p) => `link_${p}`), ...def.maps]);
      for (const n of names) if (!expected.has(n)) reasons.push(`pin ${n}: not one of this version's`);
      for (const p of def.programs) {
        const tag = pinnedProgTag(dir, `link_${p}`);
        const want = fresh.program(p).info().tag;
        if (tag !== want) reasons.push(`program ${p}: tag ${tag ?? 'unreadable'}, this version's ${want}`);
      }
      for (const m of def.maps) {
        const fd = objGetAt(dir, m, `map ${m}`);
        if (!fd) {
          reasons.push(`map ${m}: gone`);
          continue;
        }
        const why = mapSpecMismatch(mapSpec(fd), mapSpec(fresh.map(m).fd));
        if (why) reasons.push(`map ${m}: ${why}`);
        if (!why && def.shared.includes(m)) carry[m] = fd;
        else fd.close();
      }
      if (reasons.length === 0) return { kind: 'compatible', maps: carry };
      return { kind: 'incompatible', reasons, carry };
    } catch (e) {
      for (const fd of Object.values(carry)) fd.close();
      throw e;
    } finally {
      dir.close();
    }
  }

  /** Unpins every file of an instance directory but the maps in `keep`; anything else is logged and left. */
  #clear(dir: Fd, keep: Record<string, Fd> = {}): void {
    for (const e of listDir(dir)) {
      if (Object.hasOwn(keep, e.name)) continue;
      if (e.isDir) {
        this.log('warn', 'unexpected directory in a collector directory, left alone', { name: e.name });
        continue;
      }
      unlinkAt(dir, e.name);
    }
  }

  /**
   * Pins `obj`'s maps and attaches its programs in the instance directory.
   * Maps in `carry` are pinned ones the object reuses (counters of a
   * replaced collector): they stay; whatever else is there (the replaced
   * collector's links, detaching its programs, and its other maps) goes first.
   */
  #start(priv: Fd, instance: string, def: CollectorDef, obj: BpfObject, carry: Record<string, Fd>): Running {
    const maps: Record<string, Fd> = { ...carry };
    try {
      try {
        mkdirAt(priv, instance, 0o700);
      } catch (e) {
        if (!isCgviewError(e, 'E_EXISTS')) throw e;
      }
      const dir = openDirAt(priv, instance);
      try {
        const old = listDir(dir).filter((e) => !Object.hasOwn(carry, e.name));
        // The old links first: from here on no old program writes the carried maps.
        for (const e of old.filter((x) => x.name.startsWith('link_'))) unlinkAt(dir, e.name);
        for (const e of old.filter((x) => !x.name.startsWith('link_') && !x.isDir)) unlinkAt(dir, e.name);
        // Maps first, links last: the links make it complete (see #inspect).
        for (const m of def.maps) if (!Object.hasOwn(carry, m)) obj.map(m).pinAt(dir, m);
        for (const p of def.programs) {
          this.opts.beforeAttach?.(p);
          const link = obj.program(p).attach();
          try {
            link.pinAt(dir, `link_${p}`);
          } finally {
            link.close();
          }
        }
        for (const m of def.shared) maps[m] ??= objGetAt(dir, m, `map ${m}`)!;
        const replaced = old.length > 0 || Object.keys(carry).length > 0;
        return {
          instance,
          maps,
          start: replaced ? 'replaced' : 'started',
          reasons: [],
          carried: Object.keys(carry),
          startedAt: Date.now(),
        };
      } catch (e) {
        // What this start made goes; the carried maps stay pinned (the old
        // links are gone already, so they are the counters' only copy), for
        // the next start to carry again (see #inspect).
        this.#clear(dir, carry);
        throw e;
      } finally {
        dir.close();
      }
    } catch (e) {
      for (const fd of Object.values(maps)) fd.close();
      throw e;
    }
  }

  /** Stops an instance: unpins its links (detaching the programs) and maps. Logs, never throws. */
  stop(instance: string): void {
    const r = this.#running.get(instance);
    if (r) for (const fd of Object.values(r.maps)) fd.close();
    this.#running.delete(instance);
    for (const fn of this.#stopListeners) fn(instance);
    try {
      const priv = openDir(this.privateDir);
      try {
        requireRootOwned(priv, this.privateDir);
        let dir: Fd;
        try {
          dir = openDirAt(priv, instance);
        } catch {
          return;
        }
        try {
          this.#clear(dir);
        } finally {
          dir.close();
        }
        unlinkAt(priv, instance, true);
        this.log('info', 'collector stopped', { collector: instance });
      } finally {
        priv.close();
      }
    } catch (e) {
      this.log('error', 'cannot stop collector', { collector: instance, error: (e as Error).message });
    }
  }

  /** Stops every instance not in `inUse` (running here or left pinned by an earlier daemon). */
  stopUnused(inUse: Set<string>): string[] {
    const stopped: string[] = [];
    const found = new Set(this.#running.keys());
    try {
      const priv = openDir(this.privateDir);
      try {
        requireRootOwned(priv, this.privateDir);
        for (const e of listDir(priv)) if (e.isDir) found.add(e.name);
      } finally {
        priv.close();
      }
    } catch (e) {
      // No private dir: nothing pinned. One that is not root's: never touched.
      if (!isCgviewError(e, 'E_NOT_FOUND'))
        this.log('error', 'private directory refused', { dir: this.privateDir, error: (e as Error).message });
    }
    for (const inst of found)
      if (!inUse.has(inst)) {
        this.stop(inst);
        stopped.push(inst);
      }
    return stopped;
  }

  /** Per instance: running, adopted, and its programs' run counts (when bpf_stats_enabled). */
  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [inst, r] of this.#running) {
      const progs: Record<string, unknown> = {};
      try {
        const priv = openDir(this.privateDir);
        try {
          const dir = openDirAt(priv, inst);
          try {
            for (const e of listDir(dir)) {
              if (!e.name.startsWith('link_')) continue;
              const l = objGetAt(dir, e.name);
              if (!l) continue;
              try {
                const p = progFdById(linkInfo(l).progId);
                try {
                  const pi = progInfo(p);
                  progs[e.name.slice(5)] = {
                    id: pi.id,
                    runCnt: Number(pi.runCnt),
                    runTimeNs: Number(pi.runTimeNs),
                  };
                } finally {
                  p.close();
                }
              } finally {
                l.close();
              }
            }
          } finally {
            dir.close();
          }
        } finally {
          priv.close();
        }
      } catch (e) {
        progs['error'] = (e as Error).message;
      }
      out[inst] = {
        running: true,
        adopted: r.start === 'adopted',
        // started (nothing was pinned), adopted (the pinned one is this version's), or
        // replaced (it was not: `reasons`; `carried` maps kept their counters)
        start: r.start,
        ...(r.start === 'replaced' ? { reasons: r.reasons, carried: r.carried } : {}),
        since: new Date(r.startedAt).toISOString(),
        programs: progs,
      };
    }
    return out;
  }

  close(): void {
    for (const r of this.#running.values()) for (const fd of Object.values(r.maps)) fd.close();
    this.#running.clear();
  }
}

/** The collectors' private bpffs directory, made (0700) if missing; refused unless on bpffs and root's alone. */
export function openPrivateDir(privateDir: string): Fd {
  let fd: Fd;
  try {
    fd = openDir(privateDir);
  } catch (e) {
    if (!isCgviewError(e, 'E_NOT_FOUND')) throw e;
    const parent = openDir(path.dirname(privateDir));
    try {
      requireBpffs(parent, path.dirname(privateDir));
      mkdirAt(parent, path.basename(privateDir), 0o700);
    } finally {
      parent.close();
    }
    fd = openDir(privateDir);
  }
  try {
    // Collectors' pins are root's alone: a directory someone else could
    // write is refused, never adopted.
    requireBpffs(fd, privateDir);
    requireRootOwned(fd, privateDir);
  } catch (e) {
    fd.close();
    throw e;
  }
  return fd;
}
