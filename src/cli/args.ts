/**
 * Command-line options of every cgview command, parsed with node:util
 * parseArgs (strict: unknown options, missing values and values given to
 * flags are errors), and argv taken as bytes.
 *
 * Arguments are *byte strings* (one char per byte, as the daemon speaks):
 * a cgroup name need not be UTF-8, and Node decodes its argv as UTF-8,
 * replacing every invalid byte with U+FFFD. `argvBytes()` reads the real
 * bytes from /proc/self/cmdline.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs as nodeParseArgs } from 'node:util';
import { CgviewError } from '../errors.js';

export interface FlagSpec {
  /** Options that take a value (`--name NAME` or `--name=NAME`). */
  values?: string[];
  /** Options without a value. */
  bools?: string[];
}

export interface Parsed {
  positional: string[];
  values: Map<string, string>;
  /** The flags given; `verbose` and `help` are accepted by every command. */
  bools: Set<string>;
}

/** Flags every command takes: main reads them, the command may ignore them. */
const COMMON_BOOLS = ['verbose', 'help'];
const SHORT: Record<string, string> = { v: 'verbose', h: 'help', o: 'out' };

/** The options of each command (DESIGN.md section 3; `cgview --help`). */
export const OPTIONS: Record<string, FlagSpec> = {
  daemon: {
    values: [
      'bpffs',
      'cgroup-root',
      'state',
      'socket',
      'listen',
      'web-config',
      'metrics-config',
      'default-views',
      'sample-interval',
      'history',
      'private-dir',
      'log-level',
      'socket-mode',
    ],
    bools: ['no-default-views'],
  },
  pin: { values: ['cgroup', 'name', 'mode', 'file-mode', 'socket'], bools: ['inherit', 'json'] },
  unpin: { values: ['socket'], bools: ['json'] },
  ls: { values: ['socket'], bools: ['json'] },
  cat: { values: ['socket'], bools: ['json'] },
  status: { values: ['socket'], bools: ['json'] },
  build: { values: ['out'], bools: ['json'] },
  'new-view': { bools: ['with-collector'] },
  doctor: { bools: ['json'] },
  top: { values: ['delay', 'sort', 'depth', 'iterations', 'socket'], bools: ['batch', 'json'] },
};

/** Errors in how a command was called: main exits 2 for these (1 for every other error). */
const usageErrors = new WeakSet<Error>();

export function usageError(
  message: string,
  hint = 'cgview --help lists the commands and options',
): CgviewError {
  const e = new CgviewError('E_BAD_INPUT', message, { hint });
  usageErrors.add(e);
  return e;
}

export function isUsageError(e: unknown): boolean {
  return e instanceof Error && usageErrors.has(e);
}

/**
 * An option that takes a value takes the next word, whatever it starts
 * with, as getopt_long does: `--name -v` names the view "-v". node's
 * parseArgs calls that ambiguous, so such pairs are joined as `--name=-v`
 * first. A lone `--` ends the options.
 */
function joinValues(argv: string[], values: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--') && !a.includes('=') && values.has(a.slice(2)) && i + 1 < argv.length) {
      out.push(`${a}=${argv[i + 1]}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Parses one command's argv. Throws a usage error (E_BAD_INPUT) for anything not in `spec`. */
export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const values = spec.values ?? [];
  const bools = [...(spec.bools ?? []), ...COMMON_BOOLS];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const v of values) options[v] = { type: 'string' };
  for (const b of bools) options[b] = { type: 'boolean' };
  for (const [s, long] of Object.entries(SHORT))
    if (options[long]) options[long] = { ...options[long], short: s };
  let r: ReturnType<typeof nodeParseArgs>;
  try {
    r = nodeParseArgs({
      args: joinValues(argv, new Set(values)),
      options,
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw usageError(describeParseError(e, argv));
  }
  const out: Parsed = { positional: r.positionals, values: new Map(), bools: new Set() };
  for (const [k, v] of Object.entries(r.values)) {
    if (typeof v === 'string') out.values.set(k, v);
    else if (v === true) out.bools.add(k);
  }
  return out;
}

/** node's messages, reworded to name the option as the user wrote it and say what to do. */
function describeParseError(e: unknown, argv: string[]): string {
  const code = (e as { code?: string }).code;
  const msg = e instanceof Error ? e.message : String(e);
  const opt = /'(-[^' ]+)/.exec(msg)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${opt} (a name that starts with '-' goes after --)`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (msg.includes('does not take an argument')) return `${opt} takes no value`;
      if (msg.includes('argument missing')) return `${opt} needs a value`;
      return `${opt}: ${msg.split('\n')[0]}`;
    default:
      return `bad arguments ${JSON.stringify(argv)}: ${msg.split('\n')[0]}`;
  }
}

