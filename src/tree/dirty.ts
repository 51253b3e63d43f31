/**
 * Dirty scopes: which parts of a tree an inotify event makes worth
 * reconciling again, and how a batch of them folds into the fewest
 * reconciles. Pure: the event, what its watch stands for and the tree's
 * configuration in, scopes (and watches to forget) out; no I/O.
 */
import {
  IN_ATTRIB,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_ISDIR,
  IN_MOVED_FROM,
  IN_MOVED_TO,
} from '../kernel/abi.js';
import { isWithin, parentRel } from './paths.js';
import type { Mode } from './state.js';

/** 'deep': the subtree; 'shallow': the directory's own entries (its files, owner, mode). */
export type Depth = 'deep' | 'shallow';

/** 'names': only the given view files of every directory mirrored already (a pin or unpin of an inherited view). */
export interface DirtyScope {
  rel: string;
  depth: Depth | 'names';
  names?: string[];
}

/** What a watch descriptor stands for in one tree. */
export interface WatchMeaning {
  side: 'cgroup' | 'tree';
  /** Cgroup-space path relative to the tree's root. */
  rel: string;
}

/** inotify mask bits, from abi.ts (no FFI there: this file stays pure). */
export const EV = {
  ATTRIB: IN_ATTRIB,
  MOVED_FROM: IN_MOVED_FROM,
  MOVED_TO: IN_MOVED_TO,
  CREATE: IN_CREATE,
  DELETE: IN_DELETE,
  DELETE_SELF: IN_DELETE_SELF,
  ISDIR: IN_ISDIR,
} as const;

export interface EventView {
  mask: number;
  /** Byte-string name ('' for the watched directory itself). */
  name: string;
}

export interface TreeFacts {
  mode: Mode;
  /** Cgroup-space key of a tree entry's name (tree names are encoded, see paths.ts). */
  childKey(treeName: string): string;
  /** Names of the view files that belong in directory `rel`. */
  viewNames(rel: string): string[];
  /** True when the cgroup `rel` is watched (so the daemon follows it and made its directory). */
  cgroupWatched(rel: string): boolean;
}

export interface EventEffect {
  scopes: DirtyScope[];
  /** Watches to forget at once (a directory gone or moved away), so a new one of the same name gets its own. */
  unwatch?: { rel: string; subtree: boolean };
}

/** One event as one tree sees it. */
export function eventScopes(w: WatchMeaning, ev: EventView, t: TreeFacts): EventEffect {
  const { mask } = ev;
  if (ev.name === '') {
    // The watched directory itself went away: its parent's reconcile handles it.
    if (mask & EV.DELETE_SELF) return { scopes: [{ rel: parentRel(w.rel) ?? '', depth: 'shallow' }] };
    // Its owner or mode changed (delegation, revocation): its directory and views
    // take the new owner. The tree's own root cgroup too: the root directory
    // stays root's, but the views in it are the cgroup owner's (reconcile.ts).
    if (mask & EV.ATTRIB && w.side === 'cgroup') return { scopes: [{ rel: w.rel, depth: 'shallow' }] };
    return { scopes: [] };
  }
  // Attributes of an entry: a child directory's own watch reports it too
  // (above); files in a cgroup (cgroup.procs, ...) do not matter.
  if (mask & EV.ATTRIB && !(mask & ~(EV.ATTRIB | EV.ISDIR))) return { scopes: [] };
  const key = w.side === 'tree' ? t.childKey(ev.name) : ev.name;
  const child = w.rel === '' ? key : `${w.rel}/${key}`;
  const created = (mask & (EV.CREATE | EV.MOVED_TO)) !== 0;
  const isDir = (mask & EV.ISDIR) !== 0;
  // A deleted directory was empty, so only its own watch goes; a moved one takes its subtree's.
  const unwatch =
    isDir && mask & (EV.DELETE | EV.MOVED_FROM)
      ? { rel: child, subtree: (mask & EV.MOVED_FROM) !== 0 }
      : undefined;
  const out = (scopes: DirtyScope[]): EventEffect => (unwatch ? { scopes, unwatch } : { scopes });
  if (w.side === 'cgroup') return out(isDir ? [{ rel: child, depth: 'deep' }] : []);
  if (isDir) {
    // A directory made in the tree: by us for a cgroup we follow (nothing to do in
    // auto mode), or by a user (manual mode: S2 check). One removed: re-mirror if due.
    const ours = created && t.mode === 'auto' && t.cgroupWatched(child);
    return out(ours ? [] : [{ rel: child, depth: 'deep' }]);
  }
  // Files: a view file removed, or renamed over, must be re-pinned; a new
  // entry under a name that is not a view may be a symlink to remove. A
  // file created under a view's name is our own pin.
  const isView = t.viewNames(w.rel).includes(ev.name);
  const due = isView ? !(mask & EV.CREATE) : created;
  return out(due ? [{ rel: w.rel, depth: 'shallow' }] : []);
}

/**
 * Adds a scope to a tree's pending ones (rel → scope). A deep scope wins
 * over a shallow one of the same directory; 'names' scopes of the root
 * merge their names.
 */
export function addScope(pending: Map<string, DirtyScope>, s: DirtyScope): void {
  const have = pending.get(s.rel);
  if (!have) {
    pending.set(s.rel, s.names ? { ...s, names: [...s.names] } : { ...s });
    return;
  }
  if (have.depth === 'deep') return;
  if (s.depth === 'deep') pending.set(s.rel, { rel: s.rel, depth: 'deep' });
  else if (have.depth === 'names' && s.depth === 'names')
    have.names = [...new Set([...(have.names ?? []), ...(s.names ?? [])])];
  else if (have.depth !== s.depth) pending.set(s.rel, { rel: s.rel, depth: 'deep' }); // shallow + names
}

/** The reconciles a batch of scopes needs: none covered by a deep one above it, parents first. */
export function foldScopes(pending: Map<string, DirtyScope>): DirtyScope[] {
  const scopes = [...pending.values()];
  const deep = scopes.filter((s) => s.depth === 'deep').map((s) => s.rel);
  const covered = (s: DirtyScope) =>
    deep.some((d) => (d !== s.rel && isWithin(d, s.rel)) || (d === s.rel && s.depth !== 'deep'));
  return scopes.filter((s) => !covered(s));
}
