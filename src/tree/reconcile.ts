/**
 * Reconciliation as a pure diff: from a tagged root's configuration, a
 * snapshot of its cgroup subtree and a snapshot of its view tree, compute the
 * operations that make the tree right. No I/O here; apply.ts carries them out.
 *
 * The rules (DESIGN.md S1-S4, S6, S9):
 * - auto mode: every cgroup of the subtree has a directory;
 * - manual mode: the root, and every directory a user made whose name is a
 *   child cgroup of its parent's cgroup (S2); other directories are refused;
 * - every directory holds the inherit list plus its own local pins, each a
 *   link for that directory's cgroup (a pin for another cgroup id, or for an
 *   outdated program, is replaced);
 * - a directory whose cgroup is gone is removed with its pins (S4);
 * - a cgroup whose name equals a view file of its parent directory cannot be
 *   mirrored (the view file wins, so a job cannot hide its parent's views):
 *   it is reported as a conflict and its subtree is not mirrored either; so is
 *   a name longer than 255 bytes once encoded for bpffs (see paths.ts);
 * - relative paths are cgroup-space names; the tree snapshot is decoded into
 *   them and apply encodes them again;
 * - symlinks never belong in a tree and are removed; pins cgview did not make
 *   are left alone unless they stand where a view or a removed directory must go.
 */
import { baseName, depth, encodeName, encodeRel, isWithin, join, parentRel } from './paths.js';
import { localPins, type TagRoot, type ViewPin } from './state.js';

/** A cgroup of the root's subtree, by path relative to the root cgroup. */
export interface CgroupNode {
  id: bigint;
  uid: number;
  gid: number;
}

export type FileKind = 'view' | 'foreign' | 'symlink' | 'other';

/** An entry (not a directory) found in a tree directory. */
export interface ActualFile {
  kind: FileKind;
  /** For kind 'view': the cgroup id the iter link holds, and its program's tag. */
  cgroupId?: bigint;
  progTag?: string;
  /** For kind 'view': ids of the maps its program uses. */
  mapIds?: number[];
  mode: number;
  uid: number;
  gid: number;
}

/** A directory found in the view tree, by path relative to the tagged root. */
export interface ActualDir {
  uid: number;
  gid: number;
  /** Permission bits (undefined when not known, e.g. a directory not entered). */
  mode?: number;
  files: Map<string, ActualFile>;
}

export type Op =
  | { op: 'rmfile'; rel: string; name: string; reason: string }
  | { op: 'rmdir'; rel: string; reason: string }
  | { op: 'mkdir'; rel: string; uid: number; gid: number }
  | { op: 'chown'; rel: string; name: string | null; uid: number; gid: number }
  | { op: 'chmod'; rel: string; name: string | null; mode: number }
  | { op: 'pin'; rel: string; name: string; pin: ViewPin; cgroupId: bigint; uid: number; gid: number };

export interface Diff {
  ops: Op[];
  /** Tree directories that exist once the ops are applied (within the scope). */
  dirs: Set<string>;
  /** Cgroups not mirrored because their name is taken by a view file (relative paths). */
  conflicts: string[];
}

/**
 * What a pin of a view must be to be kept: its program's tag, and for a view
 * that reads a collector, the collector's maps (a pin reading the maps of a
 * collector that was replaced would show frozen numbers).
 */
export interface ViewIdentity {
  tag: string;
  mapIds?: number[];
}

export interface DiffInput {
  root: TagRoot;
  /** Cgroups within `scope`, by path relative to the root cgroup. */
  cgroups: Map<string, CgroupNode>;
  /** Tree directories within `scope`, by path relative to the tagged root. */
  tree: Map<string, ActualDir>;
  /** Tag of the program each view is loaded as now; a pin of another program is replaced. */
  viewTag: (view: string) => ViewIdentity | string | undefined;
  /** Only this subtree is considered ('' is the whole tree). Its parent directory must exist. */
  scope?: string;
  /**
   * Only these view file names are considered, in the directories the tree
   * snapshot holds (a pin or unpin of an inherited view): directories are
   * taken as they are, none made, removed, chowned or chmodded, and a
   * directory whose cgroup is not in the snapshot is left to its own event.
   */
  names?: ReadonlySet<string>;
}

/** The views that belong in directory `rel`: the inherit list and its local pins. */
export function pinsFor(root: TagRoot, rel: string): ViewPin[] {
  return [...root.inherit, ...localPins(root, rel)];
}

/** Which tree directories should exist, and which cgroups conflict with a view file name. */
export function desiredDirs(input: DiffInput): { dirs: Set<string>; conflicts: string[] } {
  const { root, cgroups, tree } = input;
  const scope = input.scope ?? '';
  const dirs = new Set<string>();
  const conflicts: string[] = [];
  const rels = [...cgroups.keys()].filter((r) => isWithin(scope, r)).sort((a, b) => depth(a) - depth(b));
  for (const rel of rels) {
    const parent = parentRel(rel);
    if (parent !== null) {
      // Inside the scope a directory needs its parent kept; the scope's own
      // parent exists by the caller's contract.
      if (rel !== scope && !dirs.has(parent)) continue;
      const treeName = encodeName(baseName(rel));
      if (treeName.length > 255 || pinsFor(root, parent).some((p) => p.name === treeName)) {
        conflicts.push(rel);
        continue;
      }
    }
    if (root.mode === 'manual' && rel !== '' && !tree.has(rel)) continue;
    dirs.add(rel);
  }
  return { dirs, conflicts };
}

