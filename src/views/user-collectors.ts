/**
 * User collectors: the programs of a user view object that are not
 * `iter/cgroup` (tp_btf, fentry, kprobe, ...), with the object's maps. They
 * are the object's collector, run the way the built-in ones are
 * (collectors.ts): loaded and attached once per object and hierarchy when
 * the first view of the object is loaded, their links and maps pinned in
 * the private directory (so they survive a daemon restart and are adopted by
 * the next daemon), every view link of the object created on those maps
 * (map reuse before load), and stopped when no pin names a view of the
 * object any more.
 *
 * The instance of a user collector is "u_<sha256 of the object>@<hierarchy
 * id>": the object is the stored copy (objstore.ts) named by its content,
 * so an instance never stands for two different objects. Its pins:
 * `link_<program>` and `map_<map name>` (a '.' of an internal map's name,
 * e.g. "0123abcd.bss", as %2E: bpffs refuses dots). A collector that does not
 * load leaves nothing: it is loaded before anything is pinned, and whatever
 * a failed attach pinned is removed.
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
  requireRootOwned,
  unlinkAt,
} from '../kernel/index.js';
import { describeObjectFile } from './build.js';
import { type CollectorStart, Collectors, type CollectorsOptions, openPrivateDir } from './collectors.js';
import { isStoredPath } from './objstore.js';

/** `const volatile __u32 v1_hierarchy_id` in a user object: set to the tree's hierarchy id (0 for v2) before load. */
export const HIERARCHY_RODATA = 'v1_hierarchy_id';

const INSTANCE = /^u_([0-9a-f]{64})@(\d+)$/;

/** Collector name of each stored object with a collector part (filled by userCollectorOf). */
const objects = new Map<string, string>();
/** Stored object → its collector name, or null when it has only views (content-addressed: never stale). */
const known = new Map<string, string | null>();

/**
 * The collector of a user view object: `{ collector: 'u_<sha256>' }` when
 * the object (a stored copy) has programs other than iter/cgroup, else {}.
 * An object that cannot be read names none (its load fails later, saying why).
 */
export function userCollectorOf(object: string): { collector?: string } {
  if (!isStoredPath(object)) return {};
  let name = known.get(object);
  if (name === undefined) {
    try {
      const d = describeObjectFile(object);
      name = d.programs.some((p) => p.kind === 'collector')
        ? `u_${path.basename(object).slice(0, 64)}`
        : null;
    } catch {
      return {};
    }
    known.set(object, name);
    if (name) objects.set(name, object);
  }
  return name ? { collector: name } : {};
}

export function isUserInstance(instance: string): boolean {
  return INSTANCE.test(instance);
}

/** A map's pin name in an instance directory. */
export function mapPinName(map: string): string {
  return `map_${map.replace(/%/g, '%25').replace(/\./g, '%2E')}`;
}

interface UserRunning {
  object: string;
  maps: Record<string, Fd>;
  start: CollectorStart;
  startedAt: number;
  programs: string[];
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** The built-in collectors (collectors.ts) and the user ones, behind one CollectorHost. */
export class CollectorsWithUser extends Collectors {
  readonly #user = new Map<string, UserRunning>();

  constructor(privateDir: string, bpfDir: string, log: Logger, opts: CollectorsOptions = {}) {
    super(privateDir, bpfDir, log, opts);
  }

  override running(instance: string): boolean {
    return isUserInstance(instance) ? this.#user.has(instance) : super.running(instance);
  }

  override release(instance: string): void {
    if (!isUserInstance(instance)) {
      super.release(instance);
      return;
    }
    const r = this.#user.get(instance);
    if (!r) return;
    if (r.start === 'started') {
      this.stop(instance);
      return;
    }
    for (const fd of Object.values(r.maps)) fd.close();
    this.#user.delete(instance);
  }

  override stop(instance: string): void {
    const r = this.#user.get(instance);
    if (r) for (const fd of Object.values(r.maps)) fd.close();
    this.#user.delete(instance);
    super.stop(instance);
  }

