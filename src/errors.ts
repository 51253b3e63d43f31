/**
 * Every error cgview raises on purpose. `code` is stable (scripts and tests
 * match on it); `message` is short and says what failed for what; details
 * (verifier log, errno, paths) stay on the object.
 */
export type ErrorCode =
  | 'E_VERIFIER' // the kernel rejected a BPF program; `log` holds the whole verifier log
  | 'E_LOAD' // a BPF object could not be opened or loaded for another reason
  | 'E_BUILD' // a view source did not compile (cgview build); the message has clang's diagnostics
  | 'E_NOT_SUPPORTED' // the kernel lacks a feature cgview needs
  | 'E_NOT_BPFFS' // a path that must be on bpffs is not
  | 'E_SYMLINK' // a path contains a symlink where none is allowed
  | 'E_EXISTS' // the target of a pin or mkdir already exists
  | 'E_NOT_FOUND' // a path, program, map or view that does not exist
  | 'E_NO_MATCH' // a tree directory whose name matches no child cgroup
  | 'E_NOT_TAGGED' // a directory that is not part of any tagged tree
  | 'E_TAGGED' // a directory is already tagged with another cgroup
  | 'E_BAD_INPUT' // a malformed argument or request
  | 'E_NO_DAEMON' // the CLI could not reach the daemon
  | 'E_PERMISSION' // the caller may not do this
  | 'E_BUSY' // the daemon serves as many socket clients as it may; retry later
  | 'E_SYSCALL'; // any other failing system call; `errno` says which

export interface CgviewErrorOptions {
  cause?: unknown;
  errno?: number;
  path?: string;
  log?: string;
  hint?: string;
}

export class CgviewError extends Error {
  override readonly name = 'CgviewError';
  readonly code: ErrorCode;
  readonly errno: number | undefined;
  readonly path: string | undefined;
  /** Whole verifier log for E_VERIFIER (shown with --verbose). */
  readonly log: string | undefined;
  /** What the operator can do about it. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: CgviewErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.errno = opts.errno;
    this.path = opts.path;
    this.log = opts.log;
    this.hint = opts.hint;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, errno: this.errno, path: this.path, hint: this.hint };
  }
}

export function isCgviewError(e: unknown, code?: ErrorCode): e is CgviewError {
  return e instanceof CgviewError && (code === undefined || e.code === code);
}
