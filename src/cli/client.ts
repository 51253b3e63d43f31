/** Client commands: talk to the daemon over its socket; cat reads view files itself. */
import fs from 'node:fs';
import path from 'node:path';
import { indexFileFor, request, socketPath } from '../daemon/server.js';
import { CgviewError, isCgviewError } from '../errors.js';
import { BPF_FS_MAGIC } from '../kernel/magic.js';
import { treeDirForCgroup } from '../tree/paths.js';
import type { RootsIndex } from '../tree/state.js';
import { buildView, isSourceSpec } from '../views/build.js';
import { parseViewOutput } from '../views/parse.js';
import { bytePath, fromBytes, OPTIONS, parseArgs, resolveBytes, usageError, writeText } from './args.js';

/*
 * Arguments arrive as byte strings (src/cli/args.ts) and the daemon speaks
 * byte strings too (one char per byte: cgroup names need not be UTF-8), so
 * paths go to it and come back unchanged; the local filesystem is reached
 * with Buffer paths. Only what must be text is decoded: the socket path and
 * --json output (where bytes that are not UTF-8 become U+FFFD).
 */
function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [f(k), mapStrings(x, f)]));
  return v;
}

function call(socket: string, req: { op: string; args?: Record<string, unknown> }): Promise<unknown> {
  return request(socket, req);
}

function sock(values: Map<string, string>): string {
  const s = values.get('socket');
  return socketPath(s === undefined ? undefined : fromBytes(s));
}

