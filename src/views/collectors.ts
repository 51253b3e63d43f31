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
import path from 'node:path';
import type { Logger } from '../daemon/log.js';
import { CgviewError, isCgviewError } from '../errors.js';
import {
  BpfObject,
  type Fd,
  linkInfo,
  listDir,
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
import type { CollectorHost } from './registry.js';

interface CollectorDef {
  object: string;
  /** Programs to attach (all of them are tracing programs). */
  programs: string[];
  /** Maps to pin; `shared` ones are reused by the view objects. */
  maps: string[];
  shared: string[];
  /** Load-time settings from the hierarchy id. */
  rodata: (hierarchyId: number) => Record<string, Buffer>;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

const DEFS: Record<string, CollectorDef> = {
  sched_lat: {
    object: 'sched_lat_collector.bpf.o',
    // Attached in this order: the switch and migration programs see every
    // task before any wait can start, so no start is left for them to miss.
    programs: ['sl_switch', 'sl_migrate', 'sl_rmdir', 'sl_wakeup', 'sl_wakeup_new'],
    maps: ['sl_cgrp', 'sl_cg_v1', 'sl_task', 'sl_cpu'],
    shared: ['sl_cgrp', 'sl_cg_v1'],
    rodata: (h) => ({ v1_hierarchy_id: u32(h) }),
  },
};

interface Running {
  instance: string;
  /** Pinned maps the views reuse, by map name. */
  maps: Record<string, Fd>;
  adopted: boolean;
  startedAt: number;
}

export function collectorInstance(collector: string, hierarchyId: number): string {
  return `${collector}@${hierarchyId}`;
}

function parseInstance(instance: string): { name: string; def: CollectorDef; hierarchyId: number } {
  const m = /^([a-z_]+)@(\d+)$/.exec(instance);
  const def = m ? DEFS[m[1]!] : undefined;
  if (!m || !def) throw new CgviewError('E_NOT_FOUND', `unknown collector ${instance}`);
  return { name: m[1]!, def, hierarchyId: Number(m[2]) };
}

export class Collectors implements CollectorHost {
  readonly #running = new Map<string, Running>();

  constructor(
    readonly privateDir: string,
    readonly bpfDir: string,
    readonly log: Logger,
  ) {}

  /** The private directory, made on first use (its parent must be bpffs). */
  #privateFd(): Fd {
    let fd: Fd;
    try {
      fd = openDir(this.privateDir);
    } catch (e) {
      if (!isCgviewError(e, 'E_NOT_FOUND')) throw e;
      const parent = openDir(path.dirname(this.privateDir));
      try {
        requireBpffs(parent, path.dirname(this.privateDir));
        mkdirAt(parent, path.basename(this.privateDir), 0o700);
      } finally {
        parent.close();
      }
      fd = openDir(this.privateDir);
    }
    try {
      // Collectors' pins are root's alone: a directory someone else could
      // write is refused, never adopted.
      requireBpffs(fd, this.privateDir);
      requireRootOwned(fd, this.privateDir);
    } catch (e) {
      fd.close();
      throw e;
    }
    return fd;
  }

  running(instance: string): boolean {
    return this.#running.has(instance);
  }

  /** Maps a view object must reuse; starts (or adopts) the collector instance. */
  acquire(instance: string): Record<string, Fd> {
    const have = this.#running.get(instance);
    if (have) return have.maps;
    const { def, hierarchyId } = parseInstance(instance);
    const priv = this.#privateFd();
    try {
      const adopted = this.#adopt(priv, instance, def);
      if (adopted) {
        this.#running.set(instance, adopted);
        this.log('info', 'collector adopted', { collector: instance });
        return adopted.maps;
      }
      const started = this.#start(priv, instance, def, hierarchyId);
      this.#running.set(instance, started);
      this.log('info', 'collector started', { collector: instance });
      return started.maps;
    } finally {
      priv.close();
    }
  }

  /** Reuses pins left by an earlier daemon when every link and map is there. */
  #adopt(priv: Fd, instance: string, def: CollectorDef): Running | null {
    let dir: Fd;
    try {
      dir = openDirAt(priv, instance);
    } catch {
      return null;
    }
    const maps: Record<string, Fd> = {};
    try {
      requireRootOwned(dir, `${this.privateDir}/${instance}`);
      const entries = listDir(dir);
      const names = new Set(entries.filter((e) => e.isFile).map((e) => e.name));
      const complete =
        entries.length === names.size &&
        def.programs.every((p) => names.has(`link_${p}`)) &&
        def.maps.every((m) => names.has(m));
      if (complete) {
        for (const m of def.shared) {
          const fd = objGetAt(dir, m, `map ${m}`);
          if (!fd) break;
          maps[m] = fd;
        }
        if (def.shared.every((m) => maps[m])) return { instance, maps, adopted: true, startedAt: Date.now() };
      }
      // A crash while starting (or anything odd): clear the leftovers and start afresh.
      this.log('warn', 'collector pins incomplete, starting afresh', { collector: instance });
      for (const fd of Object.values(maps)) fd.close();
      this.#clear(dir);
      return null;
    } catch (e) {
      for (const fd of Object.values(maps)) fd.close();
      throw e;
    } finally {
      dir.close();
    }
  }

  /** Unpins every file of an instance directory; anything else is logged and left. */
  #clear(dir: Fd): void {
    for (const e of listDir(dir)) {
      if (e.isDir) {
        this.log('warn', 'unexpected directory in a collector directory, left alone', { name: e.name });
        continue;
      }
      unlinkAt(dir, e.name);
    }
  }

  #start(priv: Fd, instance: string, def: CollectorDef, hierarchyId: number): Running {
    const obj = BpfObject.load(path.join(this.bpfDir, def.object), { rodata: def.rodata(hierarchyId) });
    try {
      try {
        mkdirAt(priv, instance, 0o700);
      } catch (e) {
        if (!isCgviewError(e, 'E_EXISTS')) throw e;
      }
      const dir = openDirAt(priv, instance);
      try {
        // Maps first, links last: the links make it complete (see #adopt).
        for (const m of def.maps) obj.map(m).pinAt(dir, m);
        for (const p of def.programs) {
          const link = obj.program(p).attach();
          try {
            link.pinAt(dir, `link_${p}`);
          } finally {
            link.close();
          }
        }
        const maps: Record<string, Fd> = {};
        try {
          for (const m of def.shared) maps[m] = objGetAt(dir, m, `map ${m}`)!;
        } catch (e) {
          for (const fd of Object.values(maps)) fd.close();
          throw e;
        }
        return { instance, maps, adopted: false, startedAt: Date.now() };
      } catch (e) {
        this.#clear(dir);
        throw e;
      } finally {
        dir.close();
      }
    } finally {
      // Pinned links keep the programs, pinned maps the data.
      obj.close();
    }
  }

  /** Stops an instance: unpins its links (detaching the programs) and maps. Logs, never throws. */
  stop(instance: string): void {
    const r = this.#running.get(instance);
    if (r) for (const fd of Object.values(r.maps)) fd.close();
    this.#running.delete(instance);
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
        adopted: r.adopted,
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
