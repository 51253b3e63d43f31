/**
 * Collectors: BPF programs that gather the data views print (tracepoint
 * programs and their maps). Placeholder until the sched_lat collector lands.
 */

import type { Logger } from '../daemon/log.js';
import { CgviewError } from '../errors.js';
import type { Fd } from '../kernel/index.js';
import type { CollectorHost, ViewSet } from './registry.js';

export class Collectors implements CollectorHost {
  constructor(
    readonly privateDir: string,
    readonly log: Logger,
  ) {}

  acquire(name: string): Record<string, Fd> {
    throw new CgviewError('E_NOT_SUPPORTED', `collector ${name} is not available`);
  }

  adoptOrStopUnused(_inUse: Set<string>): void {}

  stopUnused(_inUse: Set<string>, _views: ViewSet): void {}

  status(): Record<string, unknown> {
    return {};
  }

  close(): void {}
}
