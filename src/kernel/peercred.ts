/**
 * Credentials of the process at the other end of a UNIX socket
 * (getsockopt SO_PEERCRED), so that the daemon can decide per request what
 * a peer may do. The kernel records them at connect(2) and translates them
 * into the daemon's user namespace: a peer cannot change them afterwards.
 */
import { SO_PEERCRED, SO_PEERGROUPS, SOL_SOCKET, UCRED } from './abi.js';
import { errno, libc } from './ffi.js';
import { errnoName } from './sys.js';

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
  const buf = Buffer.alloc(UCRED.size);
  const len = [UCRED.size];
  if (cGetsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0)
    throw new Error(`SO_PEERCRED: ${errnoName(errno())}`);
  if (len[0] !== UCRED.size) throw new Error(`SO_PEERCRED: ${len[0]} bytes, expected ${UCRED.size}`);
  return {
    pid: buf.readInt32LE(UCRED.pid.off),
    uid: buf.readUInt32LE(UCRED.uid.off),
    gid: buf.readUInt32LE(UCRED.gid.off),
  };
}

/**
 * Supplementary groups of the process at the other end of a UNIX socket
 * (without its primary gid, which peerCred() gives). Throws an Error with
 * the errno name: callers then know the peer by its primary gid only.
 */
export function peerGroups(fd: number): number[] {
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`SO_PEERGROUPS: bad descriptor ${fd}`);
  // NGROUPS_MAX is 65536; start small and grow once to what the kernel says it needs (ERANGE).
  let size = 64 * 4;
  for (let tries = 0; tries < 2; tries++) {
    const buf = Buffer.alloc(size);
    const len = [size];
    if (cGetsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, len) === 0) {
      const out: number[] = [];
      for (let off = 0; off + 4 <= len[0]!; off += 4) out.push(buf.readUInt32LE(off));
      return out;
    }
    const e = errnoName(errno());
    if (e !== 'ERANGE' || len[0]! <= size) throw new Error(`SO_PEERGROUPS: ${e}`);
    size = len[0]!;
  }
  throw new Error('SO_PEERGROUPS: the groups grew while being read');
}
