/**
 * Root's fast path for `cgview top`: the sched_lat and sched_lat_tree
 * samples of every cgroup of a tree in one go (src/views/bulk.ts: one
 * cgroup-iterator walk and one batched map lookup), instead of one view file
 * per cgroup, from the collector maps the daemon pinned in its private bpffs
 * directory (`<privateDir>/sched_lat@<hierarchy id>/sl_cgrp`, `sl_cg_v1`,
 * src/views/collectors.ts). The samples are the ones the files would give
 * (test/views/bulk.test.ts); top falls back to the files for anything this
 * cannot serve: not root, no private directory in the index, one that is not
 * trusted, a collector that does not run, a cgroup the walk did not see.
 *
 * Trust: the private directory's path comes from the daemon's public index
 * (beside the socket). It is used only when the index file is root's and
 * writable by root alone, and the directory (opened without following
 * symlinks) is on bpffs, root's, and writable by root alone — as the daemon
 * itself requires of it before adopting pins there.
 */
import fs from 'node:fs';
import { hierarchyIdOf, mountOf } from '../cgroup/hierarchy.js';
import {
  type Fd,
  mapInfo,
  objGetAt,
  openDir,
  openDirAt,
  requireBpffs,
  requireRootOwned,
} from '../kernel/index.js';
import type { ViewSample } from '../stats/keys.js';
import { type BulkCollectors, type BulkReader, bulkReader } from '../views/bulk.js';
import { collectorInstance } from '../views/collectors.js';

/** Built-in views with a bulk path that top reads this way. */
export const TOP_BULK_VIEWS: ReadonlySet<string> = new Set(['sched_lat', 'sched_lat_tree']);

/** The collector maps the sched_lat bulk object reuses (src/views/bulk.ts SHARED). */
const MAPS: Readonly<Record<string, readonly string[]>> = { sched_lat: ['sl_cgrp', 'sl_cg_v1'] };

/**
 * A BulkCollectors over the maps a daemon pinned: each sharedMaps() call
 * opens the pins again and compares the maps' ids with the ones it holds,
 * so a collector the daemon restarted (new maps) is picked up (a new object:
 * the reader reloads its helper), and one it stopped gives undefined.
 */
export class PinnedCollectors implements BulkCollectors {
  readonly #held = new Map<string, { ids: number[]; maps: Record<string, Fd> }>();
  readonly #stops: Array<(instance: string) => void> = [];

  constructor(readonly privateDir: string) {}

  sharedMaps(instance: string): Readonly<Record<string, Fd>> | undefined {
    const names = MAPS[instance.replace(/@\d+$/, '')];
    let fresh: Record<string, Fd> | undefined;
    try {
      if (!names) return undefined;
      const priv = openDir(this.privateDir);
      try {
        requireBpffs(priv, this.privateDir);
        requireRootOwned(priv, this.privateDir);
        const dir = openDirAt(priv, instance);
        try {
          requireRootOwned(dir, `${this.privateDir}/${instance}`);
          fresh = {};
          for (const n of names) {
            const fd = objGetAt(dir, n, `map ${n}`);
            if (!fd) throw new Error(`no map ${n}`);
            fresh[n] = fd;
          }
        } finally {
          dir.close();
        }
      } finally {
        priv.close();
      }
    } catch {
      for (const fd of Object.values(fresh ?? {})) fd.close();
      this.#drop(instance);
      return undefined;
    }
    const ids = names!.map((n) => mapInfo(fresh![n]!).id);
    const have = this.#held.get(instance);
    if (have?.ids.every((id, i) => id === ids[i])) {
      for (const fd of Object.values(fresh)) fd.close();
      return have.maps;
    }
    this.#drop(instance);
    this.#held.set(instance, { ids, maps: fresh });
    return fresh;
  }

  onStop(fn: (instance: string) => void): void {
    this.#stops.push(fn);
  }

  #drop(instance: string): void {
    const have = this.#held.get(instance);
    if (!have) return;
    this.#held.delete(instance);
    for (const fn of this.#stops) fn(instance);
    for (const fd of Object.values(have.maps)) fd.close();
  }

