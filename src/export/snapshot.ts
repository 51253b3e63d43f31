/**
 * One snapshot of every pinned view of every mirrored cgroup, and /metrics
 * rendered from it (docs/metrics.md).
 *
 * - What is mirrored comes from the daemon's model (tree directories and the
 *   view files in place, cgroup ids): no directory is listed at scrape time.
 * - `info` comes from the model too (id, level, name, hierarchy id: what the
 *   view prints); other views from the collector's bulk reader where one
 *   exists (src/views/bulk.ts), else from their files, read below the tree's
 *   open root fd without following symlinks (a delegated user may own
 *   directories of a tree) into one reused buffer and parsed without a regex.
 * - A cgroup in several trees (same hierarchy and path) is one CgroupSnap:
 *   each view from the first tree that has it, trees in `cgview ls` order.
 * - Scrapes share: one snapshot in flight at a time, and scrapes within
 *   `cacheMs` of the last one get it (and its rendered bodies) again.
 */
import { cgroupMounts, mountOf } from '../cgroup/hierarchy.js';
import type { ControlStats } from '../daemon/control-socket.js';
import type { Manager } from '../daemon/manager.js';
import type { RootRuntime } from '../daemon/roots.js';
import { cpath, readFileAt } from '../kernel/readat.js';
import type { ViewSample } from '../stats/keys.js';
import { encodeRel, relativeTo } from '../tree/paths.js';
import { localPins } from '../tree/state.js';
import { bulkReader } from '../views/bulk.js';
import { parseViewSpec } from '../views/registry.js';
import { classifyCached } from './classify-cache.js';
import { daemonFamilies, type HttpFigures } from './daemon-metrics.js';
import { exportViewName, type Family, toFamilies, utf8 } from './families.js';
import { workloadLabels } from './labels.js';
import { CONTENT_TYPE, type Format, negotiate, wantsGzip } from './negotiate.js';
import { cgroupFilter, defaultExportOptions, type ExportOptions, viewFilter } from './options.js';
import { gzipPieces, type Piece } from './pieces.js';
import { renderProtobufPieces } from './protobuf.js';
import { renderTextPieces } from './text.js';

export interface CgroupSnap {
  /** The tree (its root directory) this cgroup was read from first. */
  tree: string;
  /** Tree-relative path (cgroup names, not the tree's %2E form). */
  rel: string;
  /** Real name, relative to the hierarchy root; '/' for the root. UTF-8 (invalid bytes replaced). */
  path: string;
  /** 'v2', or the v1 controllers ('cpu,cpuacct'). */
  hierarchy: string;
  id: string;
  level: number;
  /** Workload labels (labels.ts). */
  labels: Record<string, string>;
  /** View (program) name → its sample. */
  views: Map<string, ViewSample>;
}

export interface Snapshot {
  /** ms, Date.now(). */
  at: number;
  monoNs: bigint;
  cgroups: CgroupSnap[];
  /** What the snapshot cost and found (the daemon's own figures). */
  stats: { ms: number; files: number; bulk: number; readErrors: number };
}

export interface SnapshotOptions {
  export?: Partial<ExportOptions>;
}

// --- per-tree facts, cached ------------------------------------------------------------------

interface TreeInfo {
  cgroup: string;
  /** The tree root cgroup relative to its hierarchy's mount ('' for the mount itself). */
  prefix: string;
  hierarchy: string;
  /** What does not change while a cgroup lives, by tree-relative path, kept from one scrape to the next. */
  cgroups: Map<string, CgStatic>;
}

interface CgStatic {
  id: bigint;
  idText: string;
  raw: string;
  path: string;
  level: number;
  key: string;
  labels: Record<string, string>;
  /** NUL-terminated tree paths of its view files, by file name. */
  files: Map<string, Buffer>;
  /** Its info sample (what info prints does not change while the cgroup lives): one object, frozen. */
  info?: ViewSample;
}
const treeInfos = new WeakMap<RootRuntime, TreeInfo>();

