/**
 * Credentials of the process at the other end of a UNIX socket
 * (getsockopt SO_PEERCRED), so that the daemon can decide per request what
 * a peer may do. The kernel records them at connect(2) and translates them
 * into the daemon's user namespace: a peer cannot change them afterwards.
 */
import { errno, libc } from './ffi.js';
import { errnoName } from './sys.js';

// asm-generic/socket.h, which x86_64 and arm64 use (powerpc, mips, sparc and
// parisc have other numbers; cgview runs on x86_64 only, see ffi.ts).
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } (include/linux/socket.h): three 32-bit fields. */
const UCRED_SIZE = 12;

const cGetsockopt = libc.func(
  'int getsockopt(int sockfd, int level, int optname, void *optval, _Inout_ uint32_t *optlen)',
);

/** struct ucred, as this process sees it. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * SO_PEERCRED of a connected UNIX socket descriptor. Throws an Error with
 * the errno name when the descriptor is not such a socket: callers treat a
 * peer they cannot identify as unprivileged.
 */
export function peerCred(fd: number): PeerCred {
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`SO_PEERCRED: bad descriptor ${fd}`);
  const buf = Buffer.alloc(UCRED_SIZE);
  const len = [UCRED_SIZE];
  if (cGetsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0)
    throw new Error(`SO_PEERCRED: ${errnoName(errno())}`);
  if (len[0] !== UCRED_SIZE) throw new Error(`SO_PEERCRED: ${len[0]} bytes, expected ${UCRED_SIZE}`);
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
