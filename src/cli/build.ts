/** cgview build FILE.bpf.c [-o OUT] [--json]: compiles a view with the kit and says what the object has. */
import path from 'node:path';
import { buildView, defaultObjectPath, type ObjectDescription } from '../views/build.js';
import { fromBytes, OPTIONS, parseArgs, resolveBytes, usageError, writeText } from './args.js';

/** The object's programs and maps, one per line, with how to pin each view. */
export function describeText(object: string, d: ObjectDescription): string {
  const lines: string[] = [];
  const w = Math.max(4, ...d.programs.map((p) => p.name.length));
  lines.push('programs:');
  for (const p of d.programs)
    lines.push(
      `  ${p.name.padEnd(w)}  ${p.section.padEnd(24)}  ${
        p.kind === 'view'
          ? `view: cgview pin ${object}:${p.name} DIR`
          : 'collector (loaded and attached by the daemon)'
      }`,
    );
  if (d.programs.length === 0) lines.push('  (none)');
  const views = d.programs.filter((p) => p.kind === 'view');
  const mw = Math.max(4, ...d.maps.map((m) => m.name.length));
  lines.push('maps:');
  for (const m of d.maps)
    lines.push(
      `  ${m.name.padEnd(mw)}  ${m.internal ? 'global variables' : (m.type ?? '?')}${
        m.maxEntries !== undefined ? ` (max_entries ${m.maxEntries})` : ''
      }`,
    );
  if (d.maps.length === 0) lines.push('  (none)');
  if (views.length === 0) lines.push('note: no iter/cgroup program, so nothing to pin as a view');
  return `${lines.join('\n')}\n`;
}

export async function build(argv: string[]): Promise<number> {
  const a = parseArgs(argv, OPTIONS['build']!);
  const [src, ...extra] = a.positional;
  if (!src || extra.length) throw usageError('usage: cgview build FILE.bpf.c [-o OUT]');
  const source = fromBytes(resolveBytes(src));
  const outArg = a.values.get('out');
  const out = outArg === undefined ? defaultObjectPath(source) : path.resolve(fromBytes(outArg));
  const r = buildView(source, { out });
  if (r.diagnostics) process.stderr.write(r.diagnostics);
  if (a.bools.has('json')) {
    process.stdout.write(`${JSON.stringify({ object: r.object, ...r.description }, null, 2)}\n`);
    return 0;
  }
  writeText(process.stdout, `built ${r.object}\n${describeText(r.object, r.description)}`);
  return 0;
}
