/**
 * The one parser of view output (DESIGN.md §3): every view prints
 * `key: value` lines. Pure functions, no I/O.
 *
 * - A line is `KEY: VALUE`: KEY is a name (`[A-Za-z_][A-Za-z0-9_.-]*`), then a
 *   colon; the value is the rest of the line after the colon and the spaces
 *   that follow it (the RFC selftest's `sscanf("cgroup_id: %8d")` skips them
 *   too). `KEY:` alone has the value ''. Values are kept as printed: a cgroup
 *   name (the `info` view) may hold any byte but '\n' and '/'.
 * - Empty text is a valid output: a view of a removed cgroup prints nothing
 *   (DESIGN.md S6). A final line without '\n' is accepted.
 * - Anything else (a line with no `KEY:`, an empty line in the middle, a key
 *   printed twice) is an error naming the line: it means a broken view.
 */
import { CgviewError } from '../errors.js';

export interface ViewLine {
  key: string;
  value: string;
  /** 1-based line number. */
  line: number;
}

const LINE = /^([A-Za-z_][A-Za-z0-9_.-]*):(?: +(.*))?$/;

function bad(msg: string, line: number, text: string): CgviewError {
  return new CgviewError(
    'E_BAD_INPUT',
    `view output line ${line}: ${msg}: ${JSON.stringify(text.slice(0, 80))}`,
  );
}

/** The lines of a view's output, in order. Throws E_BAD_INPUT on a malformed line. */
export function parseViewLines(text: string): ViewLine[] {
  const out: ViewLine[] = [];
  if (text === '') return out;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, l] of lines.entries()) {
    const m = LINE.exec(l);
    if (!m) throw bad(l === '' ? 'empty line' : 'not a "key: value" line', i + 1, l);
    out.push({ key: m[1]!, value: m[2] ?? '', line: i + 1 });
  }
  return out;
}

/**
 * `key: value` output as a Map in printed order (a Map keeps insertion
 * order). Throws E_BAD_INPUT on a malformed line or a key printed twice.
 */
export function parseViewOutput(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const { key, value, line } of parseViewLines(text)) {
    if (out.has(key)) throw bad(`key ${key} printed twice`, line, `${key}: ${value}`);
    out.set(key, value);
  }
  return out;
}

/** An unsigned decimal integer value (as bigint: ns totals outgrow 2^53). Throws when absent or not one. */
export function viewUint(view: Map<string, string>, key: string): bigint {
  const v = view.get(key);
  if (v === undefined) throw new CgviewError('E_BAD_INPUT', `view output has no ${key}`);
  if (!/^[0-9]+$/.test(v))
    throw new CgviewError(
      'E_BAD_INPUT',
      `view output ${key}: ${JSON.stringify(v)} is not an unsigned integer`,
    );
  return BigInt(v);
}

// --- sched_lat ------------------------------------------------------------------------

/** The first keys of `sched_lat` and `sched_lat_tree`, in their fixed order (docs/sched_lat.md). */
export const SCHED_LAT_KEYS = [
  'cgroup_id',
  'queue_self',
  'queue_other',
  'wait_count',
  'wait_ns_total',
  'queue_self_ns_total',
  'queue_other_ns_total',
] as const;

export interface SchedLatBucket {
  /** Upper bound (exclusive) in ns; null for `wait_ns_lt_inf`. */
  ltNs: bigint | null;
  /** Waits shorter than ltNs (cumulative). */
  count: bigint;
}

export interface SchedLat {
  cgroupId: bigint;
  /** Largest queue_self / queue_other of one wait (ns): the RFC's lines 2 and 3. */
  queueSelfMaxNs: bigint;
  queueOtherMaxNs: bigint;
  waitCount: bigint;
  waitNsTotal: bigint;
  queueSelfNsTotal: bigint;
  queueOtherNsTotal: bigint;
  /** Cumulative log2 buckets in printed order, the last one `wait_ns_lt_inf`. */
  hist: SchedLatBucket[];
  p50Ns: bigint;
  p90Ns: bigint;
  p99Ns: bigint;
}

/**
 * A `sched_lat` / `sched_lat_tree` file: null for empty output (a removed
 * cgroup). Checks the structure (the seven first keys in order, histogram
 * the two `_max_ns` lines equal to lines 2 and 3, histogram lines with
 * growing bounds ending with wait_ns_lt_inf, then p50/p90/p99) but not the
 * numbers' consistency.
 */
export function parseSchedLat(text: string): SchedLat | null {
  const view = parseViewOutput(text);
  if (view.size === 0) return null;
  const keys = [...view.keys()];
  for (const [i, k] of SCHED_LAT_KEYS.entries())
    if (keys[i] !== k)
      throw new CgviewError(
        'E_BAD_INPUT',
        `sched_lat line ${i + 1}: expected ${k}, got ${keys[i] ?? 'nothing'}`,
      );
  const n = SCHED_LAT_KEYS.length;
  if (keys[n] !== 'queue_self_max_ns' || keys[n + 1] !== 'queue_other_max_ns')
    throw new CgviewError(
      'E_BAD_INPUT',
      `sched_lat line ${n + 1}: expected queue_self_max_ns, queue_other_max_ns after ${SCHED_LAT_KEYS[n - 1]}`,
    );
  const hist: SchedLatBucket[] = [];
  let i = n + 2;
  for (; i < keys.length; i++) {
    const k = keys[i]!;
    const m = /^wait_ns_lt_(?:([0-9]+)|inf)$/.exec(k);
    if (!m) break;
    const ltNs = m[1] === undefined ? null : BigInt(m[1]);
    const prev = hist[hist.length - 1];
    if (prev && (prev.ltNs === null || (ltNs !== null && ltNs <= prev.ltNs)))
      throw new CgviewError('E_BAD_INPUT', `sched_lat line ${i + 1}: ${k} out of order`);
    hist.push({ ltNs, count: viewUint(view, k) });
  }
  if (hist.length === 0 || hist[hist.length - 1]!.ltNs !== null)
    throw new CgviewError('E_BAD_INPUT', 'sched_lat: histogram missing or not ended by wait_ns_lt_inf');
  const rest = keys.slice(i, i + 3);
  if (rest.join() !== 'p50_ns,p90_ns,p99_ns')
    throw new CgviewError(
      'E_BAD_INPUT',
      `sched_lat line ${i + 1}: expected p50_ns, p90_ns, p99_ns after the histogram`,
    );
  return {
    cgroupId: viewUint(view, 'cgroup_id'),
    queueSelfMaxNs: viewUint(view, 'queue_self'),
    queueOtherMaxNs: viewUint(view, 'queue_other'),
    waitCount: viewUint(view, 'wait_count'),
    waitNsTotal: viewUint(view, 'wait_ns_total'),
    queueSelfNsTotal: viewUint(view, 'queue_self_ns_total'),
    queueOtherNsTotal: viewUint(view, 'queue_other_ns_total'),
    hist,
    p50Ns: viewUint(view, 'p50_ns'),
    p90Ns: viewUint(view, 'p90_ns'),
    p99Ns: viewUint(view, 'p99_ns'),
  };
}
