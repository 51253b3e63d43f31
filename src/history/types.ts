/**
 * What the history takes in: the exporter's snapshot (src/export/snapshot.ts,
 * `collectSnapshot`), described here by the fields the history uses, so that
 * the sampler takes any `() => Promise<Snapshot>` (tests feed synthetic ones).
 */
import type { ViewSample } from '../stats/keys.js';

export interface CgroupSnapLike {
  /** The view tree this cgroup was read from. */
  tree?: string;
  /** Real path relative to the hierarchy root, '/' for the root. */
  path: string;
  /** 'v2' or the v1 controllers ('cpu,cpuacct'). */
  hierarchy: string;
  id: string;
  level: number;
  labels?: Record<string, string>;
  views: Map<string, ViewSample>;
}

export interface SnapshotLike {
  /** Wall clock, ms (Date.now()). */
  at: number;
  cgroups: CgroupSnapLike[];
}

export type SnapshotSource = () => Promise<SnapshotLike>;
