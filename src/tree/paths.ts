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

/** The cgroup directory a tree directory mirrors (null: outside the tree, or not a valid tree name). */
export function cgroupForTreeDir(root: { dir: string; cgroup: string }, treeDir: string): string | null {
  const rel = relativeTo(root.dir, treeDir);
  const cg = rel === null ? null : decodeRel(rel);
  return cg === null ? null : join(root.cgroup, cg);
}

/** The tree directory that mirrors a cgroup directory. */
export function treeDirForCgroup(root: { dir: string; cgroup: string }, cgroupDir: string): string | null {
  const rel = relativeTo(root.cgroup, cgroupDir);
  return rel === null ? null : join(root.dir, encodeRel(rel));
}

/** Tree name of a child entry as a cgroup-space name ('\0' + raw when it decodes to none). */
export function childKey(treeName: string): string {
  return decodeName(treeName) ?? `\0${treeName}`;
}

/*
 * bpffs refuses every name that contains a '.' ("reserved for future
 * extensions", kernel/bpf/inode.c), and cgroup names like system.slice have
 * them. Tree names are therefore cgroup names with '%' and '.' percent-encoded
 * ("system%2Eslice"): reversible and collision-free. Names are byte strings.
 */

/** Tree (bpffs) name of a cgroup name. */
export function encodeName(name: string): string {
  // A tree name that decodes to no cgroup name is carried as '\0' + raw name.
  if (name.startsWith('\0')) return name.slice(1);
  return name.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E'));
}

/** Cgroup name of a tree name; null when it is not a valid encoding or not a possible name (no cgroup can match it). */
export function decodeName(name: string): string | null {
  if (name.includes('.')) return null;
  let bad = false;
  const out = name.replace(/%(..)?/g, (_m, hex: string | undefined) => {
    if (hex === '25') return '%';
    if (hex === '2E' || hex === '2e') return '.';
    bad = true;
    return '';
  });
  // `%2E%2E` would be "..": a path component that leaves the directory, never
  // a cgroup's name (nor "." or ""); a user who can mkdir in a delegated tree
  // directory must not make the daemon join it to a cgroup path.
  if (out === '' || out === '.' || out === '..' || out.includes('/') || out.includes('\0')) return null;
  return bad || encodeName(out) !== name ? null : out;
}

/** Tree path of a cgroup-relative path, component by component. */
export function encodeRel(rel: string): string {
  return rel === '' ? '' : rel.split('/').map(encodeName).join('/');
}

/** Cgroup-relative path of a tree path; null when a component is not a valid encoding. */
export function decodeRel(rel: string): string | null {
  if (rel === '') return '';
  const parts = rel.split('/').map(decodeName);
  return parts.some((p) => p === null) ? null : parts.join('/');
}
