/** Structured logs: one JSON object per line on stderr. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

function jsonable(v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

export function makeLogger(
  min: Level = 'info',
  out: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (level, msg, fields = {}) => {
    if (ORDER[level] < ORDER[min]) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level, msg };
    for (const [k, v] of Object.entries(fields)) rec[k] = jsonable(v);
    out(`${JSON.stringify(rec)}\n`);
  };
}

export function parseLevel(s: string | undefined): Level {
  return s === 'debug' || s === 'warn' || s === 'error' ? s : 'info';
}
