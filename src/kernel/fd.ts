import { cClose } from './ffi.js';

/** Open descriptors handed out by src/kernel, for the tests' leak check. */
const live = new Map<number, string>();

/**
 * A file descriptor owned by cgview. `close()` is idempotent; every Fd made
 * by src/kernel is counted until closed so tests can fail on a leak.
 */
export class Fd {
  #fd: number;
  readonly what: string;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.what = what;
    live.set(fd, what);
  }

  /** The raw number; throws once closed so a stale fd is never reused by accident. */
  get fd(): number {
    if (this.#fd < 0) throw new Error(`use of closed fd (${this.what})`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd < 0) return;
    live.delete(this.#fd);
    cClose(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Descriptors opened through src/kernel and not yet closed: fd number → what. */
export function openFds(): Map<number, string> {
  return new Map(live);
}
