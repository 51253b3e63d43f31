/** The pure reconcile diff: desired directories and pins against fake snapshots. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWithin, parentRel } from '../../src/tree/paths.js';
import {
  type ActualDir,
  type ActualFile,
  type CgroupNode,
  type DiffInput,
  desiredDirs,
  diff,
  type Op,
  opPath,
  pinsFor,
} from '../../src/tree/reconcile.js';
import type { Mode, TagRoot, ViewPin } from '../../src/tree/state.js';

const SCHED: ViewPin = { view: 'sched_lat', name: 'sched_lat', fileMode: 0o444 };
const INFO: ViewPin = { view: 'info', name: 'info', fileMode: 0o444 };
const EXTRA: ViewPin = { view: 'info', name: 'extra', fileMode: 0o440 };
const TAGS: Record<string, string> = { sched_lat: 'aaaa000000000001', info: 'bbbb000000000002' };
const viewTag = (v: string): string | undefined => TAGS[v];
const RAW = 'job-\x80\xe9\xff';

function tagRoot(mode: Mode = 'auto', local: Record<string, ViewPin[]> = {}): TagRoot {
  return {
    dir: '/sys/fs/bpf/cgview',
    cgroup: '/sys/fs/cgroup/unified/jobs',
    mode,
    inherit: [SCHED, INFO],
    local,
  };
}

/** Cgroups by relative path; ids 100, 101, ... in order; owner 1000+index unless given. */
function cgroups(rels: string[], owners: Record<string, number> = {}): Map<string, CgroupNode> {
  return new Map(
    rels.map((r, i) => {
      const uid = owners[r] ?? (r === '' ? 0 : 1000 + i);
      return [r, { id: BigInt(100 + i), uid, gid: uid }];
    }),
  );
}

function view(cg: CgroupNode, pin: ViewPin, over: Partial<ActualFile> = {}): ActualFile {
  return {
    kind: 'view',
    cgroupId: cg.id,
    progTag: TAGS[pin.view]!,
    mode: pin.fileMode,
    uid: cg.uid,
    gid: cg.gid,
    ...over,
  };
}

function other(kind: 'foreign' | 'symlink' | 'other', uid = 0): ActualFile {
  return { kind, mode: kind === 'symlink' ? 0o777 : 0o600, uid, gid: uid };
}

/** The tree exactly as it should be for `cgs` (in auto mode: every cgroup). */
function mirrored(root: TagRoot, cgs: Map<string, CgroupNode>, only?: string[]): Map<string, ActualDir> {
  const tree = new Map<string, ActualDir>();
  for (const [rel, cg] of cgs) {
    if (only && !only.includes(rel)) continue;
    const files = new Map<string, ActualFile>();
    for (const p of pinsFor(root, rel)) files.set(p.name, view(cg, p));
    tree.set(rel, { uid: cg.uid, gid: cg.gid, files });
  }
  return tree;
}

function emptyDir(uid = 0): ActualDir {
  return { uid, gid: uid, files: new Map() };
}

function input(
  root: TagRoot,
  cgs: Map<string, CgroupNode>,
  tree: Map<string, ActualDir>,
  scope?: string,
): DiffInput {
  return { root, cgroups: cgs, tree, viewTag, ...(scope === undefined ? {} : { scope }) };
}

const idx = (ops: Op[], pred: (o: Op) => boolean): number => ops.findIndex(pred);
const isOp =
  <K extends Op['op']>(k: K, rel: string, name?: string) =>
  (o: Op): boolean =>
    o.op === k && o.rel === rel && (name === undefined || ('name' in o && o.name === name));
const ofKind = <K extends Op['op']>(ops: Op[], k: K): Extract<Op, { op: K }>[] =>
  ops.filter((o): o is Extract<Op, { op: K }> => o.op === k);

describe('pinsFor', () => {
  it('is the inherit list plus the local pins of that directory only', () => {
    const root = tagRoot('auto', { a: [EXTRA] });
    assert.deepEqual(pinsFor(root, ''), [SCHED, INFO]);
    assert.deepEqual(pinsFor(root, 'a'), [SCHED, INFO, EXTRA]);
    assert.deepEqual(pinsFor(root, 'a/b'), [SCHED, INFO]);
  });
});

