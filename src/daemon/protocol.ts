/**
 * The control socket's protocol: newline-delimited JSON requests and
 * responses, the schema every request line is checked against, and the
 * client side (one request, one response).
 */
import net from 'node:net';
import { CgviewError } from '../errors.js';

export interface Request {
  op: string;
  args?: Record<string, unknown>;
}

export type Response =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; hint?: string; log?: string } };

export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

type FieldType = 'string' | 'boolean' | 'integer' | 'mode';
/** Every request and its fields: [type, required]. Anything else is refused. */
const OPS: Record<string, Record<string, [FieldType, boolean]>> = {
  ping: {},
  pin: {
    view: ['string', true],
    dir: ['string', true],
    cgroup: ['string', false],
    inherit: ['boolean', false],
    name: ['string', false],
    mode: ['mode', false],
    fileMode: ['integer', false],
  },
  unpin: { path: ['string', true] },
  ls: { dir: ['string', false] },
  resolve: { cgroup: ['string', true] },
  status: {},
  rescan: {},
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOk(t: FieldType, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'integer':
      return Number.isSafeInteger(v);
    case 'mode':
      return v === 'auto' || v === 'manual';
  }
}

const TYPE_WORDS: Record<FieldType, string> = {
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  mode: '"auto" or "manual"',
};

/** Checks the shape of a decoded request line. Throws E_BAD_INPUT saying what is wrong. */
export function checkRequest(v: unknown): Request {
  if (!isPlainObject(v) || typeof v['op'] !== 'string')
    throw new CgviewError('E_BAD_INPUT', 'a request is a JSON object {"op": NAME, "args": {...}}');
  const op = v['op'];
  const fields = Object.hasOwn(OPS, op) ? OPS[op] : undefined;
  if (!fields)
    throw new CgviewError('E_BAD_INPUT', `unknown request ${JSON.stringify(op.slice(0, 64))}`, {
      hint: `requests: ${Object.keys(OPS).join(', ')}`,
    });
  for (const k of Object.keys(v))
    if (k !== 'op' && k !== 'args')
      throw new CgviewError('E_BAD_INPUT', `${op}: unknown key ${JSON.stringify(k.slice(0, 64))}`);
  const args = v['args'] ?? {};
  if (!isPlainObject(args)) throw new CgviewError('E_BAD_INPUT', `${op}: args must be an object`);
  for (const [k, x] of Object.entries(args)) {
    const f = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!f) throw new CgviewError('E_BAD_INPUT', `${op}: unknown field ${JSON.stringify(k.slice(0, 64))}`);
    if (!typeOk(f[0], x)) throw new CgviewError('E_BAD_INPUT', `${op}: ${k} must be ${TYPE_WORDS[f[0]]}`);
  }
  for (const [k, [, required]] of Object.entries(fields))
    if (required && !(k in args)) throw new CgviewError('E_BAD_INPUT', `${op}: ${k} is missing`);
  return { op, args };
}

export function errorResponse(e: CgviewError): Response {
  // The whole verifier log goes to the client (shown with --verbose); pins are root's requests only.
  const log = e.code === 'E_VERIFIER' && e.log ? { log: e.log } : {};
  return {
    ok: false,
    error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...log },
  };
}

/** Client side: one request, one response. E_NO_DAEMON when nothing listens. */
export function request(file: string, req: Request, timeoutMs = 60000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CgviewError('E_NO_DAEMON', `the daemon on ${file} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(`${toJson(req)}\n`, 'latin1'));
    let answered = false;
    let writeFailed: string | null = null;
    /** Settles on the first whole answer line; false while there is none. */
    const done = (): boolean => {
      const i = buf.indexOf('\n');
      if (answered || i < 0) return answered;
      clearTimeout(timer);
      answered = true;
      sock.end();
      let res: Response;
      try {
        res = JSON.parse(buf.slice(0, i)) as Response;
      } catch {
        reject(
          new CgviewError('E_NO_DAEMON', `what answers on ${file} is not a cgview daemon (not a JSON line)`),
        );
        return true;
      }
      if (res.ok) resolve(res.result);
      else
        reject(
          new CgviewError(res.error.code as 'E_BAD_INPUT', res.error.message, {
            ...(res.error.hint ? { hint: res.error.hint } : {}),
            ...(typeof res.error.log === 'string' ? { log: res.error.log } : {}),
          }),
        );
      return true;
    };
    sock.on('data', (c: string) => {
      buf += c;
      done();
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (done()) return;
      answered = true;
      reject(
        new CgviewError(
          'E_NO_DAEMON',
          `the daemon on ${file} closed the connection without answering${writeFailed ? ` (${writeFailed})` : ''}`,
          {
            hint: 'it may be busy (too many clients: try again later), or it stopped or crashed: see its log',
          },
        ),
      );
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (answered) return;
      // The daemon closed while the request was being written: it may have
      // answered first (a daemon that refuses a client says why, E_BUSY),
      // and that answer is what to report, not the write's EPIPE. Node
      // stops reading at a write error, so the answer is only here if it
      // was read already; otherwise 'close' reports it as a closed connection.
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') {
        if (!done()) writeFailed = e.code;
        return;
      }
      clearTimeout(timer);
      answered = true;
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')
        reject(
          new CgviewError('E_NO_DAEMON', `the cgview daemon is not running (no socket at ${file})`, {
            hint: 'start it with `cgview daemon` (as root), or pass --socket PATH / set CGVIEW_SOCKET',
          }),
        );
      else if (e.code === 'EACCES')
        reject(
          new CgviewError('E_PERMISSION', `no permission to talk to the daemon on ${file}`, {
            hint: 'run as root',
          }),
        );
      else reject(e);
    });
  });
}
