/**
 * The sampler: every `intervalMs` one snapshot of the mirrored cgroups'
 * views (the exporter's collectSnapshot, through the bulk path where there
 * is one), plus tasks and CPU from cgroupfs where something moves, into the
 * History. A sample still running when the next one is due makes that one
 * skipped (counted), never two at once.
 */
import type { CgroupFsReader } from './cgroupfs.js';
import { CGROUPFS_VIEW, type History } from './store.js';
import type { SnapshotSource } from './types.js';

export interface SamplerStats {
  samples: number;
  skipped: number;
  errors: number;
  lastError: string | undefined;
  /** Wall time of the last sample, ms. */
  lastMs: number;
  /** CPU time (user + system) of all samples, µs; an upper bound: other work between awaits counts too. */
  cpuUs: number;
}

export class Sampler {
  readonly stats: SamplerStats = {
    samples: 0,
    skipped: 0,
    errors: 0,
    lastError: undefined,
    lastMs: 0,
    cpuUs: 0,
  };
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;

  constructor(
    private readonly history: History,
    private readonly source: SnapshotSource,
    private readonly cgroupfs: CgroupFsReader | null = null,
    private readonly log: (
      level: 'warn' | 'info',
      msg: string,
      extra?: Record<string, unknown>,
    ) => void = () => {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    const iv = this.history.intervalMs;
    // On the interval's grid, so that samples stay evenly spaced whatever one costs.
    const wait = iv - (Date.now() % iv);
    this.timer = setTimeout(() => void this.tick(), wait);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.running) {
      this.stats.skipped++;
      this.schedule();
      return;
    }
    try {
      await this.sampleOnce();
    } finally {
      this.schedule();
    }
  }

  /** Takes one sample now; returns its seq (0 when it failed). */
  async sampleOnce(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    try {
      const snap = await this.source();
      this.cgroupfs?.addTo(snap.cgroups, CGROUPFS_VIEW);
      const seq = this.history.ingest(snap);
      this.stats.samples++;
      return seq;
    } catch (e) {
      this.stats.errors++;
      const msg = (e as Error).message;
      // Logged when it changes, not every interval.
      if (msg !== this.stats.lastError) this.log('warn', 'dashboard sample failed', { error: msg });
      this.stats.lastError = msg;
      return 0;
    } finally {
      const c = process.cpuUsage(c0);
      this.stats.cpuUs += c.user + c.system;
      this.stats.lastMs = performance.now() - t0;
      this.running = false;
    }
  }
}
