/**
 * Names that are members of Object.prototype are not views nor collectors:
 * `cgview pin constructor DIR` is an unknown view (E_NOT_FOUND), not an
 * internal error from a lookup that found the prototype's member.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from '../../src/daemon/server.js';
import { isCgviewError } from '../../src/errors.js';
import { Collectors } from '../../src/views/collectors.js';
import { parseViewSpec, ViewSet } from '../../src/views/registry.js';
import { Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, tmpBpffsDir } from '../helpers.js';

const PROTO = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

describe('Object.prototype names', () => {
  it('parseViewSpec: unknown views (E_NOT_FOUND)', () => {
    for (const n of PROTO)
      assert.throws(
        () => parseViewSpec(n),
        (e) => isCgviewError(e, 'E_NOT_FOUND') && /unknown view/.test((e as Error).message),
        n,
      );
  });

  it('ViewSet.get and identityOf: unknown views', () => {
    const views = new ViewSet({ acquire: () => ({}), running: () => false, release: () => {} });
    try {
      for (const n of PROTO) {
        assert.throws(
          () => views.get(n),
          (e) => isCgviewError(e, 'E_NOT_FOUND'),
          n,
        );
        assert.equal(views.identityOf(n), undefined);
      }
    } finally {
      views.close();
    }
  });

  it('Collectors.acquire: unknown collectors (E_NOT_FOUND)', () => {
    const log = () => {};
    const c = new Collectors(`${tmpBpffsDir()}/private`, BPF_BUILD, log);
    try {
      for (const n of PROTO)
        assert.throws(
          () => c.acquire(`${n}@0`),
          (e) => isCgviewError(e, 'E_NOT_FOUND') && /unknown collector/.test((e as Error).message),
          n,
        );
    } finally {
      c.close();
    }
  });

  it('cgview pin: E_NOT_FOUND from the daemon, which keeps running', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    for (const n of PROTO) {
      const r = await d.cli(['pin', n, env.bpffs, '--cgroup', env.cgroupRoot]);
      assert.equal(r.code, 1, `${n}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`unknown view "${n}"`), n);
      // The code the socket answers (the CLI prints only the message).
      await assert.rejects(
        request(env.socket, { op: 'pin', args: { view: n, dir: env.bpffs, cgroup: env.cgroupRoot } }),
        (e) => isCgviewError(e, 'E_NOT_FOUND'),
        n,
      );
    }
    assert.doesNotMatch(d.stderr, /E_INTERNAL|TypeError/);
    assert.deepEqual((await d.status()).roots, []);
    await d.stop();
  });
});
