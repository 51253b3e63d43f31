/**
 * More CPUs than the collector has per-CPU slots (issue 7.2): the collector
 * refuses to start with E_NOT_SUPPORTED and leaves nothing behind, instead
 * of running and charging nothing on the CPUs past its slots.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeLogger } from '../../src/daemon/log.js';
import { isCgviewError } from '../../src/errors.js';
import { Collectors, cpuListCount } from '../../src/views/collectors.js';
import { BPF_BUILD, checkFdLeaks, tmpBpffsDir } from '../helpers.js';

checkFdLeaks();

describe('collector and the number of CPUs', () => {
  it('counts CPU slots from a kernel CPU list', () => {
    assert.equal(cpuListCount('0-1\n'), 2);
    assert.equal(cpuListCount('0'), 1);
    assert.equal(cpuListCount('0-3,8-11'), 12);
    assert.equal(cpuListCount('0-255'), 256);
    assert.equal(cpuListCount('0-511'), 512);
    assert.throws(
      () => cpuListCount('zero'),
      (e) => isCgviewError(e, 'E_BAD_INPUT'),
    );
  });

  it('256 possible CPUs run; 257 and 512 are refused with E_NOT_SUPPORTED, nothing pinned', () => {
    const priv = path.join(tmpBpffsDir(), 'private');
    const ok = new Collectors(priv, BPF_BUILD, makeLogger('error'), { possibleCpus: '0-255\n' });
    ok.acquire('sched_lat@0');
    ok.stop('sched_lat@0');
    ok.close();
    for (const cpus of ['0-256\n', '0-511\n']) {
      const c = new Collectors(priv, BPF_BUILD, makeLogger('error'), { possibleCpus: cpus });
      assert.throws(
        () => c.acquire('sched_lat@0'),
        (e) =>
          isCgviewError(e, 'E_NOT_SUPPORTED') &&
          /possible CPUs, the collector follows at most 256/.test(e.message),
      );
      assert.equal(c.running('sched_lat@0'), false);
      c.close();
      assert.deepEqual(fs.existsSync(priv) ? fs.readdirSync(priv) : [], [], `${cpus.trim()}: nothing pinned`);
    }
  });
});