/** `human()` returns a byte string, written as its bytes; JSON is UTF-8 text. */
function out(v: unknown, json: boolean, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(mapStrings(v, fromBytes), null, 2)}\n`);
  else writeText(process.stdout, human());
}

/**
 * Resolves a view spec's object path against the current directory. A C
 * source (`./x.bpf.c:prog`) is built here, with the caller's rights, into
 * the build cache (src/views/build.ts): the daemon only gets the object.
 */
function resolveView(spec: string, quiet: boolean): string {
  const i = spec.lastIndexOf(':');
  if (isSourceSpec(spec)) {
    const src = fromBytes(resolveBytes(spec.slice(0, i)));
    const r = buildView(src);
    if (r.diagnostics) process.stderr.write(r.diagnostics);
    if (!quiet)
      process.stderr.write(
        r.cached
          ? `cgview: ${src} unchanged, built before: ${r.object}\n`
          : `cgview: built ${src} into ${r.object}\n`,
      );
    // The object's path as a byte string, as the daemon speaks (src/cli/args.ts).
    return `${Buffer.from(r.object, 'utf8').toString('latin1')}:${spec.slice(i + 1)}`;
  }
  if (i > 0 && spec.slice(0, i).endsWith('.o'))
    return `${resolveBytes(spec.slice(0, i))}:${spec.slice(i + 1)}`;
  return spec;
}

export async function pin(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['pin']!);
  const [view, dir, ...extra] = a.positional;
  if (!view || !dir || extra.length)
    throw usageError(
      'usage: cgview pin VIEW DIR [--cgroup CGROUP_DIR] [--inherit] [--name NAME] [--mode auto|manual] [--file-mode OCTAL]',
    );
  const mode = a.values.get('mode');
  if (mode !== undefined && mode !== 'auto' && mode !== 'manual')
    throw usageError(`--mode is auto or manual, not ${JSON.stringify(fromBytes(mode))}`);
  const fm = a.values.get('file-mode');
  if (fm !== undefined && !/^0?[0-7]{1,3}$/.test(fm))
    throw usageError(`--file-mode wants an octal mode such as 0440, not ${JSON.stringify(fromBytes(fm))}`);
  const cgroup = a.values.get('cgroup');
  const res = (await call(sock(a.values), {
    op: 'pin',
    args: {
      view: resolveView(view, a.bools.has('json')),
      dir: resolveBytes(dir),
      ...(cgroup ? { cgroup: resolveBytes(cgroup) } : {}),
      inherit: a.bools.has('inherit'),
      ...(a.values.has('name') ? { name: a.values.get('name') } : {}),
      ...(mode ? { mode } : {}),
      ...(fm ? { fileMode: Number.parseInt(fm, 8) } : {}),
    },
  })) as { dir: string; name: string; tagged: boolean; cgroup: string; inherit: boolean; mode: string };
  out(
    res,
    a.bools.has('json'),
    () =>
      `${res.tagged ? `tagged ${res.dir} with ${res.cgroup} (${res.mode} mode); ` : ''}pinned ${view} as ${path.join(res.dir, res.name)}${
        res.inherit ? ' (inherited by every directory of the tree)' : ''
      }\n`,
  );
  return 0;
}

export async function unpin(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['unpin']!);
  const [p, ...extra] = a.positional;
  if (!p || extra.length) throw usageError('usage: cgview unpin DIR/NAME');
  const res = (await call(sock(a.values), { op: 'unpin', args: { path: resolveBytes(p) } })) as {
    path: string;
    inherited: boolean;
    untagged: boolean;
  };
  out(
    res,
    a.bools.has('json'),
    () =>
      `unpinned ${res.path}${res.inherited ? ' from the whole tree' : ''}${res.untagged ? '; the tree is untagged' : ''}\n`,
  );
  return 0;
}

export async function ls(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['ls']!);
  const [dir, ...extra] = a.positional;
  if (extra.length) throw usageError('usage: cgview ls [DIR]');
  const res = (await call(sock(a.values), {
    op: 'ls',
    args: dir ? { dir: resolveBytes(dir) } : {},
  })) as Record<string, unknown>;
  out(res, a.bools.has('json'), () => {
    if (!dir) {
      const roots = res['roots'] as Array<{
        dir: string;
        cgroup: string;
        mode: string;
        inherit: string[];
        dirs: number;
      }>;
      if (!roots.length) return 'no tagged view trees\n';
      return roots
        .map(
          (r) => `${r.dir}\t${r.cgroup}\t${r.mode}\t${r.dirs} dirs\tinherit: ${r.inherit.join(',') || '-'}\n`,
        )
        .join('');
    }
    const views = res['views'] as Array<{ name: string; view: string; mode: string; present: boolean }>;
    const subdirs = res['subdirs'] as string[];
    return (
      `${res['dir']} (cgroup ${res['cgroup']})\n` +
      views.map((v) => `  ${v.name}\t${v.view}\t0${v.mode}${v.present ? '' : '\t(missing)'}\n`).join('') +
      subdirs.map((s) => `  ${s}/\n`).join('')
    );
  });
  return 0;
}

/** Reads a view file, named by a byte-string path. */
function readView(file: string): Buffer {
  // Never follow a symlink someone put in a tree.
  const fd = fs.openSync(bytePath(file), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export async function cat(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['cat']!);
  const [target, view, ...extra] = a.positional;
  if (!target || extra.length) throw usageError('usage: cgview cat CGROUP_OR_VIEW_PATH [VIEW] [--json]');
  const json = a.bools.has('json');
  const parsed: Record<string, Record<string, string>> = {};
  // --json: every view file parsed with the one key: value parser.
  // A view prints bytes (a cgroup name need not be UTF-8): they go out as they are.
  const emit = (file: string, bytes: Buffer, header: boolean) => {
    if (json) parsed[fromBytes(file)] = Object.fromEntries(parseViewOutput(bytes.toString('utf8')));
    else {
      if (header) writeText(process.stdout, `==> ${file} <==\n`);
      process.stdout.write(bytes);
    }
  };
  const p = resolveBytes(target);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(bytePath(p));
  } catch {
    throw new CgviewError('E_NOT_FOUND', `${p} does not exist`, { path: p });
  }
  if (st.isFile()) {
    emit(p, readView(p), false);
    if (json) process.stdout.write(`${JSON.stringify(parsed, null, 2)}\n`);
    return 0;
  }
  if (!st.isDirectory()) throw new CgviewError('E_BAD_INPUT', `${p} is neither a view file nor a directory`);
  let dirs: Array<{ dir: string; views: string[] }>;
  if (p.startsWith('/sys/fs/cgroup/') || p === '/sys/fs/cgroup' || !isBpffsDir(p)) {
    dirs = await resolveCgroup(sock(a.values), p);
    if (!dirs.length)
      throw new CgviewError('E_NOT_TAGGED', `no view tree mirrors ${p}`, {
        hint: 'cgview ls shows the tagged trees',
      });
  } else
    dirs = [
      {
        dir: p,
        views: fs
          .readdirSync(bytePath(p), { withFileTypes: true, encoding: 'buffer' })
          .filter((e) => e.isFile())
          .map((e) => e.name.toString('latin1')),
      },
    ];
  let printed = 0;
  for (const d of dirs) {
    const names = view ? [view] : d.views;
    for (const n of names) {
      const f = path.join(d.dir, n);
      let text: Buffer;
      try {
        text = readView(f);
      } catch (e) {
        if (view)
          throw new CgviewError('E_NOT_FOUND', `${f}: ${(e as NodeJS.ErrnoException).code}`, { path: f });
        continue;
      }
      emit(f, text, !view || dirs.length > 1);
      printed++;
    }
  }
  if (!printed) throw new CgviewError('E_NOT_FOUND', `no view ${view ?? ''} to read for ${p}`);
  if (json) process.stdout.write(`${JSON.stringify(parsed, null, 2)}\n`);
  return 0;
}

function isBpffsDir(p: string): boolean {
  try {
    return fs.statfsSync(bytePath(p)).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Tree directories that mirror a cgroup: asked of the daemon, or, for a user
 * who may not talk to it (the socket is root's), worked out from the public
 * index of trees beside the socket.
 */
async function resolveCgroup(
  socket: string,
  cgroup: string,
): Promise<Array<{ dir: string; views: string[] }>> {
  try {
    return (await call(socket, { op: 'resolve', args: { cgroup } })) as Array<{
      dir: string;
      views: string[];
    }>;
  } catch (e) {
    if (!isCgviewError(e, 'E_PERMISSION')) throw e;
  }
  let index: RootsIndex;
  try {
    index = JSON.parse(fs.readFileSync(indexFileFor(socket), 'utf8')) as RootsIndex;
  } catch {
    throw new CgviewError(
      'E_PERMISSION',
      `cannot ask the daemon on ${socket}, and no index of trees beside it`,
      {
        hint: 'read the view files in the tree directly, or ask root',
      },
    );
  }
  const out: Array<{ dir: string; views: string[] }> = [];
  for (const r of index.roots) {
    const d = treeDirForCgroup(r, cgroup);
    if (d === null) continue;
    let views: string[] = [];
    try {
      views = fs
        .readdirSync(bytePath(d), { withFileTypes: true, encoding: 'buffer' })
        .filter((e) => e.isFile())
        .map((e) => e.name.toString('latin1'));
    } catch {
      continue; // not mirrored (or not readable for this user)
    }
    out.push({ dir: d, views });
  }
  return out;
}

interface CollectorStatus {
  start?: string;
  since?: string;
  reasons?: string[];
  carried?: string[];
  programs?: Record<string, { runCnt?: number; runTimeNs?: number } | string>;
  /** A user collector: the stored object it comes from. */
  object?: string;
}

/** One collector in words: how it started, and what its programs cost (when bpf_stats_enabled is on). */
function collectorLines(name: string, v: CollectorStatus): string[] {
  const progs = Object.entries(v.programs ?? {}).map(([p, x]) => {
    if (typeof x !== 'object') return `${p}: ${x}`;
    const cnt = x.runCnt ?? 0;
    return cnt > 0 ? `${p} ${cnt} runs, ${Math.round((x.runTimeNs ?? 0) / cnt)} ns/run` : p;
  });
  const out = [
    `collector ${name}: ${v.start ?? 'running'} ${v.since ?? ''}; programs: ${progs.join(', ') || '-'}`,
  ];
  if (v.object) out.push(`  user view object ${v.object}`);
  if (v.start === 'replaced')
    out.push(
      `  replaced because: ${(v.reasons ?? []).join('; ') || '-'}; counters carried in: ${(v.carried ?? []).join(', ') || 'none'}`,
    );
  return out;
}

export async function status(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['status']!);
  if (a.positional.length) throw usageError('usage: cgview status');
  const s = (await call(sock(a.values), { op: 'status' })) as Record<string, unknown> & {
    roots: Array<
      Record<string, unknown> & { inherit: Array<{ name: string }>; conflicts: string[] | number }
    >;
  };
  out(s, a.bools.has('json'), () => {
    const lines = [
      // Asked by another user than root, status has no paths of files nor errors.
      `daemon: pid ${s['pid']}, up ${s['uptimeSeconds']} s${s['stateFile'] !== undefined ? `, state ${s['stateFile']}` : ''}`,
      `watching: ${s['watches']} inotify watches; ${s['events']} events, ${s['overflows']} overflows, ${s['rescans']} rescans${
        s['degraded'] ? `; DEGRADED: ${s['degraded']}` : ''
      }`,
      `operations: ${s['opsApplied']} applied, ${s['opsFailed']} failed`,
    ];
    for (const r of s.roots) {
      const conflicts = typeof r.conflicts === 'number' ? r.conflicts : r.conflicts.length;
      lines.push(
        `tree ${r['dir']} <- ${r['cgroup']} (${r['hierarchy']}, ${r['mode']}): ${r['dirs']} dirs, ${r['pins']} pins; inherit: ${
          r.inherit.map((p) => p.name).join(', ') || '-'
        }${conflicts ? `; ${conflicts} cgroups not mirrored (name taken by a view)` : ''}${r['error'] ? `; ERROR: ${r['error']}` : ''}${r['failing'] ? '; ERROR (root sees which)' : ''}`,
      );
    }
    const c = s['collectors'] as Record<string, CollectorStatus>;
    for (const [name, v] of Object.entries(c)) lines.push(...collectorLines(name, v));
    const ctl = s['control'] as Record<string, number> | undefined;
    if (ctl)
      lines.push(
        `control socket: ${ctl['clients'] ?? 0} clients; ${ctl['badRequests'] ?? 0} bad, ${ctl['deniedRequests'] ?? 0} denied requests; ${ctl['refusedClients'] ?? 0} refused, ${ctl['droppedClients'] ?? 0} dropped, ${ctl['evictedClients'] ?? 0} evicted, ${ctl['idleClosed'] ?? 0} closed idle`,
      );
    return `${lines.join('\n')}\n`;
  });
  return 0;
}