function treeInfo(rt: RootRuntime): TreeInfo | null {
  const have = treeInfos.get(rt);
  if (have && have.cgroup === rt.cfg.cgroup) return have;
  try {
    const mount = mountOf(rt.cfg.cgroup, cgroupMounts());
    const rel = relativeTo(mount.path, rt.cfg.cgroup) ?? '';
    const info: TreeInfo = {
      cgroup: rt.cfg.cgroup,
      prefix: rel === '' ? '' : `/${rel}`,
      hierarchy: mount.version === 2 ? 'v2' : mount.options.join(','),
      cgroups: new Map(),
    };
    treeInfos.set(rt, info);
    return info;
  } catch {
    return null;
  }
}

/** Program name of a view spec ('sched_lat', 'my_view' of '/x/my.bpf.o:my_view'); null when it does not parse. */
/** `name`: the view's key in CgroupSnap.views and its metrics' view name (families.ts exportViewName). */
type Program = { program: string; builtin: boolean; name: string };
const programs = new Map<string, Program | null>();
function programOf(spec: string): Program | null {
  let p = programs.get(spec);
  if (p !== undefined) return p;
  try {
    const d = parseViewSpec(spec);
    const builtin = !spec.includes(':');
    p = { program: d.program, builtin, name: exportViewName(d.program, builtin) };
  } catch {
    p = null;
  }
  if (programs.size > 4096) programs.clear();
  programs.set(spec, p);
  return p;
}

// --- reading view files ----------------------------------------------------------------------

let readBuf = Buffer.allocUnsafe(1 << 16);
/** The largest output read: a view printing more is cut at this (and counted as an error). */
const MAX_VIEW_BYTES = 1 << 22;

/** `key: value` lines into keys and values (printed order), without a regex per line; false for a malformed output. */
export function splitLines(text: string, keys: string[], values: string[]): boolean {
  let i = 0;
  const n = text.length;
  while (i < n) {
    let e = text.indexOf('\n', i);
    if (e < 0) e = n;
    const c = text.indexOf(':', i);
    if (c < 0 || c >= e || c === i) return false;
    // A key is [A-Za-z_][A-Za-z0-9_.-]* (src/views/parse.ts): anything else is a broken view.
    for (let k = i; k < c; k++) {
      const ch = text.charCodeAt(k);
      const alpha = (ch >= 65 && ch <= 90) || (ch >= 97 && ch <= 122) || ch === 95;
      if (!alpha && (k === i || !((ch >= 48 && ch <= 57) || ch === 46 || ch === 45))) return false;
    }
    let v = c + 1;
    while (v < e && text.charCodeAt(v) === 32) v++;
    keys.push(text.slice(i, c));
    values.push(text.slice(v, e));
    i = e + 1;
  }
  return true;
}

/** `key: value` lines into a Map; null for a malformed output or a key printed twice. */
export function parseLines(text: string): Map<string, string> | null {
  const keys: string[] = [];
  const values: string[] = [];
  if (!splitLines(text, keys, values)) return null;
  const out = new Map<string, string>();
  for (let i = 0; i < keys.length; i++) out.set(keys[i]!, values[i]!);
  return out.size === keys.length ? out : null;
}

/** A view file's sample: null when it printed nothing (its cgroup is gone) or is not there. */
function readView(rt: RootRuntime, path: Buffer, view: string): ViewSample | null | 'error' {
  for (;;) {
    const n = readFileAt(rt.fd!, path, readBuf);
    if (n === -1) return null;
    if (n === -2) {
      if (readBuf.length >= MAX_VIEW_BYTES) return 'error';
      readBuf = Buffer.allocUnsafe(readBuf.length * 4);
      continue;
    }
    if (n === 0) return null;
    const keys: string[] = [];
    const values: string[] = [];
    if (!splitLines(readBuf.toString('latin1', 0, n), keys, values)) return 'error';
    return classifyCached(view, keys, values);
  }
}

