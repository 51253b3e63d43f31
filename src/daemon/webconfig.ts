/**
 * --web-config FILE: TLS and basic authentication of the --listen server, in
 * the file format of the Prometheus exporter toolkit (YAML). The subset cgview
 * supports is parsed strictly: an unknown key, a key of the toolkit cgview
 * does not support, or a bad value stops start-up with the file, the line and
 * what is wrong. See docs/operations.md "TLS and basic authentication".
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { isMap, isScalar, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { CgviewError } from '../errors.js';
import type { BcryptAnswer, BcryptJob } from './bcrypt-worker.js';
import type { Logger } from './log.js';

/** client_auth_type of the toolkit (Go's tls.ClientAuthType names). */
export type ClientAuth =
  | 'NoClientCert'
  | 'RequestClientCert'
  | 'RequireAnyClientCert'
  | 'VerifyClientCertIfGiven'
  | 'RequireAndVerifyClientCert';
const CLIENT_AUTH: readonly ClientAuth[] = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
];
const TLS_VERSIONS: Record<string, tls.SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

export interface TlsConfig {
  /** Absolute paths (relative ones in the file are taken from the file's directory, as the toolkit does). */
  certFile: string;
  keyFile: string;
  clientAuth: ClientAuth;
  clientCaFile: string | undefined;
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion | undefined;
}

export interface WebConfig {
  file: string;
  tls: TlsConfig | undefined;
  /** User name → bcrypt hash; empty: no authentication. */
  users: Map<string, string>;
  /** Extra response headers (http_server_config.headers). */
  headers: Record<string, string>;
}

/** Response headers the toolkit lets a web config set; cgview takes the same (names case-insensitive). */
const HEADERS = [
  'Strict-Transport-Security',
  'X-Content-Type-Options',
  'X-Frame-Options',
  'X-XSS-Protection',
  'Content-Security-Policy',
];
/** Keys of the toolkit cgview knows but does not implement: named as such rather than as unknown. */
const UNSUPPORTED: Record<string, string[]> = {
  tls_server_config: [
    'cert',
    'key',
    'client_ca',
    'client_allowed_sans',
    'cipher_suites',
    'curve_preferences',
    'prefer_server_cipher_suites',
  ],
  '': ['rate_limit'],
};
/** A bcrypt hash: $2a$, $2b$ or $2y$ (htpasswd -B), a cost of two digits, 22 characters of salt, 31 of hash. */
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
/** The costs bcrypt takes (bcryptjs refuses the others: such a hash would never match). */
const MIN_COST = 4;
const MAX_COST = 31;
/** Configs larger than this are not web configs. */
const MAX_FILE_BYTES = 1 << 20;

/** Reads and checks a web config. Throws CgviewError E_BAD_INPUT naming the file and line. */
export function loadWebConfig(file: string): WebConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    const st = fs.statSync(abs);
    if (!st.isFile()) throw new CgviewError('E_BAD_INPUT', `--web-config ${abs}: not a regular file`);
    if (st.size > MAX_FILE_BYTES)
      throw new CgviewError('E_BAD_INPUT', `--web-config ${abs}: larger than ${MAX_FILE_BYTES} bytes`);
    text = fs.readFileSync(abs, 'utf8');
  } catch (e) {
    if (e instanceof CgviewError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new CgviewError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_BAD_INPUT', `--web-config ${abs}: ${code}`, {
      cause: e,
    });
  }
  return parseWebConfig(text, abs);
}

