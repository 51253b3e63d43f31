/**
 * The mirror model: what one tree holds as the last reconcile of each part
 * of it found and left it — the cgroups of its subtree, its directories and
 * the view files in place in each. `status` counts from it, and a pin or
 * unpin of an inherited view visits exactly its directories. Pure data: the
 * reconciler updates it from each snapshot and apply result.
 */
import { isWithin } from './paths.js';
import type { CgroupNode } from './reconcile.js';

export class MirrorModel {
  /**
   * Cgroups of the subtree, by relative path, with id and owner as last
   * scanned; kept current by the events every change of them sends (mkdir,
   * rmdir, rename, chown).
   */
  readonly cgroups = new Map<string, CgroupNode>();
  /** Tree directories → names of the view files in place there. */
  readonly dirs = new Map<string, Set<string>>();
  /** Set by the first reconcile of the whole tree: only then does the model hold every directory. */
  complete = false;

  get pinCount(): number {
    let n = 0;
    for (const v of this.dirs.values()) n += v.size;
    return n;
  }

  /** After a deep reconcile of `scope`: what is below it is exactly this. */
  replaceScope(
    scope: string,
    cgroups: ReadonlyMap<string, CgroupNode>,
    dirs: Map<string, Set<string>>,
  ): void {
    for (const r of [...this.cgroups.keys()]) if (isWithin(scope, r)) this.cgroups.delete(r);
    for (const r of [...this.dirs.keys()]) if (isWithin(scope, r)) this.dirs.delete(r);
    for (const [r, c] of cgroups) this.cgroups.set(r, c);
    for (const [r, v] of dirs) this.dirs.set(r, v);
    if (scope === '') this.complete = true;
  }

  /** After a reconcile of some files of a directory: `names` were looked at, `present` of them are in place. */
  setFiles(rel: string, names: Iterable<string>, present: Iterable<string>): void {
    const have = this.dirs.get(rel);
    if (!have) return; // not known as a directory: its deep reconcile will say
    for (const n of names) have.delete(n);
    for (const n of present) have.add(n);
  }

  clear(): void {
    this.complete = false;
    this.cgroups.clear();
    this.dirs.clear();
  }
}
