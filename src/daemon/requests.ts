/**
 * Request handlers for pin and unpin: they check a request against the
 * trees and return what it changes — a state transition, the scope to
 * reconcile and the answer — without changing anything themselves. The
 * manager commits the transition, then reconciles.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cgroup2Root, checkCgroupDir, childCgroups, scanCgroups } from '../cgroup/hierarchy.js';
import { CgviewError } from '../errors.js';
import { showPath } from '../kernel/index.js';
import type { DirtyScope } from '../tree/dirty.js';
import { baseName, encodeName, join, normalize, parentRel } from '../tree/paths.js';
import { localPins, type Mode, type ViewPin } from '../tree/state.js';
import { parseViewSpec, type ViewSet } from '../views/registry.js';
import { checkNewRoot, RootRuntime, rootOf } from './roots.js';
import type { Transition } from './state-store.js';

export const DEFAULT_FILE_MODE = 0o440;

export interface PinRequest {
  view: string;
  dir: string;
  cgroup?: string;
  inherit?: boolean;
  name?: string;
  mode?: Mode;
  fileMode?: number;
}

export interface RequestContext {
  roots: readonly RootRuntime[];
  privateDir: string;
  /** Cgroup a new tree is tagged with by default (else the cgroup v2 root). */
  cgroupRoot?: string;
  views: ViewSet;
}

export interface PinPlan {
  transition: Transition;
  rt: RootRuntime;
  /** A new tagged root (not open yet). */
  created: boolean;
  scope: DirtyScope;
  result: Record<string, unknown>;
}

export interface UnpinPlan {
  transitions: Transition[];
  rt: RootRuntime;
  /** null: the tree is untagged (its last view went). */
  scope: DirtyScope | null;
  result: Record<string, unknown>;
}

/** cgview pin: what it changes. */
export function planPin(ctx: RequestContext, req: PinRequest): PinPlan {
  const dir = normalize(req.dir);
  if (!dir)
    throw new CgviewError('E_BAD_INPUT', `DIR must be an absolute path without '..': ${showPath(req.dir)}`);
  const def = parseViewSpec(req.view);
  const name = req.name ?? def.defaultName;
  if (!/^[^/\0.]{1,255}$/.test(name))
    throw new CgviewError('E_BAD_INPUT', `bad pin name ${JSON.stringify(name)}`, {
      hint: "a file name without '/' or '.' (bpffs refuses names with a dot)",
    });
  const fileMode = req.fileMode ?? DEFAULT_FILE_MODE;
  if (!Number.isInteger(fileMode) || fileMode < 0 || fileMode > 0o777)
    throw new CgviewError('E_BAD_INPUT', `bad file mode ${String(req.fileMode)}`);
  const pin: ViewPin = { view: req.view, name, fileMode };

  let rt = rootOf(ctx.roots, dir);
  let created = false;
  let rel = '';
  if (rt?.cfg.untagging)
    throw new CgviewError(
      'E_TAGGED',
      `${showPath(rt.cfg.dir)} is being untagged; try again when it is done`,
      {
        path: dir,
        hint: 'cgview status shows why untagging waits',
      },
    );
  if (rt) {
    rel = rt.cgroupRel(dir);
    const cg = join(rt.cfg.cgroup, rel);
    if (req.cgroup !== undefined && normalize(req.cgroup) !== cg)
      throw new CgviewError('E_TAGGED', `${showPath(dir)} is already tagged with ${showPath(cg)}`, {
        path: dir,
      });
    if (req.mode !== undefined && req.mode !== rt.cfg.mode)
      throw new CgviewError('E_TAGGED', `${showPath(rt.cfg.dir)} is mirrored in ${rt.cfg.mode} mode`, {
        path: dir,
      });
    if (rel !== '' && !fs.existsSync(Buffer.from(dir, 'latin1')))
      throw new CgviewError(
        'E_NOT_FOUND',
        `${showPath(dir)} is not in the tree (no directory for that cgroup)`,
        {
          path: dir,
        },
      );
    const taken = [
      ...rt.cfg.inherit,
      ...(req.inherit ? Object.values(rt.cfg.local).flat() : localPins(rt.cfg, rel)),
    ];
    if (taken.some((p) => p.name === name))
      throw new CgviewError(
        'E_EXISTS',
        `pin ${req.view} as ${showPath(join(dir, name))}: that name is taken`,
        {
          path: dir,
        },
      );
  } else {
    const cgroup = checkCgroupDir(req.cgroup ?? ctx.cgroupRoot ?? cgroup2Root()).dir;
    checkNewRoot(dir, ctx.privateDir, ctx.roots);
    rt = new RootRuntime({ dir, cgroup, mode: req.mode ?? 'auto', inherit: [], local: {} });
    rt.setHierarchy();
    created = true;
  }
  // A view file would shadow a mirrored cgroup of the same name (the view
  // wins, see reconcile.ts): say so instead of un-mirroring it. The cgroups
  // are those the tree's last reconcile saw (a later one sends its event).
  const everywhere = () => [...(rt.model.complete ? rt.model.cgroups : scanCgroups(rt.cfg.cgroup)).keys()];
  const names = req.inherit
    ? everywhere()
        .filter((r) => r !== '')
        .map(baseName)
    : childCgroups(join(rt.cfg.cgroup, rel));
  if (names.some((n) => encodeName(n) === name))
    throw new CgviewError(
      'E_EXISTS',
      `pin ${req.view} as ${name}: a cgroup of that name is mirrored in this tree`,
      {
        path: dir,
        hint: 'choose another --name',
      },
    );
  // Load first: a view that does not verify changes nothing.
  ctx.views.forgetFailures();
  ctx.views.get(req.view, rt.hierarchyId);
  const inherit = !!req.inherit;
  return {
    transition: { kind: created ? 'tag' : 'pin', root: rt.cfg, rel, pin, inherit },
    rt,
    created,
    // An inherited view over a tree mirrored already: only its file, in every directory.
    scope:
      created || !rt.model.complete
        ? { rel: '', depth: 'deep' }
        : inherit
          ? { rel: '', depth: 'names', names: [name] }
          : { rel, depth: 'shallow' },
    result: { dir, name, tagged: created, cgroup: join(rt.cfg.cgroup, rel), inherit, mode: rt.cfg.mode },
  };
}