/** Parses the text of a web config; `file` names it in errors and anchors relative paths. */
export function parseWebConfig(text: string, file: string): WebConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true });
  const fail = (
    node: Node | { range?: [number, number, number] | null } | null | undefined,
    what: string,
  ) => {
    const off = node?.range?.[0];
    const line = off === undefined ? '' : `:${lc.linePos(off).line}`;
    return new CgviewError('E_BAD_INPUT', `--web-config ${file}${line}: ${what}`, {
      hint: 'the format is the Prometheus exporter toolkit web config; docs/operations.md lists what cgview takes',
    });
  };
  const err = doc.errors[0];
  if (err) {
    const line =
      err.linePos?.[0]?.line ?? (err.pos?.[0] !== undefined ? lc.linePos(err.pos[0]).line : undefined);
    throw new CgviewError(
      'E_BAD_INPUT',
      `--web-config ${file}${line ? `:${line}` : ''}: not valid YAML: ${err.message.split('\n')[0]}`,
    );
  }
  const cfg: WebConfig = { file, tls: undefined, users: new Map(), headers: {} };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return cfg; // an empty file: nothing to do
  const dir = path.dirname(file);

  /** The pairs of a mapping with string keys; anything else is an error. */
  const pairsOf = (node: unknown, where: string): Array<{ key: string; keyNode: Node; value: unknown }> => {
    if (!isMap(node)) throw fail(node as Node, `${where} must be a mapping`);
    return (node as YAMLMap).items.map((p) => {
      const k = p.key as Node;
      if (!isScalar(k)) throw fail(k, `${where}: keys must be strings`);
      // YAML reads `0x10:` as 16 and `1.50:` as 1.5: a plain key is taken as written, a user name
      // of digits is still that name. Quoted keys are strings already.
      if (k.type === 'PLAIN' && typeof k.source === 'string' && k.source !== '')
        return { key: k.source, keyNode: k, value: p.value };
      if (typeof k.value !== 'string') throw fail(k, `${where}: keys must be strings`);
      return { key: k.value, keyNode: k, value: p.value };
    });
  };
  const unknown = (section: string, key: string, node: Node) => {
    const where = section ? `${section}.${key}` : key;
    if (UNSUPPORTED[section]?.includes(key))
      return fail(node, `${where} is an exporter-toolkit option cgview does not support`);
    return fail(node, `unknown key ${JSON.stringify(where)}`);
  };
  const str = (v: unknown, where: string): string => {
    if (!isScalar(v) || typeof v.value !== 'string' || v.value === '')
      throw fail(v as Node, `${where} must be a non-empty string`);
    return v.value;
  };
  const resolve = (p: string) => path.resolve(dir, p);

  for (const top of pairsOf(doc.contents, 'the file')) {
    if (top.key === 'tls_server_config') {
      if (isScalar(top.value) && top.value.value === null) continue;
      const t: Partial<TlsConfig> & { clientAuth: ClientAuth; minVersion: tls.SecureVersion } = {
        clientAuth: 'NoClientCert',
        minVersion: 'TLSv1.2',
      };
      for (const p of pairsOf(top.value, 'tls_server_config')) {
        const where = `tls_server_config.${p.key}`;
        switch (p.key) {
          case 'cert_file':
            t.certFile = resolve(str(p.value, where));
            break;
          case 'key_file':
            t.keyFile = resolve(str(p.value, where));
            break;
          case 'client_ca_file':
            t.clientCaFile = resolve(str(p.value, where));
            break;
          case 'client_auth_type': {
            const v = str(p.value, where);
            if (!CLIENT_AUTH.includes(v as ClientAuth))
              throw fail(p.value as Node, `${where} must be one of ${CLIENT_AUTH.join(', ')}; got ${v}`);
            t.clientAuth = v as ClientAuth;
            break;
          }
          case 'min_version':
          case 'max_version': {
            const v = str(p.value, where);
            const ver = TLS_VERSIONS[v];
            if (!ver)
              throw fail(
                p.value as Node,
                `${where} must be one of ${Object.keys(TLS_VERSIONS).join(', ')}; got ${v}`,
              );
            if (p.key === 'min_version') t.minVersion = ver;
            else t.maxVersion = ver;
            break;
          }
          default:
            throw unknown('tls_server_config', p.key, p.keyNode);
        }
      }
      if (!t.certFile || !t.keyFile)
        throw fail(top.keyNode, 'tls_server_config needs both cert_file and key_file');
      if (t.clientCaFile && t.clientAuth === 'NoClientCert')
        throw fail(top.keyNode, 'tls_server_config has client_ca_file but client_auth_type NoClientCert');
      if (!t.clientCaFile && t.clientAuth.startsWith('Verify'))
        throw fail(top.keyNode, `tls_server_config: client_auth_type ${t.clientAuth} needs client_ca_file`);
      if (!t.clientCaFile && t.clientAuth === 'RequireAndVerifyClientCert')
        throw fail(
          top.keyNode,
          'tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file',
        );
      const order = Object.values(TLS_VERSIONS);
      if (t.maxVersion && order.indexOf(t.maxVersion) < order.indexOf(t.minVersion))
        throw fail(top.keyNode, 'tls_server_config: max_version is below min_version');
      cfg.tls = {
        certFile: t.certFile,
        keyFile: t.keyFile,
        clientAuth: t.clientAuth,
        clientCaFile: t.clientCaFile,
        minVersion: t.minVersion,
        maxVersion: t.maxVersion,
      };
      // Readable now, or start-up stops here rather than at the first connection.
      tlsContextOptions(cfg.tls);
    } else if (top.key === 'basic_auth_users') {
      if (isScalar(top.value) && top.value.value === null) continue;
      for (const p of pairsOf(top.value, 'basic_auth_users')) {
        if (p.key.includes(':'))
          throw fail(p.keyNode, `basic_auth_users: a user name cannot hold ':' (${p.key})`);
        const hash = str(p.value, `basic_auth_users.${p.key}`);
        if (!BCRYPT.test(hash))
          throw fail(
            p.value as Node,
            `basic_auth_users.${p.key} is not a bcrypt hash ($2a$, $2b$ or $2y$, e.g. $2y$10$... of 60 characters)`,
          );
        const c = cost(hash);
        if (c < MIN_COST || c > MAX_COST)
          throw fail(
            p.value as Node,
            `basic_auth_users.${p.key}: bcrypt cost ${String(c).padStart(2, '0')} is outside ${String(MIN_COST).padStart(2, '0')}-${MAX_COST} (such a hash never matches)`,
          );
        cfg.users.set(p.key, hash);
      }
    } else if (top.key === 'http_server_config') {
      if (isScalar(top.value) && top.value.value === null) continue;
      for (const p of pairsOf(top.value, 'http_server_config')) {
        if (p.key === 'http2') {
          // HTTP/2 is not served; Prometheus speaks HTTP/1.1 to exporters. Accepted for configs shared with Go exporters.
          if (!isScalar(p.value) || typeof p.value.value !== 'boolean')
            throw fail(p.value as Node, 'http_server_config.http2 must be true or false');
          continue;
        }
        if (p.key !== 'headers') throw unknown('http_server_config', p.key, p.keyNode);
        for (const h of pairsOf(p.value, 'http_server_config.headers')) {
          const name = HEADERS.find((n) => n.toLowerCase() === h.key.toLowerCase());
          if (!name)
            throw fail(
              h.keyNode,
              `http_server_config.headers: ${h.key} cannot be set (allowed: ${HEADERS.join(', ')})`,
            );
          const v = str(h.value, `http_server_config.headers.${h.key}`);
          // What Node's HTTP server would refuse at every answer (a line break, a character past
          // U+00FF such as an em dash) is refused here, at start-up.
          try {
            http.validateHeaderName(name);
            http.validateHeaderValue(name, v);
          } catch (e) {
            throw fail(
              h.value as Node,
              `http_server_config.headers.${h.key}: not a valid header value (${(e as Error).message}; ` +
                'use printable ASCII)',
            );
          }
          cfg.headers[name] = v;
        }
      }
    } else throw unknown('', top.key, top.keyNode);
  }
  return cfg;
}

