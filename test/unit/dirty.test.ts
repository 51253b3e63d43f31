/** Dirty scopes from inotify events, and how a batch of them folds (pure, no kernel). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addScope,
  type DirtyScope,
  EV,
  eventScopes,
  foldScopes,
  type TreeFacts,
} from '../../src/tree/dirty.js';
import { MirrorModel } from '../../src/tree/model.js';
import { childKey } from '../../src/tree/paths.js';

const facts = (over: Partial<TreeFacts> = {}): TreeFacts => ({
  mode: 'auto',
  childKey,
  viewNames: () => ['info'],
  cgroupWatched: () => true,
  ...over,
});
const cg = (rel: string) => ({ side: 'cgroup' as const, rel });
const tr = (rel: string) => ({ side: 'tree' as const, rel });

describe('eventScopes', () => {
  it('a cgroup made or removed: its subtree, deep; a removed one also drops its watch', () => {
    assert.deepEqual(eventScopes(cg('a'), { mask: EV.CREATE | EV.ISDIR, name: 'b' }, facts()), {
      scopes: [{ rel: 'a/b', depth: 'deep' }],
    });
    assert.deepEqual(eventScopes(cg(''), { mask: EV.DELETE | EV.ISDIR, name: 'b' }, facts()), {
      scopes: [{ rel: 'b', depth: 'deep' }],
      unwatch: { rel: 'b', subtree: false },
    });
    assert.deepEqual(eventScopes(cg(''), { mask: EV.MOVED_FROM | EV.ISDIR, name: 'b' }, facts()).unwatch, {
      rel: 'b',
      subtree: true,
    });
  });

  it('a chown of a cgroup directory: that directory, shallow (delegation and revocation)', () => {
    assert.deepEqual(eventScopes(cg('a/b'), { mask: EV.ATTRIB, name: '' }, facts()), {
      scopes: [{ rel: 'a/b', depth: 'shallow' }],
    });
    // the same change as its parent's watch reports it
    assert.deepEqual(eventScopes(cg('a'), { mask: EV.ATTRIB | EV.ISDIR, name: 'b' }, facts()), {
      scopes: [],
    });
    // files in a cgroup (cgroup.procs chowned with it) do not matter
    assert.deepEqual(eventScopes(cg('a'), { mask: EV.ATTRIB, name: 'cgroup.procs' }, facts()), {
      scopes: [],
    });
    // the tree's own root cgroup: the views of the tree root take its owner
    assert.deepEqual(eventScopes(cg(''), { mask: EV.ATTRIB, name: '' }, facts()), {
      scopes: [{ rel: '', depth: 'shallow' }],
    });
  });

  it('a watched directory gone: its parent, shallow', () => {
    assert.deepEqual(eventScopes(tr('a/b'), { mask: EV.DELETE_SELF, name: '' }, facts()), {
      scopes: [{ rel: 'a', depth: 'shallow' }],
    });
  });

  it('tree directories: ours in auto mode are nothing to do; a user’s (manual mode) is checked', () => {
    const mk = { mask: EV.CREATE | EV.ISDIR, name: 'x%2Ey' };
    assert.deepEqual(eventScopes(tr(''), mk, facts()), { scopes: [] });
    assert.deepEqual(eventScopes(tr(''), mk, facts({ mode: 'manual' })), {
      scopes: [{ rel: 'x.y', depth: 'deep' }],
    });
    assert.deepEqual(eventScopes(tr(''), mk, facts({ cgroupWatched: () => false })).scopes, [
      { rel: 'x.y', depth: 'deep' },
    ]);
  });

  it('tree files: a view removed or renamed over is re-pinned; our own pin is not an event; a stranger is looked at', () => {
    assert.deepEqual(eventScopes(tr('a'), { mask: EV.DELETE, name: 'info' }, facts()).scopes, [
      { rel: 'a', depth: 'shallow' },
    ]);
    assert.deepEqual(eventScopes(tr('a'), { mask: EV.MOVED_TO, name: 'info' }, facts()).scopes, [
      { rel: 'a', depth: 'shallow' },
    ]);
    assert.deepEqual(eventScopes(tr('a'), { mask: EV.CREATE, name: 'info' }, facts()).scopes, []);
    assert.deepEqual(eventScopes(tr('a'), { mask: EV.CREATE, name: 'evil' }, facts()).scopes, [
      { rel: 'a', depth: 'shallow' },
    ]);
    assert.deepEqual(eventScopes(tr('a'), { mask: EV.DELETE, name: 'evil' }, facts()).scopes, []);
  });
});

describe('addScope and foldScopes', () => {
  const fold = (...ss: DirtyScope[]) => {
    const m = new Map<string, DirtyScope>();
    for (const s of ss) addScope(m, s);
    return foldScopes(m);
  };
  it('a deep scope covers shallow ones of itself and everything below it', () => {
    assert.deepEqual(
      fold(
        { rel: 'a/b', depth: 'shallow' },
        { rel: 'a', depth: 'deep' },
        { rel: 'a', depth: 'shallow' },
        { rel: 'a/c', depth: 'deep' },
        { rel: 'ab', depth: 'shallow' },
      ),
      [
        { rel: 'a', depth: 'deep' },
        { rel: 'ab', depth: 'shallow' },
      ],
    );
  });
  it('names scopes merge; with a shallow one of the same directory they become deep', () => {
    assert.deepEqual(
      fold({ rel: '', depth: 'names', names: ['x'] }, { rel: '', depth: 'names', names: ['y', 'x'] }),
      [{ rel: '', depth: 'names', names: ['x', 'y'] }],
    );
    assert.deepEqual(fold({ rel: '', depth: 'names', names: ['x'] }, { rel: '', depth: 'shallow' }), [
      { rel: '', depth: 'deep' },
    ]);
    // a deep scope below the root does not cover the names of every directory
    assert.equal(fold({ rel: '', depth: 'names', names: ['x'] }, { rel: 'a', depth: 'deep' }).length, 2);
  });
});

describe('MirrorModel', () => {
  it('a deep reconcile replaces its subtree; files of one directory are set; counts are what is there', () => {
    const m = new MirrorModel();
    const nodes = (rels: string[]) => new Map(rels.map((r, i) => [r, { id: BigInt(i), uid: 0, gid: 0 }]));
    m.replaceScope(
      '',
      nodes(['', 'a', 'a/b', 'ab']),
      new Map([
        ['', new Set(['info'])],
        ['a', new Set(['info'])],
        ['a/b', new Set(['info'])],
        ['ab', new Set()],
      ]),
    );
    assert.equal(m.complete, true);
    assert.equal(m.dirs.size, 4);
    assert.equal(m.pinCount, 3);
    m.replaceScope('a', nodes(['a']), new Map([['a', new Set(['info', 'x'])]]));
    assert.deepEqual([...m.dirs.keys()].sort(), ['', 'a', 'ab']);
    assert.deepEqual([...m.cgroups.keys()].sort(), ['', 'a', 'ab']);
    m.setFiles('ab', ['x'], ['x']);
    m.setFiles('a', ['x'], []);
    m.setFiles('nowhere', ['x'], ['x']);
    assert.equal(m.pinCount, 3);
    assert.equal(m.dirs.has('nowhere'), false);
  });
});
