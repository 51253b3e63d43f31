/**
 * Tasks and CPU use of a cgroup, from cgroupfs (what `cgview top` shows
 * beside the views): cgroup.threads (v1: tasks) counted, cpu.stat usage_usec
 * (v1: cpuacct.usage). Read only where something moves (see `pick`), so that
 * 10,000 idle cgroups cost no file reads: docs/dashboard.md "Sampling".
 */
import fs from 'node:fs';
import { cgroupMounts } from '../cgroup/hierarchy.js';
import { classifyView, type ViewSample } from '../stats/keys.js';
import type { CgroupSnapLike } from './types.js';

/** Every how many samples an idle cgroup is read anyway (spread: a slice of them each time). */
export const IDLE_REFRESH_SAMPLES = 24;

export class CgroupFsReader {
  private mounts: Array<{ path: string; version: 1 | 2; options: string[] }>;
  /** key → sched_lat wait count and usage at the last read. */
  private last = new Map<string, { waits: number | undefined; usage: number | undefined; moving: boolean }>();
  private tick = 0;
  reads = 0;
  errors = 0;

  constructor(mounts = cgroupMounts()) {
    this.mounts = mounts;
  }

  private mountFor(hierarchy: string): { dir: string; v2: boolean; cpuacct: boolean } | undefined {
    if (hierarchy === 'v2') {
      const m = this.mounts.find((x) => x.version === 2);
      return m && { dir: m.path, v2: true, cpuacct: false };
    }
    const want = hierarchy.split(',');
    const m = this.mounts.find((x) => x.version === 1 && want.every((c) => x.options.includes(c)));
    return m && { dir: m.path, v2: false, cpuacct: m.options.includes('cpuacct') };
  }

  /**
   * Adds a `cgroupfs` view sample to the cgroups worth reading this time:
   * never read yet, sched_lat counted waits since the last read, CPU use grew at
   * the last read, no sched_lat to tell, or its turn in the idle refresh.
   */
  addTo(cgroups: CgroupSnapLike[], view = 'cgroupfs'): void {
    this.tick++;
    const seen = new Set<string>();
    for (const [i, c] of cgroups.entries()) {
      const key = `${c.hierarchy}:${c.id}`;
      seen.add(key);
      const waits = waitCount(c.views.get('sched_lat'));
      const prev = this.last.get(key);
      const due =
        !prev ||
        waits === undefined ||
        waits !== prev.waits ||
        prev.moving ||
        (i + this.tick) % IDLE_REFRESH_SAMPLES === 0;
      if (!due) continue;
      const s = this.read(c);
      if (!s) continue;
      const usage = s.metrics.find((m) => m.key === 'usage_ns_total')?.value;
      // CPU use grew since the read before: read it again next time (a lone CPU hog never waits).
      const moving = usage !== undefined && prev?.usage !== undefined && usage !== prev.usage;
      this.last.set(key, { waits, usage, moving });
      const views = new Map(c.views);
      views.set(view, s);
      c.views = views;
    }
    for (const k of this.last.keys()) if (!seen.has(k)) this.last.delete(k);
  }

  private read(c: CgroupSnapLike): ViewSample | undefined {
    const m = this.mountFor(c.hierarchy);
    if (!m) return undefined;
    const dir = c.path === '/' ? m.dir : `${m.dir}${c.path}`;
    const lines = new Map<string, string>([['cgroup_id', c.id]]);
    try {
      this.reads++;
      const tasks = readSmall(`${dir}/${m.v2 ? 'cgroup.threads' : 'tasks'}`);
      let n = 0;
      for (let i = 0; i < tasks.length; i++) if (tasks.charCodeAt(i) === 10) n++;
      lines.set('tasks', String(n));
      if (m.v2) {
        const st = readSmall(`${dir}/cpu.stat`);
        const u = /^usage_usec (\d+)$/m.exec(st);
        if (u) lines.set('usage_ns_total', `${u[1]}000`);
      } else if (m.cpuacct) {
        lines.set('usage_ns_total', readSmall(`${dir}/cpuacct.usage`).trim());
      }
    } catch {
      // Gone between the snapshot and now, or not readable: no figures this time.
      this.errors++;
      return undefined;
    }
    return classifyView(lines);
  }
}

function waitCount(s: ViewSample | undefined): number | undefined {
  return s?.metrics.find((m) => m.kind === 'histogram' && m.key === 'wait_ns')?.value;
}

const READ_BUF = Buffer.allocUnsafe(64 * 1024);

/** cgroupfs has no symlinks, but the last component is opened O_NOFOLLOW all the same. */
function readSmall(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const buf = READ_BUF;
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break; // bounded: a cgroup with more threads than fit is counted up to there
    }
    return buf.toString('latin1', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}