/** cgview unpin DIR/NAME: what it changes. */
export function planUnpin(ctx: RequestContext, file: string): UnpinPlan {
  const p = normalize(file);
  if (!p || p === '/') throw new CgviewError('E_BAD_INPUT', `expected DIR/NAME, got ${showPath(file)}`);
  const dir = path.posix.dirname(p);
  const name = path.posix.basename(p);
  const rt = rootOf(ctx.roots, dir);
  if (!rt)
    throw new CgviewError('E_NOT_TAGGED', `${showPath(dir)} is not in a tagged view tree`, { path: dir });
  const rel = rt.cgroupRel(dir);
  const inherited = rt.cfg.inherit.some((x) => x.name === name);
  const local = localPins(rt.cfg, rel);
  if (!inherited && !local.some((x) => x.name === name))
    throw new CgviewError('E_NOT_FOUND', `no view pinned as ${showPath(p)}`, { path: p });
  const left =
    rt.cfg.inherit.length -
    (inherited ? 1 : 0) +
    Object.values(rt.cfg.local).reduce((n, ps) => n + ps.length, 0) -
    (inherited ? 0 : 1);
  const empty = left === 0;
  const transitions: Transition[] = [{ kind: 'unpin', root: rt.cfg, rel, name, inherited }];
  if (empty) transitions.push({ kind: 'untagging', root: rt.cfg });
  // A cgroup that was not mirrored because its name was this view's is mirrored
  // now: then the whole subtree where it could be is reconciled.
  const freed = rt.conflicts.some(
    (c) => encodeName(baseName(c)) === name && (inherited || parentRel(c) === rel),
  );
  return {
    transitions,
    rt,
    scope: empty
      ? null
      : inherited
        ? rt.model.complete && !freed
          ? { rel: '', depth: 'names', names: [name] }
          : { rel: '', depth: 'deep' }
        : { rel, depth: freed ? 'deep' : 'shallow' },
    result: { path: p, inherited, untagged: empty },
  };
}
