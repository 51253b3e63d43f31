/**
 * Reads a file below an open directory without leaving it and without
 * following any symlink (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
 * O_NOFOLLOW): the exporter reads view files of trees whose directories
 * delegated users may own. One openat2, reads into the caller's buffer, one
 * close: no Fd object, nothing else allocated per file (10,000 files a scrape).
 */
import {
  EINTR,
  ENOENT,
  NR_OPENAT2,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_RDONLY,
  OPEN_HOW,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from './abi.js';
import type { Fd } from './fd.js';
import { cClose, cRead, errno, sysOpenat2 } from './ffi.js';
import { sysError } from './sys.js';

const HOW = Buffer.alloc(OPEN_HOW.size);
HOW.writeBigUInt64LE(BigInt(O_RDONLY | O_NOFOLLOW | O_CLOEXEC), OPEN_HOW.flags.off);
HOW.writeBigUInt64LE(
  BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
  OPEN_HOW.resolve.off,
);

/**
 * Reads `rel` (NUL-terminated byte string in `path`, see cpath) below `dir`
 * into `buf`: the number of bytes read, -1 when the file is not there, -2
 * when the output did not fit (the caller grows its buffer and reads again).
 * Other failures throw E_SYSCALL naming the file (a symlink: ELOOP).
 */
export function readFileAt(dir: Fd, path: Buffer, buf: Buffer): number {
  const fd = Number(sysOpenat2(NR_OPENAT2, dir.fd, path, HOW, HOW.length));
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT) return -1;
    throw sysError('open', path.toString('latin1', 0, path.length - 1), e);
  }
  try {
    let off = 0;
    for (;;) {
      if (off === buf.length) return -2;
      const n = Number(cRead(fd, off === 0 ? buf : buf.subarray(off), buf.length - off));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw sysError('read', path.toString('latin1', 0, path.length - 1), e);
      }
      if (n === 0) return off;
      off += n;
    }
  } finally {
    cClose(fd);
  }
}

/** A byte-string path as the NUL-terminated buffer readFileAt takes. */
export function cpath(p: string): Buffer {
  return Buffer.from(`${p}\0`, 'latin1');
}
