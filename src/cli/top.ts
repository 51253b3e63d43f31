/** `cgview top`: interval figures of every cgroup's views, live (docs/top.md). */
import { indexFileFor, socketPath } from '../daemon/server.js';
import { runBatch, type TopOptions, TopScreen } from '../top/app.js';
import { discover } from '../top/source.js';
import { SORT_KEYS } from '../top/table.js';
import { OPTIONS, parseArgs, resolveBytes, usageError } from './args.js';

function num(v: string | undefined, what: string, ok: (n: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw usageError(
      `--${what} ${JSON.stringify(v)}: ${what === 'delay' ? 'seconds, more than 0' : 'a whole number'}`,
    );
  return n;
}

export async function top(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['top']!);
  const [target, ...extra] = a.positional;
  if (extra.length)
    throw usageError(
      'usage: cgview top [CGROUP_OR_TREE_DIR] [--delay S] [--sort KEY] [--depth N] [--batch] [--iterations N] [--json]',
    );
  const delaySec = num(a.values.get('delay'), 'delay', (n) => n > 0 && n <= 86400) ?? 1;
  const depth =
    num(a.values.get('depth'), 'depth', (n) => Number.isInteger(n) && n >= 0) ?? Number.POSITIVE_INFINITY;
  const iterations = num(a.values.get('iterations'), 'iterations', (n) => Number.isInteger(n) && n >= 1);
  const sort = a.values.get('sort') ?? 'wait';
  // A generic column (view:metric) is known only once the views are read: any such name is taken.
  if (!SORT_KEYS.includes(sort) && !sort.includes(':'))
    throw usageError(
      `--sort ${JSON.stringify(sort)}: one of ${SORT_KEYS.join(', ')}, or a view column VIEW:METRIC`,
    );
  const targets = discover(
    target === undefined ? undefined : resolveBytes(target),
    indexFileFor(socketPath(a.values.get('socket'))),
  );
  const json = a.bools.has('json');
  // Not a terminal: batch, as top and systemd-cgtop do.
  const output: TopOptions['output'] = json
    ? 'json'
    : a.bools.has('batch') || !process.stdout.isTTY || !process.stdin.isTTY
      ? 'batch'
      : 'screen';
  const o: TopOptions = { targets, delaySec, sort, depth, iterations, output };
  if (output === 'screen') {
    await new TopScreen(o).run();
    return 0;
  }
  // Already text (printable() decoded the byte-string names): UTF-8 out.
  await runBatch(o, (s) => process.stdout.write(s));
  return 0;
}
