/**
 * `cgview cat`: the path of each culprit cgroup of a `sched_culprits` view
 * (docs/cpu-views.md). The view prints cgroup ids (`culprit_<id>_ns_total`);
 * an id is the inode number of the cgroup's directory in its hierarchy, so
 * the client finds the paths by walking the hierarchy the view's tree
 * mirrors, from its mount point: directories only (cgroupfs has no
 * symlinks; none is followed), breadth first, stopping once every id is
 * found or after MAX_DIRS directories. Ids are per hierarchy: only the view's
 * own hierarchy is walked. Byte-string paths (latin1), as elsewhere in the CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseMountinfo } from '../kernel/features.js';
import { cgroupForTreeDir } from '../tree/paths.js';
import type { RootsIndex } from '../tree/state.js';

/** Most cgroup directories one lookup walks. */
export const MAX_DIRS = 100_000;

const CULPRIT = /^culprit_(\d+)_ns_total: /;

const bp = (s: string) => Buffer.from(s, 'latin1');

/** The ids of the culprit lines of a view's output (none for other views). */
export function culpritIds(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    const m = CULPRIT.exec(l);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** The mount point of the cgroup hierarchy (v2 or v1) a cgroup directory is in; null when none. */
export function cgroupMountOf(cgroupDir: string, mountinfo?: string): string | null {
  let best: string | null = null;
  const text = mountinfo ?? fs.readFileSync('/proc/self/mountinfo', 'latin1');
  for (const m of parseMountinfo(text)) {
    if ((m.fstype !== 'cgroup2' && m.fstype !== 'cgroup') || m.root !== '/') continue;
    const mp = m.mountPoint;
    if (
      (cgroupDir === mp || cgroupDir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) &&
      mp.length > (best?.length ?? -1)
    )
      best = mp;
  }
  return best;
}

/** The cgroup directory a view file's tree directory mirrors, from the public index of trees. */
export function cgroupOfViewFile(file: string, index: RootsIndex | null): string | null {
  if (!index) return null;
  const dir = path.dirname(file);
  for (const r of index.roots) {
    const cg = cgroupForTreeDir(r, dir);
    if (cg !== null) return cg;
  }
  return null;
}

/**
 * Paths (relative to the mount, '/' for the root) of the cgroups with the
 * given ids under `mount`. Ids not found are left out.
 */
export function cgroupPaths(mount: string, ids: Iterable<string>): Map<string, string> {
  const want = new Set(ids);
  const found = new Map<string, string>();
  const queue: string[] = ['/'];
  let seen = 0;
  while (queue.length && found.size < want.size && seen < MAX_DIRS) {
    const rel = queue.shift()!;
    seen++;
    const abs = rel === '/' ? mount : path.join(mount, rel);
    let ino: string;
    try {
      ino = String(fs.lstatSync(bp(abs), { bigint: true }).ino);
    } catch {
      continue; // gone meanwhile
    }
    if (want.has(ino)) found.set(ino, rel);
    let entries: fs.Dirent<Buffer>[];
    try {
      entries = fs.readdirSync(bp(abs), { withFileTypes: true, encoding: 'buffer' });
    } catch {
      continue;
    }
    for (const e of entries) if (e.isDirectory()) queue.push(path.join(rel, e.name.toString('latin1')));
  }
  return found;
}

/** The view's output with `  (path)` after each culprit line whose cgroup was found. */
export function annotateCulprits(bytes: Buffer, paths: ReadonlyMap<string, string>): Buffer {
  const text = bytes.toString('latin1');
  const lines = text.split('\n').map((l) => {
    const m = CULPRIT.exec(l);
    const p = m ? paths.get(m[1]!) : undefined;
    return p === undefined ? l : `${l}  (${p})`;
  });
  return Buffer.from(lines.join('\n'), 'latin1');
}

/** The cgroup v2 mount point; null when there is none. */
export function v2Mount(mountinfo?: string): string | null {
  const text = mountinfo ?? fs.readFileSync('/proc/self/mountinfo', 'latin1');
  return parseMountinfo(text).find((m) => m.fstype === 'cgroup2' && m.root === '/')?.mountPoint ?? null;
}
