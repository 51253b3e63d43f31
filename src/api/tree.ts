/**
 * The tree payload (GET /api/v1/tree and the SSE `sample` event): the live
 * cgroups with their current figures, column by column (a 10,000-row tree
 * is a third of the size of one object per row). docs/api.md.
 */
import { round, type TreeRow } from '../history/store.js';

export interface TreeColumns {
  key: string[];
  id: string[];
  /** Index into `hierarchies`. */
  h: number[];
  path: string[];
  level: number[];
  tasks: Array<number | null>;
  cpu: Array<number | null>;
  wait: Array<number | null>;
  waits: Array<number | null>;
  p50: Array<number | null>;
  p99: Array<number | null>;
  self: Array<number | null>;
  /** Index into `viewSets`. */
  vs: number[];
  hierarchies: string[];
  viewSets: string[][];
}

const opt = (v: number | undefined) => (v === undefined ? null : round(v));

export function treeColumns(rows: TreeRow[]): TreeColumns {
  const out: TreeColumns = {
    key: [],
    id: [],
    h: [],
    path: [],
    level: [],
    tasks: [],
    cpu: [],
    wait: [],
    waits: [],
    p50: [],
    p99: [],
    self: [],
    vs: [],
    hierarchies: [],
    viewSets: [],
  };
  const hi = new Map<string, number>();
  const vi = new Map<string, number>();
  for (const r of rows) {
    let h = hi.get(r.hierarchy);
    if (h === undefined) {
      h = out.hierarchies.length;
      out.hierarchies.push(r.hierarchy);
      hi.set(r.hierarchy, h);
    }
    const vk = r.views.join(',');
    let v = vi.get(vk);
    if (v === undefined) {
      v = out.viewSets.length;
      out.viewSets.push(r.views);
      vi.set(vk, v);
    }
    const f = r.figures;
    out.key.push(r.key);
    out.id.push(r.id);
    out.h.push(h);
    out.path.push(r.path);
    out.level.push(r.level);
    out.tasks.push(opt(f.tasks));
    out.cpu.push(opt(f.cpuPct));
    out.wait.push(opt(f.waitPerSec));
    out.waits.push(opt(f.waitsPerSec));
    out.p50.push(opt(f.p50Ns));
    out.p99.push(opt(f.p99Ns));
    out.self.push(opt(f.selfPct));
    out.vs.push(v);
  }
  return out;
}
