/**
 * Runs last (file order): this run of the suite must leave nothing behind —
 * no temporary cgroup (in any hierarchy), no bpffs directory or pin, no
 * temporary directory, no daemon it started. Only names of this run
 * (RUN_PREFIX, from uniq()) are looked at: another suite, a benchmark or a
 * daemon beside this one is none of its business.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { it } from 'node:test';
import { BPFFS, CGROUP_MOUNTS, RUN_PREFIX } from './helpers.js';

const ours = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith(RUN_PREFIX));

/** Command lines of live processes that name something of this run. */
function ourProcesses(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let args: string;
    try {
      args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ');
    } catch {
      continue; // gone meanwhile
    }
    if (args.includes(RUN_PREFIX)) out.push(`${pid} ${args}`);
  }
  return out;
}

it('no temporary cgroups, bpffs entries, directories or daemons of this run are left', () => {
  assert.ok(CGROUP_MOUNTS.length > 0, 'cgroup mounts found in /proc/self/mountinfo');
  for (const m of CGROUP_MOUNTS) assert.deepEqual(ours(m), [], m);
  assert.deepEqual(ours(BPFFS), [], 'bpffs');
  assert.deepEqual(ours(os.tmpdir()), [], os.tmpdir());
  assert.deepEqual(ourProcesses(), [], 'processes started by tests');
});
