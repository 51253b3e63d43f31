/**
 * The thread BasicAuth (webconfig.ts) runs bcrypt in, so that password
 * checks never hold the daemon's event loop (the control socket, scrapes).
 * A job is one password against one or more hashes, all compared (the
 * padding of webconfig.ts: every check costs the same); the answer is
 * whether the hash at `real` matched.
 */
import { parentPort, threadId } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

export interface BcryptJob {
  id: number;
  password: string;
  hashes: string[];
  /** Index of the user's own hash in `hashes`, -1 for an unknown user. */
  real: number;
}
export interface BcryptAnswer {
  id: number;
  ok: boolean;
  threadId: number;
}

parentPort?.on('message', (job: BcryptJob) => {
  let ok = false;
  for (let i = 0; i < job.hashes.length; i++) {
    let r = false;
    try {
      // bcryptjs hashes $2y$ as $2b$ (the same algorithm; htpasswd -B writes $2y$).
      r = bcrypt.compareSync(job.password, job.hashes[i]!);
    } catch {
      r = false;
    }
    if (i === job.real) ok = r;
  }
  parentPort!.postMessage({ id: job.id, ok, threadId } satisfies BcryptAnswer);
});
