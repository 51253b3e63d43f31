/** Persisted state: atomic save, load, validation. Temp files under os.tmpdir() only. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CgviewError } from '../../src/errors.js';
import { emptyState, loadState, type State, saveState, validateState } from '../../src/tree/state.js';

const RAW = 'job-\x80\xe9\xff';

function sample(): State {
  return {
    version: 1,
    initialized: true,
    roots: [
      {
        dir: '/sys/fs/bpf/cgview',
        cgroup: '/sys/fs/cgroup/unified',
        mode: 'auto',
        inherit: [
          { view: 'sched_lat', name: 'sched_lat', fileMode: 0o444 },
          { view: '/opt/v/my.bpf.o:dump', name: 'dump', fileMode: 0o440 },
        ],
        local: { '': [{ view: 'info', name: 'root_info', fileMode: 0o400 }], 'a/b': [] },
      },
      {
        dir: `/sys/fs/bpf/${RAW}/t`,
        cgroup: `/sys/fs/cgroup/cpu/${RAW}`,
        mode: 'manual',
        inherit: [{ view: 'info', name: `info-\xfe`, fileMode: 0o444 }],
        local: { [`${RAW}/\xff`]: [{ view: 'info', name: 'x\x80', fileMode: 0o444 }] },
      },
    ],
  };
}

let dir: string;
let file: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgview-state-'));
  file = path.join(dir, 'state.json');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function expectBadInput(fn: () => unknown, f: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CgviewError, `a CgviewError, not ${String(e)}`);
    assert.equal(e.code, 'E_BAD_INPUT');
    assert.ok(e.message.includes(f), `message names the file: ${e.message}`);
    return true;
  });
}

describe('state: load and save', () => {
  it('a missing file is the empty state', () => {
    const s = loadState(path.join(dir, 'nope.json'));
    assert.deepEqual(s, emptyState());
    assert.deepEqual(s, { version: 1, initialized: false, roots: [] });
  });

  it('save then load gives the same state, byte-string paths included', () => {
    const s = sample();
    saveState(file, s);
    const back = loadState(file);
    assert.deepEqual(back, sample());
    assert.equal(back.roots[1]!.dir, `/sys/fs/bpf/${RAW}/t`);
    assert.deepEqual(Object.keys(back.roots[1]!.local), [`${RAW}/\xff`]);
    assert.equal(back.roots[1]!.inherit[0]!.name, 'info-\xfe');
  });

  it('a later save replaces the earlier one', () => {
    saveState(file, sample());
    saveState(file, emptyState());
    assert.deepEqual(loadState(file), emptyState());
  });

  it('leaves no temporary file behind', () => {
    saveState(file, sample());
    saveState(file, sample());
    assert.deepEqual(fs.readdirSync(dir), ['state.json']);
  });

  it('the empty state round-trips', () => {
    saveState(file, emptyState());
    assert.deepEqual(loadState(file), emptyState());
  });
});

describe('state: bad files', () => {
  it('invalid JSON is E_BAD_INPUT naming the file', () => {
    fs.writeFileSync(file, '{"version": 1, "roots": [');
    expectBadInput(() => loadState(file), file);
  });

  it('an empty file is E_BAD_INPUT naming the file', () => {
    fs.writeFileSync(file, '');
    expectBadInput(() => loadState(file), file);
  });

  const pin = { view: 'info', name: 'info', fileMode: 0o444 };
  const goodRoot = { dir: '/b', cgroup: '/c', mode: 'auto', inherit: [pin], local: {} };
  const cases: [string, unknown][] = [
    ['null', null],
    ['a number', 42],
    ['a list', []],
    ['a string', 'state'],
    ['no version', { roots: [] }],
    ['an unknown version', { version: 2, roots: [] }],
    ['a version as a string', { version: '1', roots: [] }],
    ['no roots', { version: 1 }],
    ['roots as an object', { version: 1, roots: {} }],
    ['a null root', { version: 1, roots: [null] }],
    ['a root without dir', { version: 1, roots: [{ ...goodRoot, dir: undefined }] }],
    ['a root with a numeric cgroup', { version: 1, roots: [{ ...goodRoot, cgroup: 7 }] }],
    ['a bad mode', { version: 1, roots: [{ ...goodRoot, mode: 'sometimes' }] }],
    ['inherit not a list', { version: 1, roots: [{ ...goodRoot, inherit: pin }] }],
    [
      'a pin without fileMode',
      { version: 1, roots: [{ ...goodRoot, inherit: [{ view: 'info', name: 'info' }] }] },
    ],
    [
      'a pin with a string fileMode',
      { version: 1, roots: [{ ...goodRoot, inherit: [{ ...pin, fileMode: '0444' }] }] },
    ],
    ['a null pin', { version: 1, roots: [{ ...goodRoot, inherit: [null] }] }],
    ['local null', { version: 1, roots: [{ ...goodRoot, local: null }] }],
    ['local a string', { version: 1, roots: [{ ...goodRoot, local: 'a' }] }],
    [
      'a bad local pin',
      { version: 1, roots: [{ ...goodRoot, local: { a: [{ view: 3, name: 'x', fileMode: 1 }] } }] },
    ],
    ['local pins not a list (string)', { version: 1, roots: [{ ...goodRoot, local: { a: 'info' } }] }],
    ['local pins not a list (null)', { version: 1, roots: [{ ...goodRoot, local: { a: null } }] }],
    ['local pins not a list (object)', { version: 1, roots: [{ ...goodRoot, local: { a: pin } }] }],
  ];
  for (const [what, value] of cases) {
    it(`${what} is E_BAD_INPUT naming the file`, () => {
      fs.writeFileSync(file, JSON.stringify(value));
      expectBadInput(() => loadState(file), file);
      expectBadInput(() => validateState(JSON.parse(JSON.stringify(value)), file), file);
    });
  }

  it('the good root of those cases is accepted (the cases fail for their one defect)', () => {
    fs.writeFileSync(file, JSON.stringify({ version: 1, roots: [goodRoot] }));
    const s = loadState(file);
    assert.equal(s.roots.length, 1);
    assert.equal(s.initialized, false);
  });

  it('the error carries the path', () => {
    fs.writeFileSync(file, 'not json');
    assert.throws(
      () => loadState(file),
      (e: unknown) => e instanceof CgviewError && e.path === file,
    );
  });
});
