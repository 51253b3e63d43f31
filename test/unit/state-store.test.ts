/**
 * The state store: every transition is applied and saved (the file on disk
 * always says what the store holds), and the public index leaves out trees
 * being untagged. Temp files under os.tmpdir() only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { StateStore } from '../../src/daemon/state-store.js';
import { loadState, type TagRoot } from '../../src/tree/state.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvu-store-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const INFO = { view: 'info', name: 'info', fileMode: 0o440 };
const MINE = { view: 'info', name: 'mine', fileMode: 0o400 };

function store(): { s: StateStore; file: string; index: string; logs: string[] } {
  const file = path.join(dir, 'state.json');
  const index = path.join(dir, 'run', 'roots.json');
  const logs: string[] = [];
  return { s: new StateStore(file, index, (_l, msg) => logs.push(msg)), file, index, logs };
}

const onDisk = (file: string) => JSON.parse(JSON.stringify(loadState(file)));
const held = (s: StateStore) => JSON.parse(JSON.stringify(s.state));

describe('StateStore', () => {
  it('saves every transition, from the first start to the untag', () => {
    const { s, file, index } = store();
    assert.equal(s.state.initialized, false);
    s.commit({ kind: 'initialize' });
    assert.deepEqual(onDisk(file), { version: 1, initialized: true, roots: [] });

    const root: TagRoot = {
      dir: '/sys/fs/bpf/t',
      cgroup: '/sys/fs/cgroup/unified/j',
      mode: 'auto',
      inherit: [],
      local: {},
    };
    s.commit({ kind: 'tag', root, rel: '', pin: INFO, inherit: true });
    assert.deepEqual(onDisk(file).roots[0].inherit, [INFO]);
    s.commit({ kind: 'pin', root, rel: 'a\xff', pin: MINE, inherit: false });
    s.commit({ kind: 'pin', root, rel: 'b', pin: MINE, inherit: false });
    assert.deepEqual(onDisk(file).roots[0].local, { 'a\xff': [MINE], b: [MINE] });
    assert.deepEqual(onDisk(file), held(s));

    s.commit({ kind: 'dropLocal', root, rels: ['a\xff'] });
    assert.deepEqual(onDisk(file).roots[0].local, { b: [MINE] });
    s.commit({ kind: 'unpin', root, rel: 'b', name: 'mine', inherited: false });
    assert.deepEqual(onDisk(file).roots[0].local, {}, 'an empty list goes');
    assert.deepEqual(JSON.parse(fs.readFileSync(index, 'utf8')), {
      roots: [{ dir: root.dir, cgroup: root.cgroup, inherit: [{ name: 'info', view: 'info' }] }],
    });
    assert.equal(fs.statSync(index).mode & 0o777, 0o644, 'readable by every user');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    s.commit({ kind: 'unpin', root, rel: '', name: 'info', inherited: true });
    s.commit({ kind: 'untagging', root });
    assert.equal(onDisk(file).roots[0].untagging, true, 'a restart finishes the untag');
    assert.deepEqual(JSON.parse(fs.readFileSync(index, 'utf8')), { roots: [] }, 'the index leaves it out');
    s.commit({ kind: 'untagged', root });
    assert.deepEqual(onDisk(file), { version: 1, initialized: true, roots: [] });
  });

  it('first start with the default tree; a store opened again reads what was saved', () => {
    const { s, file } = store();
    const root: TagRoot = {
      dir: '/sys/fs/bpf/cgview',
      cgroup: '/sys/fs/cgroup/unified',
      mode: 'auto',
      inherit: [INFO],
      local: {},
    };
    s.commit({ kind: 'initialize', root });
    const again = new StateStore(file, undefined, () => {});
    assert.deepEqual(held(again), held(s));
    assert.equal(again.state.roots[0]!.dir, '/sys/fs/bpf/cgview');
  });

  it('an index that cannot be written is logged, the state is still saved', () => {
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(path.join(dir, 'blocker'), '');
    const logs: string[] = [];
    const s = new StateStore(file, path.join(dir, 'blocker', 'roots.json'), (_l, msg) => logs.push(msg));
    s.commit({ kind: 'initialize' });
    assert.equal(loadState(file).initialized, true);
    assert.deepEqual(logs, ['cannot write the index of trees']);
  });

  it('a save that fails changes nothing: the live state, its roots and the file stay as they were', () => {
    const { s, file } = store();
    const root: TagRoot = {
      dir: '/sys/fs/bpf/t',
      cgroup: '/sys/fs/cgroup/unified/j',
      mode: 'auto',
      inherit: [],
      local: {},
    };
    s.commit({ kind: 'initialize' });
    s.commit({ kind: 'tag', root, rel: '', pin: INFO, inherit: true });
    const before = held(s);
    // The state file's name taken by a non-empty directory: the rename over it fails.
    fs.rmSync(file);
    fs.mkdirSync(path.join(file, 'x'), { recursive: true });
    assert.throws(() => s.commit({ kind: 'pin', root, rel: 'a', pin: MINE, inherit: false }), {
      code: 'E_SYSCALL',
    });
    const other: TagRoot = { ...root, dir: '/sys/fs/bpf/u', inherit: [], local: {} };
    assert.throws(() => s.commit({ kind: 'tag', root: other, rel: '', pin: INFO, inherit: true }), {
      code: 'E_SYSCALL',
    });
    assert.throws(() => s.commit({ kind: 'untagging', root }, { kind: 'untagged', root }), {
      code: 'E_SYSCALL',
    });
    assert.deepEqual(held(s), before);
    assert.equal(s.state.roots[0], root, 'the live root is the same object');
    assert.deepEqual(root.local, {});
    assert.equal(root.untagging, undefined);
    assert.deepEqual(other.inherit, [], 'a new root is not touched either');
    // Saved once the file can be written again: exactly the live state plus the change.
    fs.rmSync(file, { recursive: true });
    s.commit({ kind: 'pin', root, rel: 'a', pin: MINE, inherit: false });
    assert.deepEqual(onDisk(file), held(s));
    assert.deepEqual(root.local, { a: [MINE] }, 'the live root has the change');
  });
});
