/**
 * The watch registry: one inotify instance for every tree, and what each
 * watch descriptor stands for. The kernel gives one wd per directory, so
 * trees whose cgroups overlap share a wd (one meaning per tree), and a
 * directory watched again (moved, say) gets its old wd, whose old meaning
 * for the same tree and side goes.
 */
import { isCgviewError } from '../errors.js';
import { ENOSPC, IN_IGNORED } from '../kernel/abi.js';
import { type Fd, Inotify, type InotifyEvent, showPath } from '../kernel/index.js';
import type { WatchMeaning } from '../tree/dirty.js';
import { isWithin } from '../tree/paths.js';

export type Side = 'cgroup' | 'tree';

/** One tree's meaning of a wd; `owner` is the tree (any object standing for it). */
export interface Watch<T> extends WatchMeaning {
  owner: T;
}

export interface WatchHooks<T> {
  /** A batch of events, each with what its wd stands for in each tree ([] for a wd we no longer know). */
  events(batch: Array<{ ev: InotifyEvent; watches: Watch<T>[] }>, received: number): void;
  /** inotify_add_watch failed with ENOSPC (fs.inotify.max_user_watches). */
  limitHit(): void;
  readError(e: Error): void;
  debug(msg: string, fields: Record<string, unknown>): void;
}

export class WatchRegistry<T> {
  readonly #ino: Inotify;
  readonly #byWd = new Map<number, Watch<T>[]>();
  /** owner → side → rel → wd */
  readonly #byOwner = new Map<T, { cgroup: Map<string, number>; tree: Map<string, number> }>();
  readonly #hooks: WatchHooks<T>;

  constructor(hooks: WatchHooks<T>) {
    this.#hooks = hooks;
    this.#ino = new Inotify((evs) => this.#onEvents(evs), hooks.readError);
  }

  /** Watches on the kernel side (one per directory, whatever the number of trees sharing it). */
  get count(): number {
    return this.#ino.watchCount;
  }

  #side(owner: T, side: Side): Map<string, number> {
    let o = this.#byOwner.get(owner);
    if (!o) {
      o = { cgroup: new Map(), tree: new Map() };
      this.#byOwner.set(owner, o);
    }
    return o[side];
  }

  has(owner: T, side: Side, rel: string): boolean {
    return this.#byOwner.get(owner)?.[side].has(rel) ?? false;
  }

  rels(owner: T, side: Side): string[] {
    return [...(this.#byOwner.get(owner)?.[side].keys() ?? [])];
  }

  /** Adds a watch (by path, or through an open directory); false when it could not be (gone, or the watch limit). */
  add(owner: T, side: Side, rel: string, p: string | Fd, mask: number): boolean {
    let wd: number;
    try {
      wd = typeof p === 'string' ? this.#ino.add(p, mask) : this.#ino.addFd(p, mask);
    } catch (e) {
      if (isCgviewError(e) && e.errno === ENOSPC) this.#hooks.limitHit();
      else
        this.#hooks.debug('watch failed', {
          path: typeof p === 'string' ? showPath(p) : p.what,
          error: (e as Error).message,
        });
      return false;
    }
    const list = (this.#byWd.get(wd) ?? []).filter((o) => {
      if (o.owner !== owner || o.side !== side) return true;
      const map = this.#side(o.owner, o.side);
      if (map.get(o.rel) === wd) map.delete(o.rel);
      return false;
    });
    list.push({ owner, side, rel });
    this.#byWd.set(wd, list);
    this.#side(owner, side).set(rel, wd);
    return true;
  }

  /** Drops one tree's watch of `rel` (with `subtree`, of everything below too); the kernel watch goes when no tree uses it. */
  remove(owner: T, side: Side, rel: string, subtree = false): void {
    const map = this.#byOwner.get(owner)?.[side];
    if (!map) return;
    for (const r of subtree ? [...map.keys()].filter((r) => isWithin(rel, r)) : [rel]) {
      const wd = map.get(r);
      if (wd === undefined) continue;
      map.delete(r);
      const list = (this.#byWd.get(wd) ?? []).filter(
        (o) => !(o.owner === owner && o.side === side && o.rel === r),
      );
      if (list.length) this.#byWd.set(wd, list);
      else {
        this.#byWd.delete(wd);
        this.#ino.remove(wd);
      }
    }
  }

  /** Drops every watch of one tree. */
  removeAll(owner: T): void {
    this.remove(owner, 'cgroup', '', true);
    this.remove(owner, 'tree', '', true);
    this.#byOwner.delete(owner);
  }

  #onEvents(events: InotifyEvent[]): void {
    const batch: Array<{ ev: InotifyEvent; watches: Watch<T>[] }> = [];
    for (const ev of events) {
      const ws = this.#byWd.get(ev.wd) ?? [];
      if (ev.mask & IN_IGNORED) {
        // The kernel dropped the watch (its directory is gone).
        this.#byWd.delete(ev.wd);
        this.#ino.dropped(ev.wd);
        for (const w of ws) {
          const map = this.#side(w.owner, w.side);
          if (map.get(w.rel) === ev.wd) map.delete(w.rel);
        }
        continue;
      }
      batch.push({ ev, watches: ws });
    }
    this.#hooks.events(batch, events.length);
  }

  close(): void {
    this.#ino.close();
    this.#byWd.clear();
    this.#byOwner.clear();
  }
}