describe('diff: auto mode', () => {
  it('creates a directory for every cgroup with the inherit list', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a', 'a/b', 'a/b/c', 'd', RAW, `${RAW}/\xfe`]);
    const tree = new Map([['', emptyDir()]]);
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.deepEqual(conflicts, []);
    assert.deepEqual(ofKind(ops, 'rmfile'), []);
    assert.deepEqual(ofKind(ops, 'rmdir'), []);
    // one mkdir per missing directory, with the owner of its cgroup; none for the existing root
    const mkdirs = ofKind(ops, 'mkdir');
    assert.deepEqual(mkdirs.map((o) => o.rel).sort(), ['a', 'a/b', 'a/b/c', 'd', RAW, `${RAW}/\xfe`].sort());
    for (const m of mkdirs) {
      const cg = cgs.get(m.rel)!;
      assert.equal(m.uid, cg.uid);
      assert.equal(m.gid, cg.gid);
    }
    // every directory, root included, gets every inherited view, for its own cgroup
    const pins = ofKind(ops, 'pin');
    assert.equal(pins.length, cgs.size * 2);
    for (const [rel, cg] of cgs) {
      for (const want of [SCHED, INFO]) {
        const p = pins.find((o) => o.rel === rel && o.name === want.name);
        assert.ok(p, `pin ${want.name} in '${rel}'`);
        assert.deepEqual(p.pin, want);
        assert.equal(p.cgroupId, cg.id);
        assert.equal(p.uid, cg.uid);
        assert.equal(p.gid, cg.gid);
      }
    }
    // parents before children, pins after their directory's mkdir
    for (const m of mkdirs) {
      const parent = parentRel(m.rel)!;
      const at = idx(ops, isOp('mkdir', m.rel));
      if (parent !== '') assert.ok(idx(ops, isOp('mkdir', parent)) < at, `${parent} before ${m.rel}`);
      for (const [i, o] of ops.entries()) if (o.op === 'pin' && o.rel === m.rel) assert.ok(i > at);
    }
  });

  it('creates the sub-tree of a new cgroup under an existing directory', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a', 'a/new', 'a/new/x']);
    const tree = mirrored(root, cgs, ['', 'a']);
    const { ops } = diff(input(root, cgs, tree));
    assert.deepEqual(
      ops.map((o) => `${o.op} ${o.rel}${'name' in o && o.name ? `/${o.name}` : ''}`),
      [
        'mkdir a/new',
        'pin a/new/sched_lat',
        'pin a/new/info',
        'mkdir a/new/x',
        'pin a/new/x/sched_lat',
        'pin a/new/x/info',
      ],
    );
  });

  it('adopts correct pins: no ops when the tree is as desired', () => {
    const root = tagRoot('auto', { a: [EXTRA], '': [{ view: 'info', name: 'root_info', fileMode: 0o400 }] });
    const cgs = cgroups(['', 'a', 'a/b', RAW]);
    const d = diff(input(root, cgs, mirrored(root, cgs)));
    assert.deepEqual({ ops: d.ops, conflicts: d.conflicts }, { ops: [], conflicts: [] });
    assert.deepEqual([...d.dirs].sort(), [...cgs.keys()].sort());
  });

  it('adopts any program while the view is not loaded (no tag known)', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.get('info')!.progTag = 'ffffffffffffffff';
    const d = diff({ ...input(root, cgs, tree), viewTag: () => undefined });
    assert.deepEqual(d.ops, []);
  });

  it('replaces a pin whose cgroup id differs (cgroup recreated)', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a', 'b']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.get('sched_lat')!.cgroupId = 999n;
    const { ops } = diff(input(root, cgs, tree));
    assert.equal(
      ops.length,
      2,
      JSON.stringify(ops, (_, v) => (typeof v === 'bigint' ? `${v}` : v)),
    );
    const rm = ops[0]!;
    const pin = ops[1]!;
    assert.ok(rm.op === 'rmfile' && rm.rel === 'a' && rm.name === 'sched_lat');
    assert.ok(rm.reason.length > 0);
    assert.ok(pin.op === 'pin' && pin.rel === 'a' && pin.name === 'sched_lat');
    assert.equal(pin.cgroupId, cgs.get('a')!.id);
    assert.equal(pin.uid, cgs.get('a')!.uid);
  });

  it('replaces a pin of an outdated program (tag differs from the loaded one)', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('')!.files.get('info')!.progTag = '0123456789abcdef';
    const { ops } = diff(input(root, cgs, tree));
    assert.equal(ops.length, 2);
    assert.ok(isOp('rmfile', '', 'info')(ops[0]!));
    assert.ok(isOp('pin', '', 'info')(ops[1]!));
    const pin = ops[1] as Extract<Op, { op: 'pin' }>;
    assert.equal(pin.cgroupId, cgs.get('')!.id);
    assert.notEqual((ops[0] as Extract<Op, { op: 'rmfile' }>).reason, '');
  });

  it('fixes file modes and owners in place', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a', 'b']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.get('sched_lat')!.mode = 0o600;
    tree.get('b')!.files.get('info')!.uid = 0;
    tree.get('b')!.files.get('info')!.gid = 0;
    const { ops } = diff(input(root, cgs, tree));
    assert.deepEqual(ops, [
      { op: 'chmod', rel: 'a', name: 'sched_lat', mode: 0o444 },
      { op: 'chown', rel: 'b', name: 'info', uid: cgs.get('b')!.uid, gid: cgs.get('b')!.gid },
    ]);
  });

  it('chowns a mirrored directory to its cgroup owner', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.gid = 4242;
    const { ops } = diff(input(root, cgs, tree));
    assert.deepEqual(ops, [
      { op: 'chown', rel: 'a', name: null, uid: cgs.get('a')!.uid, gid: cgs.get('a')!.gid },
    ]);
  });

  it('removes views no longer pinned in a directory', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.set('extra', view(cgs.get('a')!, EXTRA));
    const { ops } = diff(input(root, cgs, tree));
    assert.equal(ops.length, 1);
    assert.ok(isOp('rmfile', 'a', 'extra')(ops[0]!));
  });

  it('puts local pins only where they are pinned', () => {
    const root = tagRoot('auto', { 'a/b': [EXTRA] });
    const cgs = cgroups(['', 'a', 'a/b', 'a/b/c', 'x']);
    const { ops } = diff(input(root, cgs, new Map([['', emptyDir()]])));
    const extras = ofKind(ops, 'pin').filter((o) => o.name === 'extra');
    assert.equal(extras.length, 1);
    assert.equal(extras[0]!.rel, 'a/b');
    assert.deepEqual(extras[0]!.pin, EXTRA);
    assert.equal(extras[0]!.cgroupId, cgs.get('a/b')!.id);
  });

  it('removes directories of removed cgroups deepest first, their files first', () => {
    const root = tagRoot();
    const all = cgroups(['', 'a', 'a/b', 'a/b/c', 'a/d', 'keep']);
    const tree = mirrored(root, all);
    tree.get('a/b')!.files.set('mymap', other('foreign'));
    const cgs = new Map([...all].filter(([r]) => r === '' || r === 'keep'));
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.deepEqual(conflicts, []);
    assert.deepEqual(ofKind(ops, 'mkdir'), []);
    assert.deepEqual(ofKind(ops, 'pin'), []);
    const rmdirs = ofKind(ops, 'rmdir');
    assert.deepEqual(rmdirs.map((o) => o.rel).sort(), ['a', 'a/b', 'a/b/c', 'a/d']);
    for (const r of rmdirs) assert.ok(r.reason.length > 0);
    // deepest first: a child before its parent
    for (const r of rmdirs) {
      const p = parentRel(r.rel)!;
      if (p !== '')
        assert.ok(idx(ops, isOp('rmdir', r.rel)) < idx(ops, isOp('rmdir', p)), `${r.rel} before ${p}`);
    }
    // every file of a removed directory (foreign ones too) goes before its rmdir
    for (const r of rmdirs) {
      const at = idx(ops, isOp('rmdir', r.rel));
      for (const name of tree.get(r.rel)!.files.keys()) {
        const f = idx(ops, isOp('rmfile', r.rel, name));
        assert.ok(f >= 0 && f < at, `${r.rel}/${name} removed before its directory`);
      }
    }
    assert.equal(ofKind(ops, 'rmfile').length, 9);
    assert.ok(ops.every((o) => o.rel !== '' && o.rel !== 'keep'));
  });

  it('never removes the tagged root directory, even when its cgroup is gone', () => {
    const root = tagRoot();
    const all = cgroups(['', 'a']);
    const tree = mirrored(root, all);
    const { ops } = diff(input(root, new Map(), tree));
    assert.equal(idx(ops, isOp('rmdir', '')), -1);
    assert.ok(idx(ops, isOp('rmdir', 'a')) >= 0);
  });

  it('removes symlinks, also where a view must go', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('')!.files.set('shortcut', other('symlink'));
    tree.get('a')!.files.set('info', other('symlink'));
    const { ops } = diff(input(root, cgs, tree));
    assert.ok(idx(ops, isOp('rmfile', '', 'shortcut')) >= 0);
    const rm = idx(ops, isOp('rmfile', 'a', 'info'));
    const pin = idx(ops, isOp('pin', 'a', 'info'));
    assert.ok(rm >= 0 && pin > rm);
    assert.equal(ops.length, 3);
  });

  it('leaves foreign pins and other files alone unless they are in the way', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.set('mymap', other('foreign'));
    tree.get('a')!.files.set('notes', other('other'));
    tree.get('')!.files.set('prog', other('foreign'));
    assert.deepEqual(diff(input(root, cgs, tree)).ops, []);

    tree.get('a')!.files.set('sched_lat', other('foreign'));
    const { ops } = diff(input(root, cgs, tree));
    assert.equal(ops.length, 2);
    assert.ok(isOp('rmfile', 'a', 'sched_lat')(ops[0]!));
    assert.ok(isOp('pin', 'a', 'sched_lat')(ops[1]!));
  });
});

