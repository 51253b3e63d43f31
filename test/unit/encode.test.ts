/** Tree names: bpffs refuses '.', so cgroup names are percent-encoded (paths.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cgroupForTreeDir,
  childKey,
  decodeName,
  decodeRel,
  encodeName,
  encodeRel,
  treeDirForCgroup,
} from '../../src/tree/paths.js';

describe('tree name encoding', () => {
  it('encodes . and % only', () => {
    assert.equal(encodeName('system.slice'), 'system%2Eslice');
    assert.equal(encodeName('50%'), '50%25');
    assert.equal(encodeName('plain-name_1'), 'plain-name_1');
    assert.equal(encodeName('\xff\x80.x'), '\xff\x80%2Ex');
  });

  it('round-trips every byte string', () => {
    for (const n of ['a.b.c', '%2E', '%%..%', '...', '..x', 'caf\xe9.scope', 'x'.repeat(200)])
      assert.equal(decodeName(encodeName(n)), n);
    assert.equal(decodeRel(encodeRel('a.b/c%d/e')), 'a.b/c%d/e');
    assert.equal(encodeRel(''), '');
  });

  it('rejects names that no cgroup name encodes to', () => {
    assert.equal(decodeName('a.b'), null, 'a raw dot cannot be in bpffs, nor in an encoding');
    assert.equal(decodeName('50%'), null);
    assert.equal(decodeName('%41'), null);
    assert.equal(decodeName('%2e'), null, 'lower-case hex is not what encodeName makes');
    assert.equal(decodeRel('ok/%zz'), null);
  });

  it('rejects the tree names of . and ..: a user mkdir must not walk the daemon out of a directory', () => {
    assert.equal(decodeName('%2E%2E'), null);
    assert.equal(decodeName('%2E'), null);
    assert.equal(decodeName(''), null);
    assert.equal(decodeRel('deleg/%2E%2E/x'), null);
    assert.equal(childKey('%2E%2E'), '\0%2E%2E');
  });

  it('carries undecodable tree names as \\0 + raw, and encodes them back to the raw name', () => {
    assert.equal(childKey('system%2Eslice'), 'system.slice');
    assert.equal(childKey('bad%zz'), '\0bad%zz');
    assert.equal(encodeName(childKey('bad%zz')), 'bad%zz');
  });

  it('maps cgroup dirs to tree dirs and back', () => {
    const root = { dir: '/sys/fs/bpf/cgview', cgroup: '/sys/fs/cgroup/unified' };
    assert.equal(
      treeDirForCgroup(root, '/sys/fs/cgroup/unified/system.slice/a.scope'),
      '/sys/fs/bpf/cgview/system%2Eslice/a%2Escope',
    );
    assert.equal(
      cgroupForTreeDir(root, '/sys/fs/bpf/cgview/system%2Eslice'),
      '/sys/fs/cgroup/unified/system.slice',
    );
    assert.equal(cgroupForTreeDir(root, '/sys/fs/bpf/cgview/x%zz'), null);
  });
});
