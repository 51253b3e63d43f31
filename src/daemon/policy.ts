/**
 * Who may ask what. With --socket-mode opened wider than 0600, each request
 * is allowed by the peer's credentials (SO_PEERCRED): others than root may
 * only read, and only what they could read themselves. Runs one request.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CgviewError } from '../errors.js';
import { normalize } from '../tree/paths.js';
import type { ExpectedDir } from '../tree/treefs.js';
import type { ControlStats } from './control-socket.js';
import type { Manager } from './manager.js';
import { checkRequest, errorResponse, type Request, type Response } from './protocol.js';

/**
 * What an unprivileged peer may ask: nothing that loads or removes. What
 * they answer it is cut to what it could read anyway: `ls DIR` only of a
 * directory it may list itself, `status` without paths, errors and objects.
 */
export const UNPRIVILEGED_OPS: ReadonlySet<string> = new Set(['ping', 'ls', 'status', 'resolve']);

/** Who asks. */
export interface Peer {
  /** uid 0: may make every request; others only UNPRIVILEGED_OPS. */
  privileged: boolean;
  uid: number | null;
  pid: number | null;
  /** Primary and supplementary groups (SO_PEERCRED, SO_PEERGROUPS): what the peer could read by its groups. */
  gids: number[];
}

export const ROOT_PEER: Peer = { privileged: true, uid: 0, pid: null, gids: [0] };

/** Whether `st`'s mode bits give the peer every bit of `want` (4 read, 2 write, 1 search), as the kernel would. */
function modeAllows(st: fs.Stats, peer: Peer, want: number): boolean {
  const bits = peer.uid === st.uid ? st.mode >> 6 : peer.gids.includes(st.gid) ? st.mode >> 3 : st.mode;
  return (bits & want) === want;
}

/**
 * Throws E_PERMISSION unless an unprivileged peer could list `dir` itself:
 * read and search on it, search on every directory above it, and no symlink
 * on the way. The directory is opened (O_NOFOLLOW) and judged by its
 * descriptor; the path that descriptor has is checked to be the one asked,
 * before and after its ancestors are looked at. Returns the normalized path
 * and the inode judged: the listing (Manager.ls) opens the directory again
 * from the tree's root fd and refuses another inode, so a directory swapped
 * in after the check is not listed.
 */
function checkPeerMayList(m: Manager, dir: string, peer: Peer): { dir: string; expect: ExpectedDir } {
  const denied = () =>
    new CgviewError('E_PERMISSION', `uid ${peer.uid ?? 'unknown'} may not list ${JSON.stringify(dir)}`, {
      hint: 'other users than root may ls the directories they can read themselves',
    });
  const d = normalize(dir);
  if (!d || peer.uid === null) throw denied();
  // Only directories of the trees are opened for others (never, say, a path of a slow mount).
  const roots = (m.ls() as { roots: Array<{ dir: string }> }).roots.map((r) => r.dir);
  if (!roots.some((r) => d === r || d.startsWith(r === '/' ? r : `${r}/`)))
    throw new CgviewError('E_NOT_TAGGED', `${JSON.stringify(dir)} is not in a tagged view tree`, {
      path: dir,
    });
  let fd: number;
  try {
    fd = fs.openSync(
      Buffer.from(d, 'latin1'),
      fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW,
    );
  } catch {
    throw denied();
  }
  try {
    const where = () => fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).toString('latin1');
    if (where() !== d || !modeAllows(fs.fstatSync(fd), peer, 5)) throw denied();
    for (let a = path.posix.dirname(d); ; a = path.posix.dirname(a)) {
      const st = fs.lstatSync(Buffer.from(a, 'latin1'));
      if (!st.isDirectory() || !modeAllows(st, peer, 1)) throw denied();
      if (a === '/') break;
    }
    if (where() !== d) throw denied();
    const st = fs.fstatSync(fd, { bigint: true });
    return { dir: d, expect: { dev: st.dev, ino: st.ino } };
  } catch (e) {
    if (e instanceof CgviewError) throw e;
    throw denied();
  } finally {
    fs.closeSync(fd);
  }
}