describe('diff: manual mode', () => {
  it('populates user-made directories that match a cgroup and creates none', () => {
    const root = tagRoot('manual');
    const cgs = cgroups(['', 'a', 'a/b', 'c']);
    const tree = new Map([
      ['', emptyDir()],
      ['a', emptyDir(cgs.get('a')!.uid)],
    ]);
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.deepEqual(conflicts, []);
    assert.deepEqual(ofKind(ops, 'mkdir'), []);
    assert.deepEqual(ofKind(ops, 'rmdir'), []);
    assert.deepEqual(
      ofKind(ops, 'pin')
        .map((o) => `${o.rel}/${o.name}`)
        .sort(),
      ['/info', '/sched_lat', 'a/info', 'a/sched_lat'],
    );
    for (const p of ofKind(ops, 'pin')) assert.equal(p.cgroupId, cgs.get(p.rel)!.id);
  });

  it('refuses directories that match no cgroup, with a reason, and their contents', () => {
    const root = tagRoot('manual');
    const cgs = cgroups(['', 'a', 'a/b']);
    const tree = mirrored(root, cgs, ['', 'a']);
    tree.set('bogus', emptyDir(1000));
    tree.set('bogus/sub', emptyDir(1000));
    tree.set('a/zz', emptyDir(1000));
    tree.get('a/zz')!.files.set('sched_lat', other('foreign'));
    const { ops } = diff(input(root, cgs, tree));
    const rmdirs = ofKind(ops, 'rmdir');
    assert.deepEqual(rmdirs.map((o) => o.rel).sort(), ['a/zz', 'bogus', 'bogus/sub']);
    for (const r of rmdirs) assert.match(r.reason, /\S/);
    assert.ok(idx(ops, isOp('rmdir', 'bogus/sub')) < idx(ops, isOp('rmdir', 'bogus')));
    assert.ok(idx(ops, isOp('rmfile', 'a/zz', 'sched_lat')) < idx(ops, isOp('rmdir', 'a/zz')));
    // the matching directories are kept as they are
    assert.ok(ops.every((o) => o.op === 'rmdir' || o.op === 'rmfile'));
    assert.equal(ops.length, 4);
  });

  it('removes a user-made directory whose cgroup is gone', () => {
    const root = tagRoot('manual');
    const all = cgroups(['', 'a']);
    const tree = mirrored(root, all);
    const { ops } = diff(input(root, cgroups(['']), tree));
    assert.ok(idx(ops, isOp('rmdir', 'a')) >= 0);
    assert.equal(idx(ops, isOp('rmdir', '')), -1);
  });
});

