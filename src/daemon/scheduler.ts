/**
 * The scheduler: the one place that queues reconciles. Dirty scopes are
 * gathered per tree and folded (dirty.ts) until the event loop is idle,
 * then handed to `run` in one batch; a scope due later (after a race) waits
 * on a timer here, not in the code that found it.
 */
import { addScope, type DirtyScope, foldScopes } from '../tree/dirty.js';

export class Scheduler<T> {
  #pending = new Map<T, Map<string, DirtyScope>>();
  #scheduled = false;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #run: (owner: T, scopes: DirtyScope[]) => void;

  constructor(run: (owner: T, scopes: DirtyScope[]) => void) {
    this.#run = run;
  }

  mark(owner: T, scope: DirtyScope): void {
    let m = this.#pending.get(owner);
    if (!m) {
      m = new Map();
      this.#pending.set(owner, m);
    }
    addScope(m, scope);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.flush();
    });
  }

  /** Marks a scope dirty after `ms` (so that a failure that persists cannot become a busy loop). */
  later(owner: T, scope: DirtyScope, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.mark(owner, scope);
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  /** Runs every scope marked dirty since the last flush. */
  flush(): void {
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [owner, scopes] of pending) this.#run(owner, foldScopes(scopes));
  }

  /** Forgets what one tree has pending (it is gone). */
  forget(owner: T): void {
    this.#pending.delete(owner);
  }

  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#pending.clear();
  }
}
