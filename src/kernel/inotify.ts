/**
 * inotify, with what fs.watch hides: creation and deletion told apart
 * (IN_CREATE / IN_DELETE), whether the entry is a directory, and queue
 * overflow (IN_Q_OVERFLOW), which means events were lost and a rescan is due.
 *
 * The fd is blocking and read on libuv's thread pool, so events arrive as
 * soon as the kernel queues them. close() removes every watch first: that
 * queues IN_IGNORED, which wakes the pending read.
 */
import fs from 'node:fs';
import {
  ENOSPC,
  IN_ATTRIB,
  IN_CLOEXEC,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_DONT_FOLLOW,
  IN_IGNORED,
  IN_ISDIR,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_ONLYDIR,
  IN_Q_OVERFLOW,
  INOTIFY_EVENT,
} from './abi.js';
import { Fd } from './fd.js';
import { cInotifyAddWatch, cInotifyInit1, cInotifyRmWatch, errno } from './ffi.js';
import { cstr, sysError } from './sys.js';

// Numbers and layouts live in abi.ts (checked against C at build time); the IN_* flags stay exported here as before.
export {
  IN_ATTRIB,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_DONT_FOLLOW,
  IN_IGNORED,
  IN_ISDIR,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_ONLYDIR,
  IN_Q_OVERFLOW,
};

/**
 * Fault injection for tests and the gauntlet, never set in production: the
 * kernel's inotify limits are host-wide sysctls, and lowering them would
 * break every other inotify user on the host. Each variable holds a number,
 * or a path starting with '/' to a file holding one, read again on every
 * use so that a test can lower and lift the limit while the daemon runs
 * (missing or empty file: no limit).
 * - CGVIEW_MAX_WATCHES=N: a new watch past N in this instance fails with
 *   ENOSPC, as at fs.inotify.max_user_watches.
 * - CGVIEW_MAX_QUEUED_EVENTS=N: a read of more than N events keeps the first
 *   N and ends with IN_Q_OVERFLOW, as the kernel's queue does at
 *   fs.inotify.max_queued_events.
 */
function injectedLimit(name: string): () => number | null {
  const v = process.env[name];
  if (v === undefined || v === '') return () => null;
  const parse = (s: string) => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : null);
  if (!v.startsWith('/')) {
    const n = parse(v);
    return () => n;
  }
  return () => {
    try {
      return parse(fs.readFileSync(v, 'latin1'));
    } catch {
      return null;
    }
  };
}
const maxWatches = injectedLimit('CGVIEW_MAX_WATCHES');
const maxQueued = injectedLimit('CGVIEW_MAX_QUEUED_EVENTS');

export interface InotifyEvent {
  wd: number;
  mask: number;
  /** Byte-string name of the entry ('' for events on the watched directory itself). */
  name: string;
}

/** One inotify instance; `onEvents` gets each batch the kernel hands over. Throws E_SYSCALL (EMFILE) on creation. */
export class Inotify {
  readonly #fd: Fd;
  readonly #wds = new Set<number>();
  #closing = false;
  #onEvents: (events: InotifyEvent[]) => void;
  #onError: (e: Error) => void;

  constructor(onEvents: (events: InotifyEvent[]) => void, onError: (e: Error) => void = () => {}) {
    const fd = cInotifyInit1(IN_CLOEXEC);
    if (fd < 0) throw sysError('inotify_init1', undefined, errno());
    this.#fd = new Fd(fd, 'inotify');
    this.#onEvents = onEvents;
    this.#onError = onError;
    this.#readLoop();
  }

  get watchCount(): number {
    return this.#wds.size;
  }

  /**
   * Watches a directory (the last component is not followed). Returns the
   * watch descriptor; throws E_SYSCALL with errno ENOSPC when the user's
   * watch limit (fs.inotify.max_user_watches) is reached.
   */
  add(path: string, mask: number): number {
    const wd = cInotifyAddWatch(this.#fd.fd, cstr(path), mask | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) throw sysError('inotify watch', path, errno());
    this.#limitWatches(wd, path);
    this.#wds.add(wd);
    return wd;
  }

  /**
   * Watches the directory open as `dir` (through /proc/self/fd, so no path is
   * walked again: a symlink swapped into the tree cannot redirect the watch).
   * A directory watched already gives its existing watch descriptor.
   */
  addFd(dir: Fd, mask: number): number {
    const wd = cInotifyAddWatch(this.#fd.fd, cstr(`/proc/self/fd/${dir.fd}`), mask | IN_ONLYDIR);
    if (wd < 0) throw sysError('inotify watch', dir.what, errno());
    this.#limitWatches(wd, dir.what);
    this.#wds.add(wd);
    return wd;
  }

  /** CGVIEW_MAX_WATCHES: a new watch past the injected limit is taken back and fails like the kernel's. */
  #limitWatches(wd: number, what: string): void {
    if (this.#wds.has(wd)) return;
    const max = maxWatches();
    if (max === null || this.#wds.size < max) return;
    cInotifyRmWatch(this.#fd.fd, wd);
    throw sysError('inotify watch', what, ENOSPC);
  }

  remove(wd: number): void {
    if (this.#wds.delete(wd)) cInotifyRmWatch(this.#fd.fd, wd);
  }

  /** Forgets a watch the kernel already dropped (IN_IGNORED). */
  dropped(wd: number): void {
    this.#wds.delete(wd);
  }

  #readLoop(): void {
    const buf = Buffer.alloc(64 * 1024);
    const next = () => {
      if (this.#closing) return;
      fs.read(this.#fd.fd, buf, 0, buf.length, null, (err, n) => {
        if (this.#closing) {
          this.#fd.close();
          return;
        }
        if (err) {
          this.#onError(err);
          setTimeout(next, 100);
          return;
        }
        const events: InotifyEvent[] = [];
        const E = INOTIFY_EVENT;
        for (let off = 0; off + E.size <= n; ) {
          // struct inotify_event { int wd; u32 mask; u32 cookie; u32 len; char name[len]; }
          const wd = buf.readInt32LE(off + E.wd.off);
          const mask = buf.readUInt32LE(off + E.mask.off);
          const len = buf.readUInt32LE(off + E.len.off);
          const raw = buf.subarray(off + E.size, off + E.size + len);
          const nul = raw.indexOf(0);
          events.push({ wd, mask, name: raw.toString('latin1', 0, nul < 0 ? len : nul) });
          off += E.size + len;
        }
        const max = maxQueued();
        if (max !== null && events.length > max) {
          // CGVIEW_MAX_QUEUED_EVENTS: what the kernel hands over when its queue is full.
          events.length = max;
          events.push({ wd: -1, mask: IN_Q_OVERFLOW, name: '' });
        }
        try {
          this.#onEvents(events);
        } catch (e) {
          this.#onError(e as Error);
        }
        next();
      });
    };
    next();
  }

  /** Removes every watch and closes the fd once the pending read returns. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const wds = [...this.#wds];
    this.#wds.clear();
    // The pending read only returns when an event is queued: with no watch
    // left to drop, add one on / and drop it, which queues IN_IGNORED.
    if (wds.length === 0) {
      const wd = cInotifyAddWatch(this.#fd.fd, cstr('/'), IN_DELETE_SELF | IN_ONLYDIR);
      if (wd >= 0) wds.push(wd);
      else {
        this.#fd.close();
        return;
      }
    }
    for (const wd of wds) cInotifyRmWatch(this.#fd.fd, wd);
  }
}