describe('diff: conflicts with view file names', () => {
  it('a cgroup named like an inherited view is not mirrored, nor its subtree', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'sched_lat', 'sched_lat/sub', 'ok', 'ok/info']);
    const tree = mirrored(root, cgs, ['']);
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.ok(conflicts.includes('sched_lat'), `conflicts: ${conflicts}`);
    assert.ok(conflicts.includes('ok/info'), `conflicts: ${conflicts}`);
    assert.ok(!conflicts.includes('ok'));
    for (const o of ops) {
      assert.ok(!isWithin('sched_lat', o.rel), `op on ${o.rel}`);
      assert.ok(!isWithin('ok/info', o.rel), `op on ${o.rel}`);
    }
    assert.ok(idx(ops, isOp('mkdir', 'ok')) >= 0);
    // the parent's view files stay
    assert.equal(
      idx(ops, (o) => o.op === 'rmfile'),
      -1,
    );
    const { dirs } = desiredDirs(input(root, cgs, tree));
    assert.deepEqual([...dirs].sort(), ['', 'ok']);
  });

  it('a local pin of the parent conflicts too, only in that directory', () => {
    const root = tagRoot('auto', { a: [EXTRA] });
    const cgs = cgroups(['', 'a', 'a/extra', 'extra', 'a/b', 'a/b/extra']);
    const { ops, conflicts } = diff(input(root, cgs, new Map([['', emptyDir()]])));
    assert.deepEqual(conflicts, ['a/extra']);
    assert.equal(idx(ops, isOp('mkdir', 'a/extra')), -1);
    for (const r of ['a', 'extra', 'a/b', 'a/b/extra']) assert.ok(idx(ops, isOp('mkdir', r)) >= 0, r);
  });

  it('a directory standing where a view file must go is removed before the pin', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'info', 'info/x']);
    // mirrored before `info` was on the inherit list
    const old: TagRoot = { ...root, inherit: [SCHED] };
    const tree = mirrored(old, cgs);
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.ok(conflicts.includes('info'));
    const rmdirInfo = idx(ops, isOp('rmdir', 'info'));
    assert.ok(idx(ops, isOp('rmdir', 'info/x')) >= 0);
    assert.ok(idx(ops, isOp('rmdir', 'info/x')) < rmdirInfo);
    assert.ok(idx(ops, isOp('rmfile', 'info', 'sched_lat')) < rmdirInfo);
    const pin = idx(ops, isOp('pin', '', 'info'));
    assert.ok(rmdirInfo >= 0 && pin > rmdirInfo);
    for (const o of ofKind(ops, 'rmdir')) assert.match(o.reason, /\S/);
  });

  it('a manual-mode directory named like a view file is refused', () => {
    const root = tagRoot('manual');
    const cgs = cgroups(['', 'sched_lat']);
    const tree = mirrored(root, cgs, ['']);
    tree.set('sched_lat', emptyDir(1000));
    // the root cannot hold both: the directory came first, the view wins
    tree.get('')!.files.delete('sched_lat');
    const { ops, conflicts } = diff(input(root, cgs, tree));
    assert.ok(conflicts.includes('sched_lat'));
    const rm = idx(ops, isOp('rmdir', 'sched_lat'));
    assert.ok(rm >= 0 && idx(ops, isOp('pin', '', 'sched_lat')) > rm);
  });
});

