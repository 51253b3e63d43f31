/** src/kernel on the real kernel, as root: objects, iter links, pins, info, maps. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import {
  BpfObject,
  enableRunTimeStats,
  linkInfo,
  objGetAt,
  openDir,
  openDirAt,
  progInfo,
  requireBpffs,
  unlinkAt,
} from '../../src/kernel/index.js';
import {
  BPF_BUILD,
  CGROUP_V1_CPU,
  checkFdLeaks,
  inode,
  onCleanup,
  tmpBpffsDir,
  tmpCgroup,
  uniq,
} from '../helpers.js';

checkFdLeaks();

let info: BpfObject;
before(() => {
  info = BpfObject.load(path.join(BPF_BUILD, 'info.bpf.o'));
});
after(() => info?.close());

function parse(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
  );
}

describe('iter/cgroup links', () => {
  it('pins a v2 link by id and a v1 link by fd; each file prints its cgroup id', () => {
    const v2 = tmpCgroup();
    const v1 = tmpCgroup(CGROUP_V1_CPU);
    const tree = tmpBpffsDir();
    const dir = openDir(tree);
    const v1fd = openDir(v1);
    try {
      const l2 = info.program('info').cgroupIter({ id: inode(v2) });
      l2.pinAt(dir, 'v2');
      l2.close();
      const l1 = info.program('info').cgroupIter({ fd: v1fd });
      l1.pinAt(dir, 'v1');
      l1.close();
    } finally {
      v1fd.close();
      dir.close();
    }
    const out2 = parse(fs.readFileSync(path.join(tree, 'v2'), 'utf8'));
    const out1 = parse(fs.readFileSync(path.join(tree, 'v1'), 'utf8'));
    assert.equal(out2['cgroup_id'], String(inode(v2)));
    assert.equal(out2['name'], path.basename(v2));
    assert.equal(out2['level'], '1');
    assert.equal(out1['cgroup_id'], String(inode(v1)));
    assert.equal(out1['name'], path.basename(v1));
  });

  it('reads nothing, without failing, once the cgroup is removed', () => {
    const cg = tmpCgroup();
    const tree = tmpBpffsDir();
    const dir = openDir(tree);
    try {
      const l = info.program('info').cgroupIter({ id: inode(cg) });
      l.pinAt(dir, 'info');
      assert.match(l.read().toString(), /^cgroup_id: /);
      l.close();
    } finally {
      dir.close();
    }
    assert.notEqual(fs.readFileSync(path.join(tree, 'info'), 'utf8'), '');
    fs.rmdirSync(cg);
    assert.equal(fs.readFileSync(path.join(tree, 'info'), 'utf8'), '');
  });

  it('link info returns the cgroup id the link was created with', () => {
    const cg = tmpCgroup();
    const l = info.program('info').cgroupIter({ id: inode(cg) });
    try {
      const li = linkInfo(l.fd);
      assert.equal(li.targetName, 'cgroup');
      assert.equal(li.cgroupId, inode(cg));
      assert.equal(li.order, 1);
      assert.equal(li.progId, progInfo(info.program('info').fd).id);
    } finally {
      l.close();
    }
  });

  it('a link for a cgroup id that does not exist is E_NOT_FOUND', () => {
    assert.throws(
      () => info.program('info').cgroupIter({ id: 0xfffffffffffn }),
      (e) => isCgviewError(e, 'E_NOT_FOUND'),
    );
  });

  it('reads back a pinned link with objGetAt and drops it with unlinkAt', () => {
    const cg = tmpCgroup();
    const tree = tmpBpffsDir();
    const dir = openDir(tree);
    try {
      const l = info.program('info').cgroupIter({ id: inode(cg) });
      l.pinAt(dir, 'x');
      l.close();
      const got = objGetAt(dir, 'x');
      assert.ok(got);
      assert.equal(linkInfo(got).cgroupId, inode(cg));
      got.close();
      assert.equal(objGetAt(dir, 'nothing-here'), null);
      assert.equal(unlinkAt(dir, 'x'), true);
      assert.equal(unlinkAt(dir, 'x'), false, 'unpinning what is gone is not an error');
    } finally {
      dir.close();
    }
  });
});

describe('pinning is checked', () => {
  it('pinning onto an existing path is E_EXISTS', () => {
    const cg = tmpCgroup();
    const tree = tmpBpffsDir();
    const dir = openDir(tree);
    const l = info.program('info').cgroupIter({ id: inode(cg) });
    try {
      l.pinAt(dir, 'a');
      assert.throws(
        () => l.pinAt(dir, 'a'),
        (e) => isCgviewError(e, 'E_EXISTS') && /pin a: /.test(e.message),
      );
    } finally {
      l.close();
      dir.close();
    }
  });

  it('a directory that is not bpffs is refused with E_NOT_BPFFS', () => {
    const d = fs.mkdtempSync('/tmp/cgvt-');
    onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
    const dir = openDir(d);
    try {
      assert.throws(
        () => requireBpffs(dir, d),
        (e) => isCgviewError(e, 'E_NOT_BPFFS'),
      );
    } finally {
      dir.close();
    }
    const cg = tmpCgroup();
    const l = info.program('info').cgroupIter({ id: inode(cg) });
    const dir2 = openDir(d);
    try {
      // The kernel refuses too: a pin outside bpffs cannot be made.
      assert.throws(() => l.pinAt(dir2, 'x'));
    } finally {
      dir2.close();
      l.close();
    }
  });

  it('a symlink in the path is refused with E_SYMLINK', () => {
    const tree = tmpBpffsDir();
    fs.mkdirSync(path.join(tree, 'real'));
    const link = path.join('/tmp', uniq('cgvt-link'));
    fs.symlinkSync(path.join(tree, 'real'), link);
    onCleanup(() => fs.rmSync(link, { force: true }));
    assert.throws(
      () => openDir(link),
      (e) => isCgviewError(e, 'E_SYMLINK'),
    );
    assert.throws(
      () => openDir(path.join(link, '.')),
      (e) => isCgviewError(e, 'E_SYMLINK'),
    );
    const dir = openDir(tree);
    try {
      // Inside a tree, escaping with .. is refused too.
      assert.throws(() => openDirAt(dir, '../..'));
      const real = openDirAt(dir, 'real');
      real.close();
    } finally {
      dir.close();
    }
  });
});

describe('BPF objects', () => {
  it('a program the verifier rejects gives E_VERIFIER with the log', () => {
    assert.throws(
      () => BpfObject.load(path.join(BPF_BUILD, 'test_bad.bpf.o')),
      (e) => {
        assert.ok(isCgviewError(e, 'E_VERIFIER'), String(e));
        assert.ok(e.log && e.log.split('\n').length > 3, 'whole log kept');
        assert.match(e.message, /verifier rejected/);
        assert.ok(e.message.split('\n').length > 2, 'message shows the last lines');
        return true;
      },
    );
  });

  it('a missing object file is E_LOAD', () => {
    assert.throws(
      () => BpfObject.load('/nonexistent.bpf.o'),
      (e) => isCgviewError(e, 'E_LOAD'),
    );
  });

  it('sets const volatile globals, attaches tp_btf, and reads and writes maps', async () => {
    const magic = Buffer.alloc(8);
    magic.writeBigUInt64LE(4242n);
    const obj = BpfObject.load(path.join(BPF_BUILD, 'test_fixture.bpf.o'), {
      rodata: { fixture_magic: magic },
    });
    try {
      const cg = tmpCgroup();
      const l = obj.program('fixture_magic_view').cgroupIter({ id: inode(cg) });
      assert.equal(l.read().toString(), 'magic: 4242\n');
      l.close();
      const m = obj.map('fixture_hash');
      assert.equal(m.info().keySize, 4);
      const stats = enableRunTimeStats();
      const link = obj.program('fixture_switch').attach();
      await new Promise((r) => setTimeout(r, 50));
      const k0 = Buffer.alloc(4);
      const v = m.lookup(k0);
      assert.ok(v && v.readBigUInt64LE() > 0n, 'sched_switch ran');
      assert.ok(progInfo(obj.program('fixture_switch').fd).runCnt > 0n);
      link.close();
      stats.close();
      for (let i = 1; i <= 10; i++) {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(i);
        const val = Buffer.alloc(8);
        val.writeBigUInt64LE(BigInt(i * 100));
        m.update(k, val);
      }
      assert.equal(m.keys().length, 11);
      const entries = m.entries();
      assert.equal(entries.length, 11);
      const five = entries.find(([k]) => k.readUInt32LE() === 5);
      assert.equal(five?.[1].readBigUInt64LE(), 500n);
      const k5 = Buffer.alloc(4);
      k5.writeUInt32LE(5);
      assert.equal(m.delete(k5), true);
      assert.equal(m.delete(k5), false);
      assert.equal(m.lookup(k5), null);
    } finally {
      obj.close();
    }
  });

  it('reuses a pinned map in a second object', () => {
    const tree = tmpBpffsDir();
    const dir = openDir(tree);
    const a = BpfObject.load(path.join(BPF_BUILD, 'test_fixture.bpf.o'));
    try {
      a.map('fixture_hash').pinAt(dir, 'hash');
      const k = Buffer.alloc(4);
      k.writeUInt32LE(77);
      a.map('fixture_hash').update(k, Buffer.alloc(8, 1));
      const pinned = objGetAt(dir, 'hash');
      assert.ok(pinned);
      const b = BpfObject.load(path.join(BPF_BUILD, 'test_fixture.bpf.o'), {
        reuseMaps: { fixture_hash: pinned },
      });
      pinned.close();
      try {
        assert.deepEqual(b.map('fixture_hash').lookup(k), Buffer.alloc(8, 1));
        assert.equal(b.map('fixture_hash').info().id, a.map('fixture_hash').info().id);
      } finally {
        b.close();
      }
    } finally {
      a.close();
      dir.close();
    }
  });

  it('reads an iterator fd directly', () => {
    const cg = tmpCgroup();
    const l = info.program('info').cgroupIter({ id: inode(cg) });
    try {
      const text = l.read().toString();
      assert.match(text, new RegExp(`cgroup_id: ${inode(cg)}\n`));
    } finally {
      l.close();
    }
  });
});