/** `--verbose`/`-v` as an option of `command`'s argv (not as the value of another option, not after `--`). */
export function wantsVerbose(command: string, argv: string[]): boolean {
  const values = new Set(OPTIONS[command]?.values ?? []);
  for (const a of joinValues(argv, values)) {
    if (a === '--') return false;
    if (a === '--verbose' || (/^-[a-z]+$/.test(a) && a.includes('v'))) return true;
  }
  return false;
}

// --- bytes --------------------------------------------------------------

/** A UTF-8 JS string as a byte string. */
export const toBytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
/** A byte string as UTF-8 text (bytes that are not UTF-8 become U+FFFD): for what only text can be (socket path, JSON). */
export const fromBytes = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');
/** A byte string as a path Node passes to the kernel unchanged. */
export const bytePath = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * The current directory as a byte string: process.cwd() decodes it as
 * UTF-8 (lossily), the kernel's link /proc/self/cwd keeps the bytes.
 */
export function cwdBytes(): string {
  try {
    return fs.readlinkSync('/proc/self/cwd', { encoding: 'buffer' }).toString('latin1');
  } catch {
    return toBytes(process.cwd());
  }
}

/** An absolute byte-string path: `p` (a byte string) resolved against the current directory. */
export function resolveBytes(p: string): string {
  return path.resolve(cwdBytes(), p);
}

/**
 * The process's arguments after the script, as byte strings.
 * /proc/self/cmdline holds argv exactly as exec'd (NUL-separated); its last
 * `process.argv.length - 2` words are the script's arguments (node options
 * come before the script). Each word is checked against what Node decoded
 * from it; if they disagree (cmdline unreadable or rewritten), Node's
 * decoding is used: names that are not UTF-8 are then lost, as before.
 */
export function argvBytes(argv: string[] = process.argv.slice(2), cmdline?: Buffer): string[] {
  let raw: Buffer;
  try {
    raw = cmdline ?? fs.readFileSync('/proc/self/cmdline');
  } catch {
    return argv.map(toBytes);
  }
  const words: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++)
    if (raw[i] === 0) {
      words.push(raw.subarray(start, i));
      start = i + 1;
    }
  if (start < raw.length) words.push(raw.subarray(start));
  if (words.length < argv.length) return argv.map(toBytes);
  const tail = words.slice(words.length - argv.length);
  // Node and Buffer may replace a bad sequence with a different number of U+FFFD.
  const same = (a: string, b: string) => a.replace(/\uFFFD+/g, '\uFFFD') === b.replace(/\uFFFD+/g, '\uFFFD');
  if (!tail.every((w, i) => same(w.toString('utf8'), argv[i]!))) return argv.map(toBytes);
  return tail.map((w) => w.toString('latin1'));
}

/**
 * Writes a message that may hold byte strings (paths from argv or from the
 * daemon) with its bytes as they are; text with characters beyond one byte
 * is written as UTF-8.
 */
export function writeText(stream: NodeJS.WritableStream, s: string): void {
  stream.write(/^[\x00-\xff]*$/.test(s) ? Buffer.from(s, 'latin1') : s);
}