describe('diff: scoped', () => {
  const root = tagRoot();
  const cgs = cgroups(['', 'a', 'a/b', 'a/b/x', 'a/b/x/y', 'a/bb', 'c']);

  it("scope 'a/b' touches nothing outside, even when given the whole tree", () => {
    // everything outside the scope is wrong: it must stay untouched
    const tree = mirrored(root, cgs, ['', 'a', 'a/b']);
    tree.get('')!.files.clear();
    tree.get('a')!.files.get('info')!.mode = 0o600;
    tree.set('stale', emptyDir());
    tree.get('a/b')!.files.get('info')!.cgroupId = 1n;
    const { ops } = diff(input(root, cgs, tree, 'a/b'));
    for (const o of ops) assert.ok(isWithin('a/b', o.rel), `${o.op} ${o.rel} is outside the scope`);
    assert.ok(idx(ops, isOp('mkdir', 'a/b/x')) >= 0);
    assert.ok(idx(ops, isOp('mkdir', 'a/b/x/y')) >= 0);
    assert.ok(idx(ops, isOp('rmfile', 'a/b', 'info')) >= 0);
    assert.ok(idx(ops, isOp('pin', 'a/b', 'info')) >= 0);
  });

  it('creates the scope directory itself when it is missing', () => {
    const sub = new Map([...cgs].filter(([r]) => isWithin('a/b', r)));
    const { ops } = diff(input(root, sub, new Map(), 'a/b'));
    assert.deepEqual(
      ofKind(ops, 'mkdir').map((o) => o.rel),
      ['a/b', 'a/b/x', 'a/b/x/y'],
    );
    assert.equal(ofKind(ops, 'pin').length, 6);
    for (const o of ops) assert.ok(isWithin('a/b', o.rel));
  });

  it('removes the scope directory when its cgroup is gone', () => {
    const tree = mirrored(root, new Map([...cgs].filter(([r]) => isWithin('a/b', r))));
    const { ops } = diff(input(root, new Map(), tree, 'a/b'));
    assert.deepEqual(
      ofKind(ops, 'rmdir').map((o) => o.rel),
      ['a/b/x/y', 'a/b/x', 'a/b'],
    );
    for (const o of ops) assert.ok(isWithin('a/b', o.rel));
  });

  it('a scope named like a view file of its parent is a conflict', () => {
    const c2 = cgroups(['', 'a', 'a/info']);
    const { ops, conflicts } = diff(
      input(root, new Map([['a/info', c2.get('a/info')!]]), new Map(), 'a/info'),
    );
    assert.deepEqual(conflicts, ['a/info']);
    assert.deepEqual(ops, []);
  });
});

