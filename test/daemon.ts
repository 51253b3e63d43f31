/**
 * Test helpers for the daemon on the real kernel: a throw-away environment
 * (cgroup, bpffs directory, state file, socket), a daemon run as a child
 * process (`bin/cgview daemon`), CLI runs, and listings of a view tree and
 * of the cgroup subtree it mirrors. Everything is removed after the file's
 * tests, also on failure; daemons are killed first.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { linkInfo, objGetAt, openDir } from '../src/kernel/index.js';
import {
  CGROUP2,
  CGVIEW,
  iterLinksOf,
  type LinkRow,
  onCleanup,
  RUN_PREFIX,
  removeTree,
  sleep,
  tmpBpffsDir,
  tmpCgroup,
} from './helpers.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for child processes: no CGVIEW_* variables leak in from the caller. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('CGVIEW_')) delete env[k];
  return { ...env, ...extra };
}

/** Runs a command; never throws for a non-zero exit (the code is returned). */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        encoding: 'latin1',
        timeout: opts.timeoutMs ?? 30000,
        killSignal: 'SIGKILL',
        env: childEnv(opts.env),
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) => {
        let code = 0;
        if (err) {
          const e = err as { code?: unknown; killed?: boolean; signal?: string };
          code = typeof e.code === 'number' ? e.code : -1;
          if (e.killed)
            stderr += `\n[killed after ${opts.timeoutMs ?? 30000} ms${e.signal ? ` by ${e.signal}` : ''}]`;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `bin/cgview ARGS`. */
export function cgview(
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return run(process.execPath, [CGVIEW, ...args], opts);
}

/** Runs a command as another user (no supplementary groups). */
export function runAs(uid: number, gid: number, cmd: string, args: string[]): Promise<RunResult> {
  return run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', cmd, ...args]);
}

/** Where one daemon keeps its things. The view tree root is `bpffs`, empty and not yet created. */
export interface DaemonEnv {
  /** Temporary bpffs directory holding the tree root and the daemon's private directory. */
  bpffsParent: string;
  /** The daemon's --bpffs: `<bpffsParent>/tree`. */
  bpffs: string;
  /** Where the daemon keeps collectors by default: a sibling of the tree root in `bpffsParent`. */
  privateDir: string;
  /** A temporary cgroup (v2 unless `parent` says otherwise): the daemon's --cgroup-root. */
  cgroupRoot: string;
  state: string;
  socket: string;
}

/**
 * A fresh environment for one daemon; removed after the file's tests. The
 * cgroup root is a new temporary cgroup unless `cgroupRoot` names one.
 */
export function daemonEnv(opts: { cgroupParent?: string; cgroupRoot?: string } = {}): DaemonEnv {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cgroupRoot = opts.cgroupRoot ?? tmpCgroup(opts.cgroupParent ?? CGROUP2);
  const bpffsParent = tmpBpffsDir();
  // The daemon's default private directory: `<dirname(bpffs)>/<basename>-private`.
  const privateDir = path.join(bpffsParent, 'tree-private');
  onCleanup(() => removeTree(privateDir));
  return {
    bpffsParent,
    bpffs: path.join(bpffsParent, 'tree'),
    privateDir,
    cgroupRoot,
    state: path.join(tmp, 'state.json'),
    socket: path.join(tmp, 'cgview.sock'),
  };
}

export interface DaemonOptions {
  /** Create the default tree (info inherited) on first start; default false (--no-default-views). */
  defaultViews?: boolean;
  /** Extra environment variables (CGVIEW_CRASH_AT, ...). */
  env?: Record<string, string>;
  /** Wait until the socket answers (default true). */
  waitReady?: boolean;
  /** More daemon arguments (--listen ...). */
  args?: string[];
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<Daemon>();

/** `bin/cgview daemon` as a child process. */
export class Daemon {
  readonly env: DaemonEnv;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  stdout = '';
  stderr = '';

  private constructor(env: DaemonEnv, opts: DaemonOptions) {
    this.env = env;
    const args = [
      CGVIEW,
      'daemon',
      '--bpffs',
      env.bpffs,
      '--cgroup-root',
      env.cgroupRoot,
      '--state',
      env.state,
      '--socket',
      env.socket,
      ...(opts.defaultViews ? [] : ['--no-default-views']),
      ...(opts.args ?? []),
    ];
    this.child = spawn(process.execPath, args, {
      env: childEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error('could not start the daemon');
    this.pid = this.child.pid;
    this.child.stdout!.setEncoding('latin1').on('data', (s: string) => {
      this.stdout += s;
    });
    this.child.stderr!.setEncoding('latin1').on('data', (s: string) => {
      this.stderr += s;
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      }),
    );
    live.add(this);
    const pid = this.pid;
    // Runs before the environment's directories are removed (cleanups run newest first).
    onCleanup(() => {
      if (this.exit) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      waitGoneSync(pid);
    });
  }

  /** Starts a daemon and (by default) waits until its socket answers. */
  static async start(env: DaemonEnv, opts: DaemonOptions = {}): Promise<Daemon> {
    const d = new Daemon(env, opts);
    if (opts.waitReady !== false) await d.ready();
    return d;
  }

  /** Waits until the daemon answers a ping on its socket; fails if it exits first. */
  async ready(ms = 15000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      if (this.exit)
        throw new Error(
          `the daemon exited (${JSON.stringify(this.exit)}) before it was ready:\n${this.stderr}`,
        );
      if (await ping(this.env.socket)) return;
      if (Date.now() > end)
        throw new Error(`the daemon did not answer on ${this.env.socket} within ${ms} ms:\n${this.stderr}`);
      await sleep(20);
    }
  }

  /** SIGTERM, and wait for the exit. */
  async stop(ms = 5000): Promise<Exit> {
    if (!this.exit) this.child.kill('SIGTERM');
    return this.waitExit(ms);
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<Exit> {
    if (!this.exit) this.child.kill('SIGKILL');
    return this.waitExit(10000);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async waitExit(ms = 10000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the daemon did not exit within ${ms} ms:\n${tail(this.stderr)}`)),
        ms,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a client command against this daemon (--socket appended). */
  cli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
    return cgview([...args, '--socket', this.env.socket], opts);
  }

  /** Like cli(), but fails the test on a non-zero exit. */
  async ok(args: string[]): Promise<string> {
    const r = await this.cli(args);
    assert.equal(
      r.code,
      0,
      `cgview ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n--- daemon ---\n${tail(this.stderr)}`,
    );
    return r.stdout;
  }

  /** `cgview status --json`. */
  async status(): Promise<Status> {
    return JSON.parse(await this.ok(['status', '--json'])) as Status;
  }

  /** The daemon's structured log records (stderr, one JSON object per line). */
  logs(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* a line cut short by a kill */
      }
    }
    return out;
  }
}

export interface Status {
  pid: number;
  overflows: number;
  rescans: number;
  opsFailed: number;
  degraded: string | null;
  roots: Array<{
    dir: string;
    cgroup: string;
    mode: string;
    inherit: Array<{ name: string; view: string; fileMode: string }>;
    local: Record<string, string[]>;
    dirs: number;
    pins: number;
    conflicts: string[];
    error: string | null;
  }>;
  collectors: Record<string, unknown>;
}

function tail(s: string, lines = 30): string {
  return s.split('\n').slice(-lines).join('\n');
}

/** Stderr of the daemons still running, for failure messages. */
export function liveDaemonLogs(): string {
  return [...live].map((d) => `--- daemon ${d.pid} ---\n${tail(d.stderr)}`).join('\n');
}

/**
 * One request on a daemon's socket, without the CLI (which costs a Node start
 * per call): true when it is answered ok within `ms`, false otherwise.
 */
export function requestOk(
  socket: string,
  op: string,
  args: Record<string, unknown> = {},
  ms = 20000,
): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    let buf = '';
    const done = (v: boolean) => {
      clearTimeout(timer);
      c.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), ms);
    c.setEncoding('latin1');
    c.on('connect', () => c.write(`${JSON.stringify({ op, args })}\n`));
    c.on('data', (x: string) => {
      buf += x;
      if (buf.includes('\n')) done(buf.startsWith('{"ok":true'));
    });
    c.on('error', () => done(false));
    c.on('close', () => done(false));
  });
}

const ping = (socket: string) => requestOk(socket, 'ping', {}, 1000);

/** Blocks until process `pid` is gone or a zombie (its descriptors, hence its links, are released). */
function waitGoneSync(pid: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 500; i++) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return;
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    Atomics.wait(cell, 0, 0, 10);
  }
}

// --- listings --------------------------------------------------------------------

/** Byte-string path (one char per byte) to a Buffer path, so names that are not UTF-8 survive. */
export function bp(p: string): Buffer {
  return Buffer.from(p, 'latin1');
}

/** Joins a root and a byte-string relative path ('' is the root). */
export function under(root: string, rel: string): Buffer {
  return rel === '' ? bp(root) : Buffer.concat([Buffer.from(root), Buffer.from('/'), bp(rel)]);
}

/** `key: value` lines of a view file. */
export function parseView(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** Reads a view file (no symlink followed) as a byte string; null when it cannot be read. */
export function readView(file: string | Buffer): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    return fs.readFileSync(fd, 'latin1');
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** The cgroup id a view file prints (its `cgroup_id:` line), or null. */
export function viewCgroupId(file: string | Buffer): string | null {
  const t = readView(file);
  return t === null ? null : (parseView(t)['cgroup_id'] ?? null);
}

/** Relative byte-string paths of every directory under `root` ('' for the root itself), sorted. */
export function dirRels(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    out.push(rel);
    let entries: fs.Dirent<Buffer>[];
    try {
      entries = fs.readdirSync(under(root, rel), { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return;
    }
    for (const e of entries) {
      const name = e.name.toString('latin1');
      if (e.isDirectory()) walk(rel === '' ? name : `${rel}/${name}`);
    }
  };
  walk('');
  return out.sort();
}

/** Relative paths of every cgroup of a subtree ('' for its root), sorted. */
export const cgroupRels = dirRels;

/**
 * Tree name of a cgroup name: bpffs refuses names with a '.', so the tree
 * percent-encodes '%' and '.' (src/tree/paths.ts); every other byte is kept.
 */
export function treeName(cgroupName: string): string {
  return cgroupName.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E'));
}

/** Tree path of a relative cgroup path. */
export function treeRel(rel: string): string {
  return rel === '' ? '' : rel.split('/').map(treeName).join('/');
}

/** Inode (cgroup id) of a cgroup, by its relative path. */
export function cgroupId(root: string, rel: string): string {
  return String(fs.statSync(under(root, rel), { bigint: true }).ino);
}

/**
 * A full listing of a view tree: one line per directory (with its owner) and
 * per entry in it (kind, the cgroup id a view file prints, mode, owner).
 * The root directory's own line is left out (its owner is whoever made it).
 */
export function treeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const dir = under(root, rel);
    let entries: fs.Dirent<Buffer>[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return;
    }
    for (const e of entries) {
      const name = e.name.toString('latin1');
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const p = under(root, childRel);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      const owner = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.push(`dir ${childRel} owner=${owner}`);
        walk(childRel);
      } else if (st.isSymbolicLink()) out.push(`symlink ${childRel} -> ${fs.readlinkSync(p, 'latin1')}`);
      else if (st.isFile())
        out.push(
          `file ${childRel} cgroup_id=${viewCgroupId(p)} mode=${(st.mode & 0o7777).toString(8)} owner=${owner}`,
        );
      else out.push(`other ${childRel}`);
    }
  };
  walk('');
  return out.sort();
}

export interface ExpectedView {
  name: string;
  /** Default 0o440. */
  mode?: number;
}

/**
 * What a clean start mirrors from the cgroup subtree at `cgroupRoot` in auto
 * mode: every cgroup a directory (its tree name) owned like the cgroup,
 * holding every view file, each printing that cgroup's id. `rels` (cgroup
 * paths) restricts it.
 */
export function expectedListing(
  cgroupRoot: string,
  views: ExpectedView[],
  rels = cgroupRels(cgroupRoot),
): string[] {
  const out: string[] = [];
  for (const rel of rels) {
    const st = fs.statSync(under(cgroupRoot, rel), { bigint: true });
    const owner = `${st.uid}:${st.gid}`;
    const t = treeRel(rel);
    if (rel !== '') out.push(`dir ${t} owner=${owner}`);
    for (const v of views) {
      const file = t === '' ? v.name : `${t}/${v.name}`;
      out.push(`file ${file} cgroup_id=${st.ino} mode=${(v.mode ?? 0o440).toString(8)} owner=${owner}`);
    }
  }
  return out.sort();
}

/**
 * Polls until `actual()` deep-equals `expected()`; on timeout fails with the
 * difference and the daemons' logs.
 */
export async function waitForEqual<T>(
  actual: () => T,
  expected: () => T,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      // Listing a tree races with the daemon changing it (an entry gone
      // between readdir and readlink): such a throw means "not yet".
      const a = actual();
      const e = expected();
      assert.deepEqual(a, e);
      return;
    } catch (err) {
      if (Date.now() > end) {
        (err as Error).message =
          `${what}: not reached within ${ms} ms\n${(err as Error).message}\n${liveDaemonLogs()}`;
        throw err;
      }
    }
    await sleep(50);
  }
}

/** Polls an async condition. */
export async function waitForAsync(
  fn: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}\n${liveDaemonLogs()}`);
    await sleep(50);
  }
}

// --- links ---------------------------------------------------------------------------

/** Iter links in the kernel whose cgroup is one of `ids` (only those: other links on the host are not looked at). */
export function linksFor(ids: Iterable<string>): LinkRow[] {
  return iterLinksOf(ids);
}

/** Id of the link pinned at `file` (BPF_OBJ_GET, no symlink followed). */
export function pinnedLinkId(file: string): number {
  const dir = openDir(path.dirname(file));
  try {
    const fd = objGetAt(dir, path.basename(file), 'pinned link');
    if (!fd) throw new Error(`nothing pinned at ${file}`);
    try {
      return linkInfo(fd).id;
    } finally {
      fd.close();
    }
  } finally {
    dir.close();
  }
}

// --- cgroups -------------------------------------------------------------------------

/** mkdir of relative cgroup paths under `root`, parents first. */
export function mkCgroups(root: string, rels: string[]): void {
  for (const rel of rels) fs.mkdirSync(under(root, rel));
}

/** rmdir of relative cgroup paths under `root`, deepest first. */
export function rmCgroups(root: string, rels: string[]): void {
  const sorted = [...rels].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  for (const rel of sorted) fs.rmdirSync(under(root, rel));
}

/**
 * A limit injected into one daemon instead of the host's sysctl: pass
 * `file` as CGVIEW_MAX_WATCHES or CGVIEW_MAX_QUEUED_EVENTS (src/kernel/inotify.ts
 * reads it on every use); `set(null)` lifts it.
 */
export function injectedLimit(): { file: string; set(n: number | null): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'limit');
  return { file, set: (n) => fs.writeFileSync(file, n === null ? '' : String(n)) };
}

// --- barriers ------------------------------------------------------------------------

/**
 * Waits until the daemon has handled every event that came before this call,
 * for negative checks ("X is not mirrored") instead of a fixed sleep. One
 * inotify instance delivers its events in order, so once the daemon has
 * acted on a sentinel made now, it has seen everything before it: in auto
 * mode a sentinel cgroup mirrored and removed again; in manual mode
 * (`cgroupRoot` null) a tree directory that matches no cgroup, refused.
 */
export async function settle(tree: string, cgroupRoot: string | null, ms = 5000): Promise<void> {
  const name = `settle-${Math.random().toString(36).slice(2, 10)}`;
  const dir = path.join(tree, name);
  if (cgroupRoot === null) {
    fs.mkdirSync(dir);
    await waitForAsync(() => !fs.existsSync(dir), ms, `the daemon to refuse ${dir}`);
    return;
  }
  const cg = path.join(cgroupRoot, name);
  fs.mkdirSync(cg);
  try {
    await waitForAsync(() => fs.existsSync(dir), ms, `the daemon to mirror ${cg}`);
  } finally {
    fs.rmdirSync(cg);
  }
  await waitForAsync(() => !fs.existsSync(dir), ms, `the daemon to remove ${dir}`);
}
