/**
 * Cgroup hierarchies: where v2 and the v1 hierarchies are mounted, which one
 * a path belongs to, and snapshots of a subtree (ids, owners). Reads
 * cgroupfs with Node's fs on byte-string paths and never follows a symlink.
 */
import fs from 'node:fs';
import { CgviewError } from '../errors.js';
import { cgroupV1Controllers, parseMountinfo } from '../kernel/features.js';
import { showPath } from '../kernel/index.js';
import { join, normalize } from '../tree/paths.js';
import type { CgroupNode } from '../tree/reconcile.js';

export interface CgroupMount {
  path: string;
  version: 1 | 2;
  /** v1: the controllers (and name=...) bound to it. */
  options: string[];
}

/** Cgroup mounts listed in a mountinfo text (pure). */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  return parseMountinfo(mountinfo)
    .filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2')
    .map((m) => ({
      path: m.mountPoint,
      version: m.fstype === 'cgroup2' ? 2 : 1,
      options: m.fstype === 'cgroup2' ? [] : cgroupV1Controllers(m.superOptions),
    }));
}

export function cgroupMounts(): CgroupMount[] {
  return parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'latin1'));
}

/** The cgroup v2 mount point; E_NOT_SUPPORTED when there is none. */
export function cgroup2Root(mounts = cgroupMounts()): string {
  const m = mounts.find((x) => x.version === 2);
  if (!m)
    throw new CgviewError('E_NOT_SUPPORTED', 'no cgroup v2 hierarchy is mounted', {
      hint: 'mount -t cgroup2 none /sys/fs/cgroup/unified',
    });
  return m.path;
}

/** The mount a cgroup directory belongs to; E_NOT_FOUND when it is in none. */
export function mountOf(dir: string, mounts = cgroupMounts()): CgroupMount {
  let best: CgroupMount | undefined;
  for (const m of mounts) {
    if ((dir === m.path || dir.startsWith(`${m.path}/`)) && (!best || m.path.length > best.path.length))
      best = m;
  }
  if (!best)
    throw new CgviewError('E_NOT_FOUND', `${showPath(dir)} is not in a cgroup hierarchy`, { path: dir });
  return best;
}

/** Buffer path from a byte string, for Node's fs. */
export function bpath(p: string): Buffer {
  return Buffer.from(p, 'latin1');
}

/** One cgroup directory's id (its inode number: kernfs node id) and owner; null when gone. */
export function statCgroup(dir: string): CgroupNode | null {
  try {
    const st = fs.lstatSync(bpath(dir), { bigint: true });
    if (!st.isDirectory()) return null;
    return { id: st.ino, uid: Number(st.uid), gid: Number(st.gid) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Snapshot of the cgroup subtree at `root`/`scope`: relative path → id and
 * owner. A cgroup removed during the walk is simply absent.
 */
export function scanCgroups(
  root: string,
  scope = '',
  shallow = false,
  /** Called for each cgroup before its children are read (to watch it first: nothing made later is missed). */
  beforeRead?: (rel: string) => void,
): Map<string, CgroupNode> {
  const out = new Map<string, CgroupNode>();
  const top = statCgroup(join(root, scope));
  if (!top) return out;
  out.set(scope, top);
  if (shallow) return out;
  const stack = [scope];
  while (stack.length) {
    const rel = stack.pop()!;
    beforeRead?.(rel);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(bpath(join(root, rel)), {
        withFileTypes: true,
        encoding: 'latin1',
      }) as unknown as fs.Dirent[];
    } catch (e) {
      // Removed meanwhile: fine. Anything else (EMFILE, ENOMEM...) must not
      // look like a removal, or its subtree would be unmirrored and its pins dropped.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw e;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const node = statCgroup(join(root, childRel));
      if (!node) continue;
      out.set(childRel, node);
      stack.push(childRel);
    }
  }
  return out;
}

/** Snapshot of known cgroups, by relative path (no directory listing): those gone are absent. */
export function statCgroups(root: string, rels: Iterable<string>): Map<string, CgroupNode> {
  const out = new Map<string, CgroupNode>();
  for (const rel of rels) {
    const node = statCgroup(join(root, rel));
    if (node) out.set(rel, node);
  }
  return out;
}

/** Names of the child cgroups of a cgroup directory (empty when it is gone). */
export function childCgroups(dir: string): string[] {
  try {
    return (fs.readdirSync(bpath(dir), { withFileTypes: true, encoding: 'latin1' }) as unknown as fs.Dirent[])
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Validates a cgroup directory argument: absolute, normalised, inside a hierarchy, existing. */
export function checkCgroupDir(dir: string, mounts = cgroupMounts()): { dir: string; mount: CgroupMount } {
  const n = normalize(dir);
  if (!n)
    throw new CgviewError(
      'E_BAD_INPUT',
      `cgroup directory must be an absolute path without '..': ${showPath(dir)}`,
    );
  const mount = mountOf(n, mounts);
  if (!statCgroup(n)) throw new CgviewError('E_NOT_FOUND', `no cgroup at ${showPath(n)}`, { path: n });
  return { dir: n, mount };
}

/**
 * Hierarchy id of a cgroup mount as the kernel numbers it (cgroup->root->hierarchy_id):
 * 0 for v2; for v1, from /proc/self/cgroup ("id:controllers:path"), matched by
 * the mount's controllers or name=.
 */
export function hierarchyIdOf(mount: CgroupMount, procSelfCgroup?: string): number {
  if (mount.version === 2) return 0;
  const text = procSelfCgroup ?? fs.readFileSync('/proc/self/cgroup', 'latin1');
  const want = [...mount.options].sort().join(',');
  for (const line of text.split('\n')) {
    const [id, ctrls] = line.split(':');
    if (id === undefined || ctrls === undefined || id === '0') continue;
    if (ctrls.split(',').sort().join(',') === want) return Number(id);
  }
  throw new CgviewError('E_NOT_FOUND', `cannot find the hierarchy id of ${mount.path} (${want})`, {
    path: mount.path,
  });
}