/** `status` for a peer other than root: counts and the public index of trees; no paths of files, errors or objects. */
function peerStatus(s: Record<string, unknown>): Record<string, unknown> {
  const { stateFile: _f, collectors, roots, ...rest } = s;
  return {
    ...rest,
    roots: (
      roots as Array<Record<string, unknown> & { inherit: Array<{ name: string }>; conflicts: unknown[] }>
    ).map((r) => ({
      dir: r['dir'],
      cgroup: r['cgroup'],
      hierarchy: r['hierarchy'],
      mode: r['mode'],
      inherit: r.inherit.map((p) => ({ name: p.name })),
      dirs: r['dirs'],
      pins: r['pins'],
      conflicts: r.conflicts.length,
      failing: r['error'] !== null && r['error'] !== undefined,
    })),
    collectors: Object.fromEntries(
      Object.entries((collectors ?? {}) as Record<string, Record<string, unknown>>).map(([k, v]) => [
        k,
        { start: v['start'], since: v['since'] },
      ]),
    ),
  };
}

/** Runs one checked request. `control` (the socket's counters) is added to `status`. */
export function handle(m: Manager, req: Request, peer: Peer = ROOT_PEER, control?: ControlStats): unknown {
  const a = req.args ?? {};
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  if (!peer.privileged && !UNPRIVILEGED_OPS.has(req.op)) {
    if (control) control.deniedRequests++;
    throw new CgviewError('E_PERMISSION', `${req.op} needs root (the peer is uid ${peer.uid ?? 'unknown'})`, {
      hint: `run it as root; other users may ${[...UNPRIVILEGED_OPS].join(', ')}`,
    });
  }
  switch (req.op) {
    case 'ping':
      return { pid: process.pid };
    case 'pin': {
      const view = str('view');
      const dir = str('dir');
      if (!view || !dir) throw new CgviewError('E_BAD_INPUT', 'pin needs a view and a directory');
      return m.pin({
        view,
        dir,
        ...(str('cgroup') !== undefined ? { cgroup: str('cgroup')! } : {}),
        inherit: a['inherit'] === true,
        ...(str('name') !== undefined ? { name: str('name')! } : {}),
        ...(str('mode') !== undefined ? { mode: str('mode') as 'auto' | 'manual' } : {}),
        ...(typeof a['fileMode'] === 'number' ? { fileMode: a['fileMode'] } : {}),
      });
    }
    case 'unpin': {
      const p = str('path');
      if (!p) throw new CgviewError('E_BAD_INPUT', 'unpin needs DIR/NAME');
      return m.unpin(p);
    }
    case 'ls': {
      const dir = str('dir');
      if (dir === undefined || peer.privileged) return m.ls(dir);
      const checked = checkPeerMayList(m, dir, peer);
      return m.ls(checked.dir, checked.expect);
    }
    case 'resolve': {
      const p = str('cgroup');
      if (!p) throw new CgviewError('E_BAD_INPUT', 'resolve needs a cgroup directory');
      return m.resolve(p);
    }
    case 'status': {
      const s = peer.privileged ? m.status() : peerStatus(m.status());
      return control ? { ...s, badRequests: control.badRequests, control: { ...control } } : s;
    }
    case 'rescan':
      m.rescanAll('requested');
      return { ok: true };
    default:
      throw new CgviewError('E_BAD_INPUT', `unknown request ${JSON.stringify(req.op)}`);
  }
}

/** Decodes, checks and runs one request line; never throws. */
export function answer(
  m: Manager,
  line: string,
  peer: Peer,
  control: ControlStats,
): { res: Response; bad?: CgviewError; internal?: Error } {
  let req: Request;
  try {
    req = checkRequest(JSON.parse(line));
  } catch (e) {
    const bad =
      e instanceof CgviewError
        ? e
        : new CgviewError('E_BAD_INPUT', 'a request line is not JSON', { cause: e });
    control.badRequests++;
    return { res: errorResponse(bad), bad };
  }
  try {
    return { res: { ok: true, result: handle(m, req, peer, control) } };
  } catch (e) {
    if (e instanceof CgviewError) return { res: errorResponse(e) };
    control.internalErrors++;
    const internal = e instanceof Error ? e : new Error(String(e));
    return {
      res: { ok: false, error: { code: 'E_INTERNAL', message: `${req.op}: ${internal.message}` } },
      internal,
    };
  }
}
