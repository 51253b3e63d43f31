/**
 * The mirror model: what one tree holds as the last reconcile of each part
 * of it found and left it — the cgroups of its subtree, its directories and
 * the view files in place in each. `status` counts from it, and a pin or
 * unpin of an inherited view visits exactly its directories. Pure data: the
 * reconciler updates it from each snapshot and apply result.
 */
import { parentRel } from './paths.js';
import type { CgroupNode } from './reconcile.js';

export class MirrorModel {
  /**
   * Cgroups of the subtree, by relative path, with id and owner as last
   * scanned; kept current by the events every change of them sends (mkdir,
   * rmdir, rename, chown).
   */
  readonly #cgroups = new Map<string, CgroupNode>();
  /** Tree directories → names of the view files in place there. */
  readonly #dirs = new Map<string, Set<string>>();
  /** Parent → children of every path known on either side, so a subtree is replaced without a walk over the whole tree. */
  readonly #kids = new Map<string, Set<string>>();
  /** Set by the first reconcile of the whole tree: only then does the model hold every directory. */
  complete = false;

  get cgroups(): ReadonlyMap<string, CgroupNode> {
    return this.#cgroups;
  }

  get dirs(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.#dirs;
  }

  get pinCount(): number {
    let n = 0;
    for (const v of this.#dirs.values()) n += v.size;
    return n;
  }

  #link(rel: string): void {
    const p = parentRel(rel);
    if (p === null) return;
    let k = this.#kids.get(p);
    if (!k) {
      k = new Set();
      this.#kids.set(p, k);
    }
    k.add(rel);
  }

  #dropSubtree(scope: string): void {
    if (scope === '') {
      this.#cgroups.clear();
      this.#dirs.clear();
      this.#kids.clear();
      return;
    }
    const stack = [scope];
    while (stack.length) {
      const r = stack.pop()!;
      this.#cgroups.delete(r);
      this.#dirs.delete(r);
      const k = this.#kids.get(r);
      if (k) {
        stack.push(...k);
        this.#kids.delete(r);
      }
    }
    this.#kids.get(parentRel(scope)!)?.delete(scope);
  }

  /** After a deep reconcile of `scope`: what is below it is exactly this. */
  replaceScope(
    scope: string,
    cgroups: ReadonlyMap<string, CgroupNode>,
    dirs: Map<string, Set<string>>,
  ): void {
    this.#dropSubtree(scope);
    for (const [r, c] of cgroups) {
      this.#cgroups.set(r, c);
      this.#link(r);
    }
    for (const [r, v] of dirs) {
      this.#dirs.set(r, v);
      this.#link(r);
    }
    if (scope === '') this.complete = true;
  }

  /** One cgroup as scanned now (null: gone). */
  setCgroup(rel: string, node: CgroupNode | null): void {
    if (node) {
      this.#cgroups.set(rel, node);
      this.#link(rel);
    } else this.#cgroups.delete(rel);
  }

  /** All the view files of one directory (null: the directory is gone). */
  setDir(rel: string, names: Set<string> | null): void {
    if (names) {
      this.#dirs.set(rel, names);
      this.#link(rel);
    } else this.#dirs.delete(rel);
  }

  /** After a reconcile of some files of a directory: `names` were looked at, `present` of them are in place. */
  setFiles(rel: string, names: Iterable<string>, present: Iterable<string>): void {
    const have = this.#dirs.get(rel);
    if (!have) return; // not known as a directory: its deep reconcile will say
    for (const n of names) have.delete(n);
    for (const n of present) have.add(n);
  }

  clear(): void {
    this.complete = false;
    this.#dropSubtree('');
  }
}