  override close(): void {
    for (const r of this.#user.values()) for (const fd of Object.values(r.maps)) fd.close();
    this.#user.clear();
    super.close();
  }

  /**
   * The maps of a user object's collector, by map name: every map of the
   * object (the views read what the collector writes, globals included).
   * Starts the collector, or adopts the one pinned by an earlier daemon when
   * its programs are the ones this object loads. Throws E_VERIFIER (the
   * whole log in `.log`) and what BpfObject.load or attaching throws; then
   * nothing of it is left.
   */
  override acquire(instance: string): Record<string, Fd> {
    const m = INSTANCE.exec(instance);
    if (!m) return super.acquire(instance);
    const have = this.#user.get(instance);
    if (have) return have.maps;
    const object = objects.get(`u_${m[1]}`);
    if (!object) throw new CgviewError('E_NOT_FOUND', `unknown collector ${instance}`);
    const hierarchyId = Number(m[2]);
    const d = describeObjectFile(object);
    const programs = d.programs.filter((p) => p.kind === 'collector').map((p) => p.name);
    const rodata = d.rodata.includes(HIERARCHY_RODATA) ? { [HIERARCHY_RODATA]: u32(hierarchyId) } : undefined;
    let obj: BpfObject;
    try {
      obj = BpfObject.load(object, { programs, ...(rodata ? { rodata } : {}) });
    } catch (e) {
      if (isCgviewError(e))
        throw new CgviewError(e.code, `collector of ${object}: ${e.message}`, {
          cause: e,
          ...(e.errno !== undefined ? { errno: e.errno } : {}),
          path: object,
          ...(e.log !== undefined ? { log: e.log } : {}),
          ...(e.hint !== undefined ? { hint: e.hint } : {}),
        });
      throw e;
    }
    try {
      const priv = openPrivateDir(this.privateDir);
      try {
        const adopted = this.#adopt(priv, instance, obj, programs);
        const r: UserRunning = {
          object,
          maps: adopted ?? this.#start(priv, instance, obj, programs),
          start: adopted ? 'adopted' : 'started',
          startedAt: Date.now(),
          programs,
        };
        this.#user.set(instance, r);
        this.log('info', adopted ? 'collector adopted' : 'collector started', {
          collector: instance,
          object,
          programs,
        });
        return r.maps;
      } finally {
        priv.close();
      }
    } finally {
      obj.close();
    }
  }

  /** The private directory (as Collectors makes it: on bpffs, root's alone). */

  /**
   * The maps pinned for `instance` by an earlier daemon, if its pins are
   * complete and exactly this object's (each link runs the program of the
   * same tag); else null, and whatever is there is removed.
   */
  #adopt(priv: Fd, instance: string, fresh: BpfObject, programs: string[]): Record<string, Fd> | null {
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
      const want = new Map<string, string>([
        ...programs.map((p): [string, string] => [`link_${p}`, p]),
        ...[...fresh.maps.keys()].map((n): [string, string] => [mapPinName(n), n]),
      ]);
      let ok = entries.length === want.size && entries.every((e) => e.isFile && want.has(e.name));
      for (const p of ok ? programs : []) {
        const l = objGetAt(dir, `link_${p}`);
        if (!l) {
          ok = false;
          break;
        }
        try {
          const pf = progFdById(linkInfo(l).progId);
          try {
            if (progInfo(pf).tag !== fresh.program(p).info().tag) ok = false;
          } finally {
            pf.close();
          }
        } catch {
          ok = false;
        } finally {
          l.close();
        }
      }
      for (const n of ok ? fresh.maps.keys() : []) {
        const fd = objGetAt(dir, mapPinName(n), `map ${n}`);
        if (!fd) {
          ok = false;
          break;
        }
        maps[n] = fd;
      }
      if (ok) return maps;
      for (const fd of Object.values(maps)) fd.close();
      this.log(
        'warn',
        'collector pins are not this object’s (a start that did not finish?): starting afresh',
        {
          collector: instance,
          found: entries.map((e) => e.name),
        },
      );
      this.#clear(dir);
      return null;
    } catch (e) {
      for (const fd of Object.values(maps)) fd.close();
      throw e;
    } finally {
      dir.close();
    }
  }

  #clear(dir: Fd): void {
    for (const e of listDir(dir)) if (!e.isDir) unlinkAt(dir, e.name);
  }

  /** Pins the maps, then attaches and pins each program; on failure removes all it made. */
  #start(priv: Fd, instance: string, obj: BpfObject, programs: string[]): Record<string, Fd> {
    try {
      mkdirAt(priv, instance, 0o700);
    } catch (e) {
      if (!isCgviewError(e, 'E_EXISTS')) throw e;
    }
    const dir = openDirAt(priv, instance);
    const maps: Record<string, Fd> = {};
    try {
      for (const [n, m] of obj.maps) m.pinAt(dir, mapPinName(n));
      for (const p of programs) {
        this.opts.beforeAttach?.(p);
        const link = obj.program(p).attach();
        try {
          link.pinAt(dir, `link_${p}`);
        } finally {
          link.close();
        }
      }
      for (const n of obj.maps.keys()) maps[n] = objGetAt(dir, mapPinName(n), `map ${n}`)!;
      return maps;
    } catch (e) {
      for (const fd of Object.values(maps)) fd.close();
      try {
        this.#clear(dir);
        unlinkAt(priv, instance, true);
      } catch (e2) {
        this.log('error', 'cannot remove a failed collector start', {
          collector: instance,
          error: (e2 as Error).message,
        });
      }
      throw e;
    } finally {
      dir.close();
    }
  }

  override status(): Record<string, unknown> {
    const out = super.status();
    for (const [inst, r] of this.#user) {
      const progs: Record<string, unknown> = {};
      try {
        const priv = openDir(this.privateDir);
        try {
          const dir = openDirAt(priv, inst);
          try {
            for (const p of r.programs) {
              const l = objGetAt(dir, `link_${p}`);
              if (!l) continue;
              try {
                const pf = progFdById(linkInfo(l).progId);
                try {
                  const pi = progInfo(pf);
                  progs[p] = { id: pi.id, runCnt: Number(pi.runCnt), runTimeNs: Number(pi.runTimeNs) };
                } finally {
                  pf.close();
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
        user: true,
        object: r.object,
        adopted: r.start === 'adopted',
        start: r.start,
        since: new Date(r.startedAt).toISOString(),
        programs: progs,
      };
    }
    return out;
  }
}