function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new CgviewError(
      'E_BAD_INPUT',
      `--web-config: ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`,
      {
        cause: e,
      },
    );
  }
}

/** The options of a TLS server for the config, with the files read now. Throws E_BAD_INPUT. */
export function tlsContextOptions(t: TlsConfig): tls.TlsOptions {
  const opts: tls.TlsOptions = {
    cert: readPem(t.certFile, 'cert_file'),
    key: readPem(t.keyFile, 'key_file'),
    minVersion: t.minVersion,
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
    ...(t.clientCaFile ? { ca: readPem(t.clientCaFile, 'client_ca_file') } : {}),
    requestCert: t.clientAuth !== 'NoClientCert',
    rejectUnauthorized: t.clientAuth === 'RequireAndVerifyClientCert',
  };
  try {
    // Node checks here that the key matches the certificate.
    tls.createSecureContext(opts);
  } catch (e) {
    throw new CgviewError(
      'E_BAD_INPUT',
      `--web-config: cert_file ${t.certFile} / key_file ${t.keyFile}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return opts;
}

/** Why a request was not let in. */
export type AuthResult = 'ok' | 'missing' | 'malformed' | 'wrong' | 'busy';

/** How a check is made: `key` (the remote address) has at most one bcrypt check at a time; `signal` drops it. */
export interface CheckOptions {
  key?: string;
  signal?: AbortSignal;
}

interface Queued {
  start: (go: boolean) => void;
  signal: AbortSignal | undefined;
}

/** A syntactically valid bcrypt hash of `cost` with random salt and digest: it matches no password. */
function dummyHash(cost: number): string {
  const abc = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const r = randomBytes(53);
  let out = '';
  for (const b of r) out += abc[b % 64];
  return `$2b$${String(cost).padStart(2, '0')}$${out}`;
}

/**
 * Checks `Authorization: Basic` against bcrypt hashes. A right password is
 * remembered (keyed by an HMAC of user and password under a key made at
 * start, compared in constant time) so that a scraper pays bcrypt once, not
 * at every scrape.
 *
 * bcrypt runs in a worker thread (bcrypt-worker.ts), never on the event
 * loop, one check at a time with a short queue: past it the answer is
 * 'busy' (503) rather than a daemon whose CPU any client can take. One
 * remote address (`key`) has at most one check queued or running: its
 * others wait their turn, in order, outside the queue (one per connection,
 * so bounded by the connections admitted); a check whose connection went
 * away is dropped, from its turn or from the queue.
 *
 * Every check costs the same, whatever the user: the password is compared
 * against one hash of each distinct cost configured, the user's own at its
 * cost and dummies (random salt, matching nothing) at the others; an unknown
 * user gets dummies only. So a check costs the sum of 2^cost over the
 * distinct costs (at most twice the costliest), and neither an unknown user
 * nor a user with a cheaper hash answers sooner.
 */
export class BasicAuth {
  readonly #users: Map<string, string>;
  readonly #key = randomBytes(32);
  /** HMAC(user) → HMAC(user, password) of a verified pair, oldest first. */
  readonly #cache = new Map<string, Buffer>();
  /** The distinct costs configured, ascending, each with a dummy hash. */
  readonly #costs: Array<{ cost: number; dummy: string }>;
  #running = 0;
  /** bcrypt checks so far (tests: an unknown user costs one, a remembered password none). */
  bcryptRuns = 0;
  /** bcrypt work so far: 2^cost summed over every hash compared. */
  bcryptRounds = 0;
  /** The thread the last check ran in (tests: not the event loop's). */
  lastThreadId: number | undefined;
  readonly #queue: Queued[] = [];
  /** Per key, the turn of its last check (resolved when that check is done). */
  readonly #keys = new Map<string, Promise<void>>();
  #worker: Worker | null = null;
  readonly #jobs = new Map<number, (ok: boolean | null) => void>();
  #nextJob = 0;
  constructor(
    users: Map<string, string>,
    private readonly limits = { maxCached: 256, maxQueued: 32, concurrency: 1 },
  ) {
    this.#users = users;
    const costs = [...new Set([...users.values()].map(cost))].sort((a, b) => a - b);
    this.#costs = costs.map((c) => ({ cost: c, dummy: dummyHash(c) }));
  }

  get enabled(): boolean {
    return this.#users.size > 0;
  }

  async check(header: string | undefined, o: CheckOptions = {}): Promise<AuthResult> {
    if (header === undefined) return 'missing';
    const m = /^basic[ \t]+([A-Za-z0-9+/=]{1,4096})[ \t]*$/i.exec(header);
    if (!m) return 'malformed';
    const pair = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon < 0) return 'malformed';
    const user = pair.slice(0, colon);
    const password = pair.slice(colon + 1);
    return this.verify(user, password, o);
  }

  /** 'ok' if the password is the user's. */
  async verify(user: string, password: string, o: CheckOptions = {}): Promise<AuthResult> {
    const hash = this.#users.get(user);
    const id = this.#mac(user).toString('base64');
    const want = this.#mac(`${user}\0${password}`);
    const cached = this.#cache.get(id);
    if (cached && hash !== undefined && timingSafeEqual(cached, want)) return 'ok';
    if (o.signal?.aborted) return 'busy';
    const key = o.key;
    if (key === undefined) return this.#run(user, password, id, want, o.signal);
    // One check of a key at a time: the others wait their turn here, in order, outside the
    // bounded queue, so that one address holds at most one place in it.
    const prev = this.#keys.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.#keys.set(key, mine);
    let turn = prev === undefined;
    try {
      if (prev) turn = await untilOrAbort(prev, o.signal);
      if (!turn) return 'busy';
      return await this.#run(user, password, id, want, o.signal);
    } finally {
      // A check dropped before its turn hands the turn on only when the one before it is done.
      if (turn || !prev) release();
      else void prev.then(release);
      void mine.then(() => {
        if (this.#keys.get(key) === mine) this.#keys.delete(key);
      });
    }
  }

  async #run(
    user: string,
    password: string,
    id: string,
    want: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<AuthResult> {
    const hash = this.#users.get(user);
    if (this.#running >= this.limits.concurrency && this.#queue.length >= this.limits.maxQueued)
      return 'busy';
    if (this.#running >= this.limits.concurrency && !(await this.#wait(signal))) return 'busy';
    this.#running++;
    this.bcryptRuns++;
    let ok: boolean | null;
    try {
      const c = hash === undefined ? -1 : cost(hash);
      const hashes = this.#costs.map((k) => (k.cost === c ? hash! : k.dummy));
      for (const k of this.#costs) this.bcryptRounds += 2 ** k.cost;
      ok = await this.#compare(
        password,
        hashes,
        this.#costs.findIndex((k) => k.cost === c),
      );
    } finally {
      this.#running--;
      this.#next();
    }
    if (ok === null) return 'busy'; // the worker died; the next check starts another
    if (!ok || hash === undefined) return 'wrong';
    this.#cache.delete(id);
    this.#cache.set(id, want);
    if (this.#cache.size > this.limits.maxCached) this.#cache.delete(this.#cache.keys().next().value!);
    return 'ok';
  }

  /** Stops the worker thread (the server's close). */
  close(): void {
    void this.#worker?.terminate();
    this.#worker = null;
    for (const done of this.#jobs.values()) done(null);
    this.#jobs.clear();
  }

  /** Waits for a turn: true to run, false if the signal dropped it first. */
  #wait(signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const q: Queued = { start: resolve, signal };
      this.#queue.push(q);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.#queue.indexOf(q);
          if (i >= 0) {
            this.#queue.splice(i, 1);
            resolve(false);
          }
        },
        { once: true },
      );
    });
  }

  #next(): void {
    for (let q = this.#queue.shift(); q; q = this.#queue.shift()) {
      if (q.signal?.aborted) {
        q.start(false);
        continue;
      }
      q.start(true);
      return;
    }
  }

  /** Compares in the worker thread; null if the worker failed. */
  #compare(password: string, hashes: string[], real: number): Promise<boolean | null> {
    if (!this.#worker) {
      const w = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
      w.unref();
      w.on('message', (a: BcryptAnswer) => {
        this.lastThreadId = a.threadId;
        const done = this.#jobs.get(a.id);
        this.#jobs.delete(a.id);
        if (this.#jobs.size === 0) w.unref();
        done?.(a.ok);
      });
      const fail = () => {
        if (this.#worker === w) this.#worker = null;
        for (const done of this.#jobs.values()) done(null);
        this.#jobs.clear();
      };
      w.on('error', fail);
      w.on('exit', fail);
      this.#worker = w;
    }
    const w = this.#worker;
    const id = ++this.#nextJob;
    return new Promise((resolve) => {
      this.#jobs.set(id, resolve);
      w.ref(); // a check in progress keeps the process alive
      w.postMessage({ id, password, hashes, real } satisfies BcryptJob);
    });
  }

  #mac(s: string): Buffer {
    return createHmac('sha256', this.#key).update(s, 'utf8').digest();
  }
}

/** True when `p` settles, false if `signal` aborts first. */
function untilOrAbort(p: Promise<void>, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return p.then(() => true);
  if (signal.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    });
  });
}

function cost(hash: string): number {
  return Number(BCRYPT.exec(hash)?.[1] ?? 0);
}

/** Logs refused requests (or failures): at most `perMinute` lines a minute, the rest counted in one line. */
export class RateLimitedLog {
  #windowStart = 0;
  #inWindow = 0;
  constructor(
    private readonly log: Logger,
    private readonly perMinute = 10,
    private readonly level: 'warn' | 'error' = 'warn',
  ) {}

  write(msg: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.#windowStart >= 60_000) {
      if (this.#inWindow > this.perMinute)
        this.log(this.level, `${msg}: more not logged (rate limit)`, {
          count: this.#inWindow - this.perMinute,
        });
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (++this.#inWindow <= this.perMinute) this.log(this.level, msg, fields);
  }
}
