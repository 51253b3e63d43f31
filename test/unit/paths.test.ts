/** Pure path mapping between cgroup directories and view-tree directories. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  baseName,
  cgroupForTreeDir,
  depth,
  isWithin,
  join,
  normalize,
  parentRel,
  relativeTo,
  treeDirForCgroup,
} from '../../src/tree/paths.js';

// A byte-string name: one JS char per byte, bytes 0x80-0xff included (not UTF-8).
const RAW = 'job-\x80\xe9\xff';

describe('normalize', () => {
  it('drops trailing slashes, empty and "." components', () => {
    assert.equal(normalize('/a/b/'), '/a/b');
    assert.equal(normalize('//a//./b/.//c'), '/a/b/c');
    assert.equal(normalize('/sys/fs/cgroup/unified'), '/sys/fs/cgroup/unified');
  });

  it('keeps the root as "/"', () => {
    assert.equal(normalize('/'), '/');
    assert.equal(normalize('///'), '/');
    assert.equal(normalize('/./'), '/');
  });

  it('refuses relative paths and ".." components', () => {
    assert.equal(normalize('a/b'), null);
    assert.equal(normalize(''), null);
    assert.equal(normalize('/a/../b'), null);
    assert.equal(normalize('/..'), null);
  });

  it('keeps names that merely contain dots', () => {
    assert.equal(normalize('/a/..b/.c/...'), '/a/..b/.c/...');
  });

  it('keeps chars 0x80-0xff as they are', () => {
    assert.equal(normalize(`/x/${RAW}/`), `/x/${RAW}`);
    assert.equal(normalize('/\xff/\x80'), '/\xff/\x80');
  });
});

describe('relativeTo', () => {
  it('is "" for the same path', () => {
    assert.equal(relativeTo('/a/b', '/a/b'), '');
    assert.equal(relativeTo('/', '/'), '');
  });

  it('gives the path below the parent', () => {
    assert.equal(relativeTo('/a', '/a/b'), 'b');
    assert.equal(relativeTo('/a', '/a/b/c'), 'b/c');
    assert.equal(relativeTo('/', '/a/b'), 'a/b');
  });

  it('is null outside the parent, including a sibling with the same prefix', () => {
    assert.equal(relativeTo('/a', '/ab'), null);
    assert.equal(relativeTo('/a/b', '/a'), null);
    assert.equal(relativeTo('/a', '/b/a'), null);
  });

  it('keeps byte-string names', () => {
    assert.equal(relativeTo(`/r/${RAW}`, `/r/${RAW}/\xfe`), '\xfe');
    assert.equal(relativeTo(`/r/${RAW}`, `/r/${RAW}\xfe`), null);
  });
});

describe('join', () => {
  it('joins a base and a relative path', () => {
    assert.equal(join('/a', 'b/c'), '/a/b/c');
    assert.equal(join('/', 'b'), '/b');
    assert.equal(join(`/a/${RAW}`, '\xff'), `/a/${RAW}/\xff`);
  });

  it('"" is the base itself', () => {
    assert.equal(join('/a/b', ''), '/a/b');
    assert.equal(join('/', ''), '/');
  });

  it('undoes relativeTo', () => {
    for (const [p, c] of [
      ['/a', '/a/b/c'],
      ['/', '/x'],
      ['/q', '/q'],
      [`/${RAW}`, `/${RAW}/${RAW}`],
    ]) {
      assert.equal(join(p!, relativeTo(p!, c!)!), c);
    }
  });
});

describe('parentRel, baseName, depth, isWithin', () => {
  it('parentRel', () => {
    assert.equal(parentRel(''), null);
    assert.equal(parentRel('a'), '');
    assert.equal(parentRel('a/b'), 'a');
    assert.equal(parentRel('a/b/c'), 'a/b');
    assert.equal(parentRel(`${RAW}/\xff`), RAW);
  });

  it('baseName', () => {
    assert.equal(baseName('a'), 'a');
    assert.equal(baseName('a/b/c'), 'c');
    assert.equal(baseName(`x/${RAW}`), RAW);
  });

  it('depth', () => {
    assert.equal(depth(''), 0);
    assert.equal(depth('a'), 1);
    assert.equal(depth('a/b'), 2);
    assert.equal(depth('a/b/c'), 3);
    assert.equal(depth(`${RAW}/${RAW}`), 2);
  });

  it('isWithin: the path itself and below, not a sibling with the same prefix', () => {
    assert.ok(isWithin('', ''));
    assert.ok(isWithin('', 'a/b'));
    assert.ok(isWithin('a', 'a'));
    assert.ok(isWithin('a', 'a/b'));
    assert.ok(isWithin('a/b', 'a/b/c/d'));
    assert.ok(!isWithin('a', 'ab'));
    assert.ok(!isWithin('a', ''));
    assert.ok(!isWithin('a/b', 'a'));
    assert.ok(!isWithin('a/b', 'a/c'));
    assert.ok(isWithin(RAW, `${RAW}/\xff`));
    assert.ok(!isWithin(RAW, `${RAW}\xff`));
  });
});

describe('cgroup <-> tree directory', () => {
  const root = { dir: '/sys/fs/bpf/cgview', cgroup: '/sys/fs/cgroup/unified/jobs' };

  it('the tagged root mirrors its cgroup', () => {
    assert.equal(cgroupForTreeDir(root, '/sys/fs/bpf/cgview'), '/sys/fs/cgroup/unified/jobs');
    assert.equal(treeDirForCgroup(root, '/sys/fs/cgroup/unified/jobs'), '/sys/fs/bpf/cgview');
  });

  it('sub-directories map by relative path', () => {
    assert.equal(cgroupForTreeDir(root, '/sys/fs/bpf/cgview/a/b'), '/sys/fs/cgroup/unified/jobs/a/b');
    assert.equal(treeDirForCgroup(root, '/sys/fs/cgroup/unified/jobs/a/b'), '/sys/fs/bpf/cgview/a/b');
  });

  it('paths outside the root map to null', () => {
    assert.equal(cgroupForTreeDir(root, '/sys/fs/bpf'), null);
    assert.equal(cgroupForTreeDir(root, '/sys/fs/bpf/cgview2/a'), null);
    assert.equal(treeDirForCgroup(root, '/sys/fs/cgroup/unified'), null);
    assert.equal(treeDirForCgroup(root, '/sys/fs/cgroup/unified/jobsX/a'), null);
    assert.equal(treeDirForCgroup(root, '/sys/fs/bpf/cgview/a'), null);
  });

  it('byte-string names are kept as they are, both ways', () => {
    const t = treeDirForCgroup(root, `/sys/fs/cgroup/unified/jobs/${RAW}/\xff\xfe`);
    assert.equal(t, `/sys/fs/bpf/cgview/${RAW}/\xff\xfe`);
    assert.equal(cgroupForTreeDir(root, t!), `/sys/fs/cgroup/unified/jobs/${RAW}/\xff\xfe`);
  });

  it('a root at "/" on either side', () => {
    const r = { dir: '/', cgroup: '/cg' };
    assert.equal(cgroupForTreeDir(r, '/a/b'), '/cg/a/b');
    assert.equal(treeDirForCgroup(r, '/cg/a/b'), '/a/b');
    assert.equal(treeDirForCgroup(r, '/cg'), '/');
  });
});
