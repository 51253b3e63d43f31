/** Structured logs: one JSON object per line on stderr. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

/** Bounds of one logged field: a log line must never throw, hang, or grow without limit. */
const MAX_DEPTH = 6;
const MAX_ITEMS = 50;
const MAX_STRING = 16 << 10;

function cut(s: string): string {
  return s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…(${s.length - MAX_STRING} more chars)` : s;
}

/**
 * A copy of `v` that JSON.stringify can always write: bigints as strings,
 * errors with their message, code and stack, cycles and depth past
 * MAX_DEPTH marked, long strings and collections cut, throwing getters and
 * toJSON caught.
 */
export function loggable(v: unknown, depth = 0, seen: Set<object> = new Set()): unknown {
  switch (typeof v) {
    case 'string':
      return cut(v);
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'boolean':
      return v;
    case 'bigint':
      return v.toString();
    case 'undefined':
      return null;
    case 'symbol':
      return v.toString();
    case 'function':
      return `[function ${v.name || 'anonymous'}]`;
  }
  if (v === null) return null;
  const o = v as object;
  if (seen.has(o)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(o);
  try {
    if (Buffer.isBuffer(o)) return `[${o.length} bytes]`;
    if (o instanceof Error) {
      const e = o as Error & { code?: unknown; cause?: unknown };
      const out: Record<string, unknown> = { name: loggable(e.name), message: loggable(e.message) };
      if (e.code !== undefined) out['code'] = loggable(e.code, depth + 1, seen);
      if (e.stack !== undefined) out['stack'] = loggable(e.stack);
      if (e.cause !== undefined) out['cause'] = loggable(e.cause, depth + 1, seen);
      return out;
    }
    if (Array.isArray(o)) {
      const out = o.slice(0, MAX_ITEMS).map((x) => loggable(x, depth + 1, seen));
      if (o.length > MAX_ITEMS) out.push(`…(${o.length - MAX_ITEMS} more)`);
      return out;
    }
    if (o instanceof Map) return loggable(Object.fromEntries(o), depth, seen);
    if (o instanceof Set) return loggable([...o], depth, seen);
    const toJSON = (o as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return loggable(toJSON.call(o), depth + 1, seen);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const k of Object.keys(o)) {
      if (n++ === MAX_ITEMS) {
        out['…'] = `${Object.keys(o).length - MAX_ITEMS} more keys`;
        break;
      }
      let x: unknown;
      try {
        x = (o as Record<string, unknown>)[k];
      } catch (e) {
        x = `[getter threw: ${e instanceof Error ? e.message : 'error'}]`;
      }
      out[k] = loggable(x, depth + 1, seen);
    }
    return out;
  } catch (e) {
    return `[unloggable: ${e instanceof Error ? e.message : 'error'}]`;
  } finally {
    seen.delete(o);
  }
}

export function makeLogger(
  min: Level = 'info',
  out: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (level, msg, fields = {}) => {
    if (ORDER[level] < ORDER[min]) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level, msg: cut(msg) };
    for (const [k, v] of Object.entries(fields)) rec[k in rec ? `field_${k}` : k] = loggable(v, 1);
    out(`${JSON.stringify(rec)}\n`);
  };
}

export function parseLevel(s: string | undefined): Level {
  return s === 'debug' || s === 'warn' || s === 'error' ? s : 'info';
}