/** The info view's sample from the model: what classifyView makes of the lines `info` prints (bpf/info.bpf.c). */
function infoSample(id: string, level: number, name: string, hierarchyId: number): ViewSample {
  return classifyCached(
    'info',
    ['cgroup_id', 'level', 'name', 'hierarchy_id'],
    [id, String(level), name, String(hierarchyId)],
  );
}

/** Yield to the event loop after this much work (the control socket is served meanwhile). */
const SLICE_MS = 20;

let readErrorsTotal = 0;

/**
 * Every pinned view of every mirrored cgroup the options select (default:
 * all), as samples. Never throws for one view or tree: a file that cannot be
 * read is counted (stats.readErrors) and left out.
 */
export async function collectSnapshot(
  m: Manager,
  opts: SnapshotOptions | Partial<ExportOptions> = {},
): Promise<Snapshot> {
  const o: ExportOptions = {
    ...defaultExportOptions(),
    ...((opts as SnapshotOptions).export ?? (opts as Partial<ExportOptions>)),
  };
  const t0 = performance.now();
  const at = Date.now();
  const monoNs = process.hrtime.bigint();
  const keep = cgroupFilter(o);
  const viewOk = viewFilter(o);
  const byKey = new Map<string, CgroupSnap>();
  const cgroups: CgroupSnap[] = [];
  const bulk = new Map<string, Map<string, ViewSample> | null>();
  const stats = { ms: 0, files: 0, bulk: 0, readErrors: 0 };
  let sliceStart = performance.now();
  for (const rt of [...m.roots]) {
    if (!rt.fd || rt.cfg.untagging) continue;
    const ti = treeInfo(rt);
    if (!ti) continue;
    const seen = new Map<string, CgStatic>();
    const model = rt.model;
    for (const [rel, files] of model.dirs) {
      if (files.size === 0) continue;
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        sliceStart = performance.now();
        if (!rt.fd) break; // the tree was closed meanwhile
      }
      const node = model.cgroups.get(rel);
      if (!node) continue;
      let st = ti.cgroups.get(rel);
      if (!st || st.id !== node.id) {
        const raw = `${ti.prefix}${rel === '' ? '' : `/${rel}`}` || '/';
        let level = 0;
        if (raw !== '/') for (let i = 0; i < raw.length; i++) if (raw.charCodeAt(i) === 47) level++;
        const path = utf8(raw);
        const key = `${ti.hierarchy}\0${path}`;
        st = {
          id: node.id,
          idText: String(node.id),
          raw,
          path,
          level,
          key,
          labels: workloadLabels(path) as Record<string, string>,
          files: new Map(),
        };
      }
      seen.set(rel, st);
      const { raw, path, level, key } = st;
      if (!keep(path, level)) continue;
      let cs = byKey.get(key);
      if (!cs) {
        const labels = st.labels;
        cs = {
          tree: rt.cfg.dir,
          rel,
          path,
          hierarchy: ti.hierarchy,
          id: st.idText,
          level,
          labels,
          views: new Map(),
        };
        byKey.set(key, cs);
        cgroups.push(cs);
      }
      for (let pass = 0; pass < 2; pass++) {
        const pins = pass === 0 ? rt.cfg.inherit : localPins(rt.cfg, rel);
        for (const pin of pins) {
          if (!files.has(pin.name)) continue;
          const prog = programOf(pin.view);
          if (!prog || !viewOk(prog.program) || cs.views.has(prog.name)) continue;
          if (prog.builtin && prog.program === 'info') {
            st.info ??= Object.freeze(
              infoSample(cs.id, level, raw.slice(raw.lastIndexOf('/') + 1), rt.hierarchyId),
            );
            cs.views.set('info', st.info);
            continue;
          }
          if (prog.builtin) {
            // One walk per view and tree (its cgroup subtree), shared by every cgroup of it.
            const bk = `${prog.program}\0${rt.cfg.dir}`;
            let b = bulk.get(bk);
            if (b === undefined) {
              try {
                b =
                  bulkReader(m.collectors, prog.program, rt.hierarchyId, { root: rt.cfg.cgroup })?.read() ??
                  null;
              } catch {
                b = null; // the files, then
              }
              bulk.set(bk, b);
            }
            const s = b?.get(cs.id);
            if (s) {
              cs.views.set(prog.program, s);
              stats.bulk++;
              continue;
            }
          }
          let p = st.files.get(pin.name);
          if (!p) {
            p = cpath(rel === '' ? pin.name : `${encodeRel(rel)}/${pin.name}`);
            st.files.set(pin.name, p);
          }
          stats.files++;
          let s: ViewSample | null | 'error';
          try {
            s = readView(rt, p, prog.program);
          } catch {
            s = 'error';
          }
          if (s === 'error') stats.readErrors++;
          else if (s) cs.views.set(prog.name, s);
        }
      }
    }
    ti.cgroups = seen;
  }
  readErrorsTotal += stats.readErrors;
  stats.ms = performance.now() - t0;
  // A cgroup with no view selected is no series at all.
  return { at, monoNs, cgroups: cgroups.filter((c) => c.views.size > 0), stats };
}