  close(): void {
    for (const inst of [...this.#held.keys()]) this.#drop(inst);
  }
}

/** Root's and writable by root alone (fstat of the open file, so that it is the file read). */
function rootsAlone(st: fs.Stats): boolean {
  return st.uid === 0 && (st.mode & 0o022) === 0;
}

/**
 * The private directory named in the index, if top may use it: top runs as
 * root, the index file is root's alone, and the directory is on bpffs and
 * root's alone. Undefined otherwise (top reads the files).
 */
export function trustedPrivateDir(indexFile: string, privateDir: unknown): string | undefined {
  if (typeof privateDir !== 'string' || !privateDir.startsWith('/')) return undefined;
  if (process.geteuid?.() !== 0) return undefined;
  try {
    const fd = fs.openSync(indexFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      if (!rootsAlone(fs.fstatSync(fd))) return undefined;
    } finally {
      fs.closeSync(fd);
    }
    const d = openDir(privateDir);
    try {
      requireBpffs(d, privateDir);
      requireRootOwned(d, privateDir);
    } finally {
      d.close();
    }
    return privateDir;
  } catch {
    return undefined;
  }
}

/**
 * One tree's bulk source: which file names of its directories are which
 * built-in bulk view (from its inherit list), and one read of each per
 * refresh, made at the first cgroup that needs it.
 */
export class TreeBulk {
  /** File name → built-in view. */
  readonly files: ReadonlyMap<string, string>;
  readonly #readers = new Map<string, BulkReader | null>();
  #samples = new Map<string, Map<string, ViewSample> | null>();
  #broken = false;
  /** Bulk reads made (one per view per refresh), for tests and the benchmark. */
  reads = 0;
  /** Bulk-able files the sampler wanted this refresh and the last; whether this refresh walks. */
  #wanted = 0;
  #lastWanted = 0;
  #use = true;
  /** Force the walk whatever the counts (tests). */
  always = false;

  constructor(
    readonly collectors: BulkCollectors,
    readonly cgroup: string,
    files: ReadonlyMap<string, string>,
  ) {
    this.files = files;
  }

  /**
   * A new refresh: the next lookup reads again. One walk costs about 1 µs
   * per cgroup of the tree (10,000: ~11 ms), one file ~26 µs: the walk is
   * made only when the last refresh wanted at least a sixteenth of the
   * tree's `cgroups` from bulk files (at least 32); else the files are read.
   * Most refreshes of a big idle host read few sched files (idle subtrees
   * are kept, src/top/source.ts), and those stay on files.
   */
  refresh(cgroups: number): void {
    this.#samples = new Map();
    this.#lastWanted = this.#wanted;
    this.#wanted = 0;
    this.#use = this.always || (this.#lastWanted >= 32 && this.#lastWanted * 16 >= cgroups);
  }

  /** The sampler is about to read a view file of this tree (counted for the next refresh's choice). */
  want(file: string): boolean {
    if (!this.files.has(file)) return false;
    this.#wanted++;
    return this.#use;
  }

  /**
   * The bulk sample of `id` in view `file` (a file name of this tree), or
   * undefined: not a bulk file, the collector does not run, the cgroup not
   * in this refresh's walk, or the bulk path failed (then files from here on).
   */
  sample(file: string, id: string): ViewSample | undefined {
    const view = this.files.get(file);
    if (view === undefined || this.#broken) return undefined;
    let got = this.#samples.get(view);
    if (got === undefined) {
      got = null;
      try {
        let r = this.#readers.get(view);
        if (r === undefined) {
          const m = mountOf(this.cgroup);
          const hid = m.version === 2 ? 0 : hierarchyIdOf(m);
          r = bulkReader(this.collectors, view, hid, { root: this.cgroup });
          this.#readers.set(view, r);
        }
        if (r) {
          got = r.read();
          this.reads++;
          // Empty: the collector does not run (or the tree's cgroup is gone): the files say what is there.
          if (got.size === 0) got = null;
        }
      } catch {
        this.#broken = true;
        got = null;
      }
      this.#samples.set(view, got);
    }
    return got?.get(id);
  }

  close(): void {
    for (const r of this.#readers.values()) r?.close();
    this.#readers.clear();
  }
}

/** The instance name the sched_lat collector runs under for a hierarchy (for messages and tests). */
export function schedLatInstance(hierarchyId: number): string {
  return collectorInstance('sched_lat', hierarchyId);
}
