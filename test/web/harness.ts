/**
 * Helpers of the dashboard's browser tests: CPU-bound tasks in a cgroup,
 * Chromium through playwright-core, and a snapshot of a view tree read from
 * its files (the daemon's own sampler reads the same through collectSnapshot).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import type { CgroupSnapLike, SnapshotLike } from '../../src/history/types.js';
import { classifyView } from '../../src/stats/keys.js';
import { decodeName } from '../../src/tree/paths.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { CGROUP2 } from '../helpers.js';

export const CHROMIUM = process.env['CGVIEW_CHROMIUM'] ?? '/usr/bin/chromium';

/** Headless Chromium as root: no sandbox, nothing fetched in the background. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'],
  });
}

/** `n` busy loops in cgroup `cg`, all on CPU `cpu`; returns their pids (the caller kills them). */
export function spinners(cg: string, n: number, cpu = 0): number[] {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    `for i in $(seq ${n}); do\n` +
    `  taskset -c ${cpu} sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &\n` +
    '  echo $!\n' +
    'done\n';
  const out = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' });
  return out.trim().split('\n').map(Number);
}

export function killAll(pids: number[]): void {
  for (const p of pids)
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
}

/**
 * A snapshot of a v2 view tree from its files: every directory under `tree`
 * whose views print; paths relative to the v2 root.
 */
export function fileSnapshot(tree: string, cgroupRoot: string, views = ['sched_lat', 'info']) {
  const base = `/${path.relative(CGROUP2, cgroupRoot)}`;
  return async (): Promise<SnapshotLike> => {
    const cgroups: CgroupSnapLike[] = [];
    const walk = (dir: string, rel: string, level: number) => {
      const vs = new Map();
      let id: string | undefined;
      for (const v of views) {
        let text: string;
        try {
          text = fs.readFileSync(path.join(dir, v), 'latin1');
        } catch {
          continue;
        }
        if (!text) continue;
        const s = classifyView(parseViewOutput(text));
        id ??= s.id;
        vs.set(v, s);
      }
      if (id)
        cgroups.push({ path: rel === '' ? base : `${base}${rel}`, hierarchy: 'v2', id, level, views: vs });
      let ents: fs.Dirent[] = [];
      try {
        ents = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents)
        if (e.isDirectory())
          walk(path.join(dir, e.name), `${rel}/${decodeName(e.name) ?? e.name}`, level + 1);
    };
    walk(tree, '', base.split('/').length - 1);
    return { at: Date.now(), cgroups };
  };
}

/** Sums of a sched_lat file: wait_ns_total, at a time. */
export function readWait(file: string): { at: number; waitNs: number } {
  const m = parseViewOutput(fs.readFileSync(file, 'latin1'));
  return { at: Date.now(), waitNs: Number(m.get('wait_ns_total')) };
}
