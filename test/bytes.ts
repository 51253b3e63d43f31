/**
 * Runs `bin/cgview` with arguments given as byte strings (one char per
 * byte). Node's child_process encodes arguments as UTF-8, so the bytes are
 * handed to bash as $'\xNN' words, which exec passes on exactly.
 */
import { execFile } from 'node:child_process';
import { CGVIEW } from './helpers.js';

export interface ByteRun {
  code: number;
  /** stdout and stderr as byte strings. */
  stdout: string;
  stderr: string;
}

/** A bash word for a byte string: every byte escaped. */
export function bashWord(s: string): string {
  return `$'${[...Buffer.from(s, 'latin1')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
}

export function cgviewBytes(
  args: string[],
  opts: { timeoutMs?: number; cwd?: string } = {},
): Promise<ByteRun> {
  const timeoutMs = opts.timeoutMs ?? 30000;
  // cd inside bash: the directory may be a byte-string path too.
  const cd = opts.cwd === undefined ? '' : `cd ${bashWord(opts.cwd)} && `;
  const script = `${cd}exec ${[process.execPath, CGVIEW, ...args].map(bashWord).join(' ')}`;
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('CGVIEW_')) delete env[k];
    execFile(
      '/bin/bash',
      ['-c', script],
      { encoding: 'latin1', timeout: timeoutMs, killSignal: 'SIGKILL', env, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
