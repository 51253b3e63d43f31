/**
 * The cgroup tree's model: rows from the columnar payload, parents by path,
 * the visible list for a filter, a sort and the expanded set. Pure (no DOM),
 * so that 10,000 rows stay cheap and testable.
 */

export interface TreePayload {
  seq: number;
  key: string[];
  id: string[];
  h: number[];
  path: string[];
  level: number[];
  tasks: Array<number | null>;
  cpu: Array<number | null>;
  wait: Array<number | null>;
  waits: Array<number | null>;
  p50: Array<number | null>;
  p99: Array<number | null>;
  self: Array<number | null>;
  vs: number[];
  hierarchies: string[];
  viewSets: string[][];
}

export interface Row {
  key: string;
  id: string;
  hierarchy: string;
  path: string;
  name: string;
  level: number;
  tasks: number | null;
  cpu: number | null;
  wait: number | null;
  waits: number | null;
  p50: number | null;
  p99: number | null;
  self: number | null;
  views: string[];
  parent: Row | null;
  children: Row[];
}

export type SortKey = 'name' | 'tasks' | 'cpu' | 'wait' | 'p99' | 'self';

/** Where a cgroup is, in a URL and across recreation: hierarchy and path. */
export const refOf = (r: { hierarchy: string; path: string }) => `${r.hierarchy}:${r.path}`;

export class TreeModel {
  rows = new Map<string, Row>();
  private byRef = new Map<string, Row>();
  roots: Row[] = [];
  private dirty = true;

  /** Replaces or updates rows from a payload; `replace` drops rows it does not name. */
  apply(p: TreePayload, replace: boolean, removed: string[] = []): void {
    const seen = new Set<string>();
    for (let i = 0; i < p.key.length; i++) {
      const key = p.key[i]!;
      seen.add(key);
      const path = p.path[i]!;
      const hierarchy = p.hierarchies[p.h[i]!]!;
      let r = this.rows.get(key);
      if (!r) {
        r = {
          key,
          id: p.id[i]!,
          hierarchy,
          path,
          name: '',
          level: p.level[i]!,
          tasks: null,
          cpu: null,
          wait: null,
          waits: null,
          p50: null,
          p99: null,
          self: null,
          views: [],
          parent: null,
          children: [],
        };
        this.rows.set(key, r);
        this.dirty = true;
      }
      if (r.path !== path) this.dirty = true;
      r.path = path;
      r.name = path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
      r.tasks = p.tasks[i] ?? null;
      r.cpu = p.cpu[i] ?? null;
      r.wait = p.wait[i] ?? null;
      r.waits = p.waits[i] ?? null;
      r.p50 = p.p50[i] ?? null;
      r.p99 = p.p99[i] ?? null;
      r.self = p.self[i] ?? null;
      r.views = p.viewSets[p.vs[i]!] ?? [];
    }
    const drop = replace ? [...this.rows.keys()].filter((k) => !seen.has(k)) : removed;
    for (const k of drop) if (this.rows.delete(k)) this.dirty = true;
    if (this.dirty) this.link();
  }

  byPath(ref: string): Row | undefined {
    return this.byRef.get(ref);
  }

  /** Parents from paths: the nearest mirrored ancestor in the same hierarchy. */
  private link(): void {
    this.byRef.clear();
    for (const r of this.rows.values()) {
      r.children = [];
      r.parent = null;
      this.byRef.set(refOf(r), r);
    }
    this.roots = [];
    for (const r of this.rows.values()) {
      let p = r.path;
      let parent: Row | undefined;
      while (p !== '/' && p !== '') {
        p = p.slice(0, p.lastIndexOf('/')) || '/';
        parent = this.byRef.get(`${r.hierarchy}:${p}`);
        if (parent) break;
      }
      if (parent && parent !== r) {
        r.parent = parent;
        parent.children.push(r);
      } else this.roots.push(r);
    }
    this.dirty = false;
  }

  /**
   * Rows to show, in order, with their depth: children sorted by `sort`
   * (figures biggest first), under expanded parents; with a filter, the rows
   * whose path contains it (case-insensitive) and their ancestors, expanded.
   */
  visible(
    expanded: ReadonlySet<string>,
    sort: SortKey,
    desc: boolean,
    filter: string,
  ): Array<{ row: Row; depth: number }> {
    const f = filter.trim().toLowerCase();
    const match = new Set<Row>();
    if (f) {
      for (const r of this.rows.values())
        if (r.path.toLowerCase().includes(f))
          for (let a: Row | null = r; a && !match.has(a); a = a.parent) match.add(a);
    }
    const cmp = comparator(sort, desc);
    const out: Array<{ row: Row; depth: number }> = [];
    const walk = (rows: Row[], depth: number) => {
      const list = f ? rows.filter((r) => match.has(r)) : rows.slice();
      list.sort(cmp);
      for (const r of list) {
        out.push({ row: r, depth });
        if (r.children.length && (f ? true : expanded.has(r.key))) walk(r.children, depth + 1);
      }
    };
    walk(this.roots, 0);
    return out;
  }
}

function comparator(sort: SortKey, desc: boolean): (a: Row, b: Row) => number {
  if (sort === 'name') {
    const d = desc ? -1 : 1;
    return (a, b) => (a.name < b.name ? -d : a.name > b.name ? d : 0);
  }
  const d = desc ? 1 : -1;
  return (a, b) => {
    const x = a[sort] ?? -1;
    const y = b[sort] ?? -1;
    if (x !== y) return (y - x) * d;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  };
}
