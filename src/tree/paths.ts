/**
 * Mapping between cgroup directories and view-tree directories. Pure string
 * functions on byte-string paths (see state.ts): no I/O.
 */

/** Normalises an absolute path: no trailing slash, no empty or '.' components. Null if it has '..'. */
export function normalize(p: string): string | null {
  if (!p.startsWith('/')) return null;
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return null;
    parts.push(c);
  }
  return `/${parts.join('/')}`;
}

/** `child` relative to `parent` ('' when equal), or null when `child` is not inside `parent`. */
export function relativeTo(parent: string, child: string): string | null {
  if (child === parent) return '';
  const base = parent === '/' ? '/' : `${parent}/`;
  return child.startsWith(base) ? child.slice(base.length) : null;
}

/** Joins a base path and a relative path ('' means the base itself). */
export function join(base: string, rel: string): string {
  if (rel === '') return base;
  return base === '/' ? `/${rel}` : `${base}/${rel}`;
}

/** Parent of a relative path ('' has none: null). */
export function parentRel(rel: string): string | null {
  if (rel === '') return null;
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** Depth of a relative path: '' is 0, 'a' is 1, 'a/b' is 2. */
export function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

/** True when `rel` is `anc` or inside it. */
export function isWithin(anc: string, rel: string): boolean {
  return anc === '' || rel === anc || rel.startsWith(`${anc}/`);
}

/** The cgroup directory a tree directory mirrors. */
export function cgroupForTreeDir(root: { dir: string; cgroup: string }, treeDir: string): string | null {
  const rel = relativeTo(root.dir, treeDir);
  return rel === null ? null : join(root.cgroup, rel);
}

/** The tree directory that mirrors a cgroup directory. */
export function treeDirForCgroup(root: { dir: string; cgroup: string }, cgroupDir: string): string | null {
  const rel = relativeTo(root.cgroup, cgroupDir);
  return rel === null ? null : join(root.dir, rel);
}
