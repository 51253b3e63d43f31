/**
 * Runs last (file order): the suite must leave nothing behind — no temporary
 * cgroup (v2 or v1), no bpffs directory or pin, no daemon it started.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { it } from 'node:test';
import { BPFFS, CGROUP_V1_CPU, CGROUP2 } from './helpers.js';

const ours = (dir: string) =>
  fs.readdirSync(dir).filter((n) => n.startsWith('cgvt-') || n.startsWith('cgvb-'));

it('no temporary cgroups, bpffs entries or daemons are left', () => {
  assert.deepEqual(ours(CGROUP2), [], 'cgroup v2');
  assert.deepEqual(ours(CGROUP_V1_CPU), [], 'cgroup v1 cpu');
  assert.deepEqual(ours(BPFFS), [], 'bpffs');
  const daemons = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /bin\/cgview daemon .*\/(cgvt|cgvb)-/.test(l));
  assert.deepEqual(daemons, [], 'daemons started by tests');
});
