/**
 * Where the control socket and the public index of trees are. The socket
 * itself is in control-socket.ts, protocol.ts, policy.ts and limits.ts, the
 * --listen server in http.ts; what the CLI and tests import here is re-exported.
 */
import path from 'node:path';

export { ensureSocketFree, newControlStats, serveSocket } from './control-socket.js';
export { parseListen, serveMetrics } from './http.js';
export { httpLimits, socketLimits } from './limits.js';
export { request } from './protocol.js';

export const DEFAULT_SOCKET = '/run/cgview/cgview.sock';

export function socketPath(explicit?: string): string {
  return explicit ?? process.env['CGVIEW_SOCKET'] ?? DEFAULT_SOCKET;
}

/** The public index of trees sits beside the socket (roots.json, mode 0644). */
export function indexFileFor(socket: string): string {
  return path.join(path.dirname(socket), 'roots.json');
}