describe('opPath', () => {
  it('names the absolute tree path of an op', () => {
    const root = tagRoot();
    assert.equal(opPath(root, { op: 'mkdir', rel: 'a/b', uid: 0, gid: 0 }), '/sys/fs/bpf/cgview/a/b');
    assert.equal(opPath(root, { op: 'rmdir', rel: '', reason: 'x' }), '/sys/fs/bpf/cgview');
    assert.equal(
      opPath(root, { op: 'rmfile', rel: 'a', name: 'info', reason: 'x' }),
      '/sys/fs/bpf/cgview/a/info',
    );
    assert.equal(opPath(root, { op: 'chown', rel: 'a', name: null, uid: 1, gid: 1 }), '/sys/fs/bpf/cgview/a');
    assert.equal(
      opPath(root, { op: 'chmod', rel: '', name: 'info', mode: 0o444 }),
      '/sys/fs/bpf/cgview/info',
    );
  });
});

describe('diff: names (a pin or unpin of an inherited view over a mirrored tree)', () => {
  const NEW: ViewPin = { view: 'info', name: 'new', fileMode: 0o440 };
  const names = new Set(['new']);
  const withNew = (): TagRoot => ({ ...tagRoot(), inherit: [SCHED, INFO, NEW] });

  it('pins the new view in every directory there is, and does nothing else', () => {
    const root = withNew();
    const cgs = cgroups(['', 'a', 'a/b', 'd']);
    // The tree as it was before the pin, with drift the names scope must leave alone:
    // a stale owner on 'a', a symlink in 'd', no directory for 'a/b' yet.
    const tree = mirrored(tagRoot(), cgs, ['', 'a', 'd']);
    tree.get('a')!.uid = 4242;
    tree.get('d')!.files.set('junk', other('symlink'));
    const { ops, dirs, conflicts } = diff({ ...input(root, cgs, tree), names });
    assert.deepEqual(conflicts, []);
    assert.deepEqual([...dirs].sort(), ['', 'a', 'd']);
    assert.deepEqual(
      ops.map((o) => `${o.op} ${o.rel}`).sort(),
      ['pin ', 'pin a', 'pin d'],
      'one pin per directory there is, nothing for other names or the directories themselves',
    );
    for (const o of ofKind(ops, 'pin')) {
      assert.equal(o.name, 'new');
      assert.equal(o.cgroupId, cgs.get(o.rel)!.id);
      assert.equal(o.uid, cgs.get(o.rel)!.uid);
    }
  });

  it('keeps a right pin, replaces a wrong one, and leaves a directory whose cgroup went to its own event', () => {
    const root = withNew();
    const cgs = cgroups(['', 'a', 'gone']);
    const tree = mirrored(root, cgs);
    tree.get('a')!.files.set('new', view(cgs.get('')!, NEW)); // a link for another cgroup
    const live = new Map([...cgs].filter(([r]) => r !== 'gone'));
    const { ops } = diff({ ...input(root, live, tree), names });
    assert.deepEqual(
      ops.map((o) => `${o.op} ${o.rel}`),
      ['rmfile a', 'pin a'],
    );
  });

  it('after an unpin, removes only that view file', () => {
    const root = tagRoot();
    const cgs = cgroups(['', 'a']);
    const tree = mirrored(withNew(), cgs);
    tree.get('a')!.files.set('junk', other('symlink'));
    const { ops } = diff({ ...input(root, cgs, tree), names });
    assert.deepEqual(ops.map((o) => `${o.op} ${o.rel} ${'name' in o ? o.name : ''}`).sort(), [
      'rmfile  new',
      'rmfile a new',
    ]);
  });
});