// --- /metrics ----------------------------------------------------------------------------------

interface ScrapeState {
  opts: ExportOptions;
  control: ControlStats | undefined;
  http: HttpFigures | undefined;
  inflight: Promise<Snapshot> | null;
  last: Snapshot | null;
  /** Bodies rendered from `last`, by format and encoding. */
  bodies: Map<string, Promise<Body>>;
  scrapes: number;
  snapshots: number;
  lastMs: number;
  conflicts: number;
  /** Rate limit of the name-clash log: window start (ms) and lines in it. */
  logWindow: number;
  logged: number;
}
const states = new WeakMap<Manager, ScrapeState>();

function stateOf(m: Manager): ScrapeState {
  let s = states.get(m);
  if (!s) {
    s = {
      opts: defaultExportOptions(),
      control: undefined,
      http: undefined,
      inflight: null,
      last: null,
      bodies: new Map(),
      scrapes: 0,
      snapshots: 0,
      lastMs: 0,
      conflicts: 0,
      logWindow: 0,
      logged: 0,
    };
    states.set(m, s);
  }
  return s;
}

/** Sets what /metrics exports (--metrics-config, daemon flags) and the control socket's figures to add. */
export function configureExport(m: Manager, opts: Partial<ExportOptions>, control?: ControlStats): void {
  const s = stateOf(m);
  s.opts = { ...defaultExportOptions(), ...opts };
  if (control) s.control = control;
  s.last = null;
  s.bodies.clear();
}

/** The snapshot scrapes share: the last one if it is recent enough, else the one in flight, else a new one. */
function sharedSnapshot(m: Manager, s: ScrapeState): Promise<Snapshot> {
  if (s.last && Date.now() - s.last.at <= s.opts.cacheMs) return Promise.resolve(s.last);
  if (s.inflight) return s.inflight;
  s.snapshots++;
  s.inflight = collectSnapshot(m, s.opts).then(
    (snap) => {
      s.inflight = null;
      s.last = snap;
      s.bodies.clear();
      s.lastMs = snap.stats.ms;
      // Past the window nobody gets it again: let the snapshot and its bodies
      // go (tens of MB at 10,000 cgroups) instead of holding them until the next scrape.
      const t = setTimeout(() => {
        if (s.last === snap) {
          s.last = null;
          s.bodies.clear();
        }
      }, s.opts.cacheMs + 50);
      t.unref();
      return snap;
    },
    (e) => {
      s.inflight = null;
      throw e;
    },
  );
  return s.inflight;
}

