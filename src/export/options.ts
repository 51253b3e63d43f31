/**
 * What /metrics exports (docs/metrics.md "Configuration"): which cgroups
 * (include/exclude globs on the cgroup label, a maximum depth), which views,
 * which histogram buckets, and how long concurrent scrapes share one
 * snapshot. The daemon takes them from `--metrics-config FILE` (JSON, parsed
 * here) and its flags; everything has a default.
 */
import fs from 'node:fs';
import { CgviewError } from '../errors.js';

export interface ExportOptions {
  /** Globs on the cgroup path ('/system.slice/*.service'); a cgroup is exported if it matches one. Default ['/**']. */
  include: string[];
  /** Globs; a cgroup that matches one is not exported (exclude wins). Default none. */
  exclude: string[];
  /** Deepest level exported (the root is 0, '/a' is 1); undefined: no limit. */
  maxDepth: number | undefined;
  /** View names (program names: sched_lat, info, my_view) exported; undefined: all. */
  views: string[] | undefined;
  /** View names not exported. */
  excludeViews: string[];
  /**
   * `le` bounds, in seconds, of histograms whose unit is seconds (views' `_ns`
   * histograms): each picks the view bound nearest to it (log scale); 'all':
   * every bound the view prints. Other histograms keep all their bounds.
   */
  buckets: number[] | 'all';
  /** Scrapes that come within this many ms of a snapshot share it (one snapshot in flight at a time). */
  cacheMs: number;
  /** Export the daemon's own figures (cgview_daemon_*). */
  daemon: boolean;
}

/** Every second power of two from 2^10 ns (≈1 µs) to 2^32 ns (≈4.3 s): 12 bounds, plus +Inf. */
export const DEFAULT_BUCKETS_S: readonly number[] = Array.from(
  { length: 12 },
  (_, i) => 2 ** (10 + 2 * i) * 1e-9,
);

export function defaultExportOptions(): ExportOptions {
  return {
    include: ['/**'],
    exclude: [],
    maxDepth: undefined,
    views: undefined,
    excludeViews: [],
    buckets: [...DEFAULT_BUCKETS_S],
    cacheMs: 500,
    daemon: true,
  };
}

/**
 * A glob on cgroup paths as a RegExp: `*` is any run of characters but '/',
 * `?` one such character, `**` any number of whole components (so '/a/**'
 * matches '/a' itself and everything below it, '/**' every path).
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slashBefore = re.endsWith('/');
      const slashAfter = glob[i + 2] === '/';
      if (slashBefore && (slashAfter || i + 2 === glob.length)) {
        // '/**/' or a trailing '/**': zero or more components.
        re = re.slice(0, -1);
        re += slashAfter ? '(?:/[^]*)?/' : '(?:/[^]*)?';
        i += slashAfter ? 2 : 1;
      } else {
        re += '[^]*';
        i++;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[\\^$.+()[\]{}|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The cgroup filter of a set of options: path and level → exported? */
export function cgroupFilter(o: ExportOptions): (path: string, level: number) => boolean {
  const inc = o.include.map(globToRegExp);
  const exc = o.exclude.map(globToRegExp);
  const all =
    o.include.length === 1 && o.include[0] === '/**' && exc.length === 0 && o.maxDepth === undefined;
  if (all) return () => true;
  return (path, level) =>
    (o.maxDepth === undefined || level <= o.maxDepth) &&
    inc.some((r) => r.test(path)) &&
    !exc.some((r) => r.test(path));
}

/** The view filter: view name → exported? */
export function viewFilter(o: ExportOptions): (view: string) => boolean {
  const only = o.views ? new Set(o.views) : null;
  const not = new Set(o.excludeViews);
  return (v) => (!only || only.has(v)) && !not.has(v);
}

/**
 * The view bounds a bucket set keeps (indices into `bounds`), for a histogram
 * whose bounds times `scale` are seconds. Each wanted bound picks the nearest
 * view bound on a log scale; duplicates fold.
 */
export function pickBuckets(
  bounds: readonly number[],
  scale: number,
  want: readonly number[] | 'all',
): number[] {
  if (want === 'all') return bounds.map((_, i) => i);
  const picked = new Set<number>();
  for (const w of want) {
    let best = -1;
    let bestD = Infinity;
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i]! * scale;
      if (b <= 0) continue;
      const d = Math.abs(Math.log(b / w));
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best >= 0) picked.add(best);
  }
  return [...picked].sort((a, b) => a - b);
}

const KEYS = ['include', 'exclude', 'max_depth', 'views', 'exclude_views', 'buckets', 'cache_ms', 'daemon'];

function stringList(v: unknown, key: string, bad: (w: string) => CgviewError): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== ''))
    throw bad(`${key} must be a list of non-empty strings`);
  return v as string[];
}

/**
 * Parses a metrics configuration (JSON; docs/metrics.md "Configuration").
 * Unknown keys and wrong types are errors naming the key (E_BAD_INPUT), so
 * that a typo does not silently export everything.
 */
export function parseExportConfig(text: string, file = 'metrics config'): ExportOptions {
  const bad = (what: string) =>
    new CgviewError('E_BAD_INPUT', `${file}: ${what}`, {
      path: file,
      hint: 'see docs/metrics.md, "Configuration"',
    });
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON: ${(e as Error).message}`);
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad('not a JSON object');
  const o = defaultExportOptions();
  for (const [k, v] of Object.entries(x)) {
    switch (k) {
      case 'include':
        o.include = stringList(v, k, bad);
        for (const g of o.include)
          if (!g.startsWith('/')) throw bad(`include: ${JSON.stringify(g)} must start with '/'`);
        break;
      case 'exclude':
        o.exclude = stringList(v, k, bad);
        for (const g of o.exclude)
          if (!g.startsWith('/')) throw bad(`exclude: ${JSON.stringify(g)} must start with '/'`);
        break;
      case 'max_depth':
        if (!Number.isInteger(v) || (v as number) < 0) throw bad('max_depth must be an integer >= 0');
        o.maxDepth = v as number;
        break;
      case 'views':
        o.views = stringList(v, k, bad);
        break;
      case 'exclude_views':
        o.excludeViews = stringList(v, k, bad);
        break;
      case 'buckets':
        if (v === 'all') o.buckets = 'all';
        else if (v === 'default') o.buckets = [...DEFAULT_BUCKETS_S];
        else if (
          Array.isArray(v) &&
          v.length > 0 &&
          v.every((b) => typeof b === 'number' && Number.isFinite(b) && b > 0)
        )
          o.buckets = [...(v as number[])].sort((a, b) => a - b);
        else throw bad('buckets must be "all", "default" or a non-empty list of bounds in seconds (> 0)');
        break;
      case 'cache_ms':
        if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 60000)
          throw bad('cache_ms must be an integer from 0 to 60000');
        o.cacheMs = v as number;
        break;
      case 'daemon':
        if (typeof v !== 'boolean') throw bad('daemon must be true or false');
        o.daemon = v;
        break;
      default:
        throw bad(`unknown key ${JSON.stringify(k)} (known: ${KEYS.join(', ')})`);
    }
  }
  return o;
}

/** Reads and parses `--metrics-config FILE`; a missing or unreadable file is E_NOT_FOUND / E_BAD_INPUT. */
export function loadExportConfig(file: string): ExportOptions {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CgviewError(
      code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_BAD_INPUT',
      `--metrics-config ${file}: ${code}`,
      {
        path: file,
        cause: e,
      },
    );
  }
  return parseExportConfig(text, file);
}