function sameCgroupView(f: ActualFile, cg: CgroupNode, want: ViewIdentity | string | undefined): boolean {
  if (f.kind !== 'view' || f.cgroupId !== cg.id) return false;
  if (want === undefined) return true;
  const id = typeof want === 'string' ? { tag: want } : want;
  return f.progTag === id.tag && (id.mapIds ?? []).every((m) => f.mapIds?.includes(m));
}

/** The ops that make the view files of one directory right (only the entries `consider` accepts are looked at). */
function fileOps(
  rel: string,
  cg: CgroupNode,
  actual: ActualDir | undefined,
  want: ViewPin[],
  viewTag: DiffInput['viewTag'],
  removals: Op[],
  creations: Op[],
  consider: (name: string) => boolean = () => true,
): void {
  const wantNames = new Set(want.map((p) => p.name));
  for (const pin of want) {
    const f = actual?.files.get(pin.name);
    // A directory of the same name that is not mirrored was removed above.
    if (f && sameCgroupView(f, cg, viewTag(pin.view))) {
      if (f.mode !== pin.fileMode) creations.push({ op: 'chmod', rel, name: pin.name, mode: pin.fileMode });
      if (f.uid !== cg.uid || f.gid !== cg.gid)
        creations.push({ op: 'chown', rel, name: pin.name, uid: cg.uid, gid: cg.gid });
      continue;
    }
    if (f)
      removals.push({
        op: 'rmfile',
        rel,
        name: pin.name,
        reason:
          f.kind === 'view'
            ? f.cgroupId === cg.id
              ? 'outdated program'
              : 'link for another cgroup'
            : `${f.kind === 'other' ? 'an unknown file' : `a ${f.kind}`} stood there`,
      });
    creations.push({ op: 'pin', rel, name: pin.name, pin, cgroupId: cg.id, uid: cg.uid, gid: cg.gid });
  }
  for (const [name, f] of actual?.files ?? []) {
    if (wantNames.has(name) || !consider(name)) continue;
    if (f.kind === 'view') removals.push({ op: 'rmfile', rel, name, reason: 'view no longer pinned here' });
    else if (f.kind === 'symlink')
      removals.push({ op: 'rmfile', rel, name, reason: 'symlinks are refused in a view tree' });
  }
}

/** diff() restricted to some view file names in the directories there are (DiffInput.names). */
function diffNames(input: DiffInput, names: ReadonlySet<string>): Diff {
  const { root, cgroups, tree, viewTag } = input;
  const scope = input.scope ?? '';
  const removals: Op[] = [];
  const creations: Op[] = [];
  const dirs = new Set<string>();
  for (const [rel, actual] of tree) {
    const cg = cgroups.get(rel);
    if (!cg || !isWithin(scope, rel)) continue;
    dirs.add(rel);
    const want = pinsFor(root, rel).filter((p) => names.has(p.name));
    fileOps(rel, cg, actual, want, viewTag, removals, creations, (n) => names.has(n));
  }
  return { ops: [...removals, ...creations], dirs, conflicts: [] };
}

export function diff(input: DiffInput): Diff {
  if (input.names) return diffNames(input, input.names);
  const { root, cgroups, tree, viewTag } = input;
  const scope = input.scope ?? '';
  const { dirs, conflicts } = desiredDirs(input);
  const removals: Op[] = [];
  const creations: Op[] = [];

  // Directories that must go, deepest first, each emptied first.
  const gone = [...tree.keys()]
    .filter((r) => isWithin(scope, r) && !dirs.has(r))
    .sort((a, b) => depth(b) - depth(a));
  for (const rel of gone) {
    const reason = !cgroups.has(rel)
      ? root.mode === 'manual'
        ? 'no cgroup of that name'
        : 'cgroup removed'
      : conflicts.some((c) => isWithin(c, rel))
        ? 'cgroup name taken by a view file'
        : 'not mirrored';
    for (const [name, f] of tree.get(rel)!.files) {
      // The tagged root itself stays, and so do pins in it that are not ours.
      if (rel === '' && f.kind !== 'view' && f.kind !== 'symlink') continue;
      removals.push({ op: 'rmfile', rel, name, reason });
    }
    if (rel === '') continue;
    removals.push({ op: 'rmdir', rel, reason });
  }

  for (const rel of [...dirs].sort((a, b) => depth(a) - depth(b))) {
    const cg = cgroups.get(rel)!;
    const actual = tree.get(rel);
    if (!actual) creations.push({ op: 'mkdir', rel, uid: cg.uid, gid: cg.gid });
    else if (rel !== '' && (actual.uid !== cg.uid || actual.gid !== cg.gid))
      creations.push({ op: 'chown', rel, name: null, uid: cg.uid, gid: cg.gid });
    // A directory of a root cgroup is root's alone: group or other write bits
    // (left by a user who owned it once) go, so nobody else can swap names in it.
    if (actual && rel !== '' && cg.uid === 0 && actual.mode !== undefined && actual.mode & 0o022)
      creations.push({ op: 'chmod', rel, name: null, mode: 0o755 });
    fileOps(rel, cg, actual, pinsFor(root, rel), viewTag, removals, creations);
  }
  return { ops: [...removals, ...creations], dirs, conflicts };
}

/** Absolute tree path of an op's target (tree names encoded), for logs. */
export function opPath(root: { dir: string }, op: Op): string {
  const dir = join(root.dir, encodeRel(op.rel));
  return 'name' in op && op.name ? `${dir}/${op.name}` : dir;
}