/** A body as its parts (kept pieces: no copy of 23 MB per scrape at 10,000 cgroups), joined on demand. */
class Body {
  #joined: Buffer | undefined;
  constructor(readonly parts: readonly Buffer[]) {}
  joined(): Buffer {
    this.#joined ??= this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    return this.#joined;
  }
}

/** Refused families (name clashes): at most 10 log lines a minute, the rest counted in the next window's first line. */
function logRefused(m: Manager, s: ScrapeState, refused: ReturnType<typeof toFamilies>['refused']): void {
  if (refused.length === 0) return;
  const now = Date.now();
  if (now - s.logWindow >= 60_000) {
    if (s.logged > 10)
      m.log('warn', 'metric name clash: more not logged (rate limit)', { count: s.logged - 10 });
    s.logWindow = now;
    s.logged = 0;
  }
  for (const r of refused)
    if (++s.logged <= 10)
      m.log('warn', "metric name clash: family left out (its names are an earlier family's)", {
        metric: r.name,
        view: r.view,
        key: r.key,
        cgroup: r.cgroup,
        taken_by: r.owner,
      });
}

/** The body of a format as kept pieces (text.ts, protobuf.ts): joined for plain, compressed piece by piece for gzip. */
function render(m: Manager, s: ScrapeState, snap: Snapshot, format: Format): Piece[] {
  const conv = toFamilies(snap, s.opts);
  s.conflicts = conv.conflicts;
  logRefused(m, s, conv.refused);
  const fams: Family[] = conv.families;
  if (s.opts.daemon)
    fams.push(
      ...daemonFamilies(m, {
        control: s.control,
        http: s.http,
        scrapes: s.scrapes,
        snapshots: s.snapshots,
        snapshotMs: snap.stats.ms,
        cgroups: snap.cgroups.length,
        readErrorsTotal,
        conflicts: conv.conflicts,
      }),
    );
  if (format === 'protobuf') return renderProtobufPieces(fams);
  return renderTextPieces(fams, format === 'openmetrics');
}

/** GET /metrics: the body in the format `accept` asks for, gzipped when `acceptEncoding` allows. */
export async function renderMetrics(
  m: Manager,
  req: { accept?: string; acceptEncoding?: string },
  extra: { control?: ControlStats; http?: HttpFigures } = {},
): Promise<{ status: number; headers: Record<string, string>; body: Buffer; parts?: readonly Buffer[] }> {
  const s = stateOf(m);
  s.scrapes++;
  if (extra.control) s.control = extra.control;
  if (extra.http) s.http = extra.http;
  const format = negotiate(req.accept);
  const gz = wantsGzip(req.acceptEncoding);
  try {
    const snap = await sharedSnapshot(m, s);
    const key = `${format}${gz ? '+gz' : ''}`;
    let body = s.last === snap ? s.bodies.get(key) : undefined;
    if (!body) {
      const plain = s.last === snap ? s.bodies.get(format) : undefined;
      if (plain && !gz) body = plain;
      else {
        const pieces = render(m, s, snap, format);
        // gzip: one stream of the pieces' kept deflate outputs (pieces.ts): only changed pieces are compressed.
        // Plain: the kept pieces themselves, joined only if someone asks for `body` (http.ts sends the parts).
        body = Promise.resolve(gz ? new Body([gzipPieces(pieces, 1)]) : new Body(pieces.map((p) => p.buf)));
      }
      if (s.last === snap) s.bodies.set(key, body);
    }
    const headers: Record<string, string> = {
      'content-type': CONTENT_TYPE[format],
      vary: 'Accept, Accept-Encoding',
    };
    if (gz) headers['content-encoding'] = 'gzip';
    const b = await body;
    return {
      status: 200,
      headers,
      get body(): Buffer {
        return b.joined();
      },
      parts: b.parts,
    };
  } catch (e) {
    return {
      status: 500,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: Buffer.from(`cgview: metrics failed: ${(e as Error).message}\n`),
    };
  }
}
