/**
 * `cgview doctor [--json]`: probes the kernel features cgview needs and says,
 * for each one that is missing, how to get it. Runs without the daemon.
 */
import path from 'node:path';
import { type FeatureCheck, probeAll, probeViews, type ViewProbe } from '../kernel/features.js';
import { collectorDefs } from '../views/collectors.js';
import { builtinViews, parseViewSpec } from '../views/registry.js';

/** The built-in views as doctor tries them (objects, programs, kfuncs, collectors). */
export function viewProbes(): ViewProbe[] {
  return builtinViews().map((name) => {
    const v = parseViewSpec(name);
    const c = v.collector ? collectorDefs()[v.collector] : undefined;
    return {
      name,
      object: path.basename(v.object),
      program: v.program,
      kfuncs: v.kfuncs ?? [],
      ...(c && v.collector
        ? { collector: { name: v.collector, object: c.object, ...(c.cpuMap ? { cpuMap: c.cpuMap } : {}) } }
        : {}),
    };
  });
}

import { parseArgs, usageError } from './args.js';

/** `ok  `, `FAIL` (a required check failed) or `warn` (an optional one did). */
export function checkStatus(c: FeatureCheck): 'ok' | 'FAIL' | 'warn' {
  if (c.ok) return 'ok';
  return c.required ? 'FAIL' : 'warn';
}

/** One line per check: `ok   BTF: /sys/kernel/btf/vmlinux`, `FAIL bpffs: not mounted — remedy: …`. */
export function formatCheck(c: FeatureCheck): string {
  const line = `${checkStatus(c).padEnd(4)} ${c.name}: ${c.detail}`;
  return c.ok ? line : `${line} — remedy: ${c.remedy ?? 'see docs/doctor.md'}`;
}

/** The closing line: how many required checks failed and how many optional ones warned. */
export function formatSummary(checks: FeatureCheck[]): string {
  const failed = checks.filter((c) => checkStatus(c) === 'FAIL').length;
  const warned = checks.filter((c) => checkStatus(c) === 'warn').length;
  const warnings = warned ? ` (${warned} optional ${warned === 1 ? 'check' : 'checks'} failed)` : '';
  if (failed === 0) return `cgview doctor: all required checks passed${warnings}`;
  return `cgview doctor: ${failed} required ${failed === 1 ? 'check' : 'checks'} failed${warnings}`;
}

/**
 * Runs every probe and prints one line per check (or, with --json, an object
 * `{ok, checks}` for scripts). Returns 1 when a required check failed, 0
 * otherwise. Throws E_BAD_INPUT (a usage error: exit 2) on unknown options or arguments.
 */
export async function doctor(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { bools: ['json'] });
  if (args.positional.length > 0)
    throw usageError(
      `doctor takes no arguments, got ${JSON.stringify(args.positional[0])}`,
      'usage: cgview doctor [--json]',
    );
  const checks = [...(await probeAll()), ...(await probeViews(viewProbes()))];
  const ok = checks.every((c) => c.ok || !c.required);
  if (args.bools.has('json')) {
    console.log(JSON.stringify({ ok, checks }, null, 2));
  } else {
    for (const c of checks) console.log(formatCheck(c));
    console.log(formatSummary(checks));
  }
  return ok ? 0 : 1;
}
