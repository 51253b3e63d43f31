/**
 * The kit's pure parts: describing an object from its ELF and BTF (against
 * the objects `make -C bpf` built), damaged objects, clang's dependency
 * files, view names, the skeleton, map pin names, the cache's place.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { badViewName, viewSource } from '../../src/cli/new-view.js';
import { isCgviewError } from '../../src/errors.js';
import {
  buildCacheDir,
  defaultObjectPath,
  describeObject,
  isSourceSpec,
  parseDepFile,
  targetArch,
  vmlinuxHeaderDir,
} from '../../src/views/build.js';
import { mapPinName } from '../../src/views/user-collectors.js';
import { BPF_BUILD, onCleanup, RUN_PREFIX } from '../helpers.js';

describe('describeObject', () => {
  it('names programs with their sections, views apart from collector programs', () => {
    const d = describeObject(fs.readFileSync(path.join(BPF_BUILD, 'test_mixed.bpf.o')));
    assert.deepEqual(d.programs.map((p) => [p.name, p.section, p.kind]).sort(), [
      ['mixed_bad', 'iter/cgroup', 'view'],
      ['mixed_good', 'iter/cgroup', 'view'],
      ['mixed_switch', 'tp_btf/sched_switch', 'collector'],
    ]);
    assert.deepEqual(
      d.maps.find((m) => m.name === 'mixed_arr'),
      { name: 'mixed_arr', internal: false, type: 'array', maxEntries: 1 },
    );
  });

  it('reads map types and const volatile globals from the BTF', () => {
    const d = describeObject(fs.readFileSync(path.join(BPF_BUILD, 'sched_lat_collector.bpf.o')));
    assert.ok(d.rodata.includes('v1_hierarchy_id'), d.rodata.join(' '));
    const types = Object.fromEntries(d.maps.map((m) => [m.name, m.type ?? (m.internal ? 'internal' : '?')]));
    assert.equal(types['sl_task'], 'task_storage');
    assert.equal(types['sl_cpu'], 'array');
    assert.ok(d.programs.every((p) => p.kind === 'collector'));
    assert.ok(d.programs.some((p) => p.name === 'sl_switch' && p.section === 'tp_btf/sched_switch'));
  });

  it('refuses what is not a BPF object, and a damaged one, with E_LOAD (never another error)', () => {
    const good = fs.readFileSync(path.join(BPF_BUILD, 'test_mixed.bpf.o'));
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from('#!/bin/sh\n'),
      fs.readFileSync(process.execPath).subarray(0, 4096),
    ])
      assert.throws(
        () => describeObject(bad),
        (e) => isCgviewError(e, 'E_LOAD'),
      );
    // Cut short anywhere, or with bytes changed anywhere: described or refused, nothing else.
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(good);
      const cut = i % 2 === 0 ? b.subarray(0, rnd(b.length)) : b;
      if (i % 2 === 1) for (let k = 0; k < 8; k++) b[rnd(b.length)] = rnd(256);
      try {
        describeObject(cut);
      } catch (e) {
        assert.ok(isCgviewError(e, 'E_LOAD'), `case ${i}: ${String(e)}`);
      }
    }
  });
});

describe('build helpers', () => {
  it('parseDepFile: continuation lines and escaped spaces', () => {
    assert.deepEqual(parseDepFile('/t/x.o: /s/x.bpf.c /s/a\\ b.h \\\n  /usr/include/bpf/bpf_helpers.h\n'), [
      '/s/x.bpf.c',
      '/s/a b.h',
      '/usr/include/bpf/bpf_helpers.h',
    ]);
    assert.deepEqual(parseDepFile(''), []);
  });

  it('view names: C identifiers, bpffs-safe, not keywords or built-ins', () => {
    for (const ok of ['my_view', 'ctxsw', '_x', 'V2']) assert.equal(badViewName(ok), null, ok);
    for (const bad of [
      '',
      '1x',
      'a.b',
      'a-b',
      'a/b',
      'int',
      'struct',
      'info',
      'sched_lat',
      '__x',
      'bpf_x',
      'x'.repeat(49),
      'é',
    ])
      assert.ok(badViewName(bad), JSON.stringify(bad));
  });

  it('the skeleton names its program NAME, and its collector only with --with-collector', () => {
    const plain = viewSource('abc', false);
    assert.match(plain, /SEC\("iter\/cgroup"\)\nint abc\(struct bpf_iter__cgroup \*ctx\)/);
    assert.doesNotMatch(plain, /tp_btf/);
    const col = viewSource('abc', true);
    assert.match(col, /SEC\("tp_btf\/sched_switch"\)\nint BPF_PROG\(abc_switch,/);
    assert.match(col, /SEC\("tp_btf\/cgroup_rmdir"\)\nint BPF_PROG\(abc_rmdir,/);
    assert.match(col, /cgv_print_counter\(seq, "switches", /);
    assert.match(col, /#include <cgview\/cgview.h>/);
  });

  it('paths and names', () => {
    assert.equal(defaultObjectPath('/a/x.bpf.c'), '/a/x.bpf.o');
    assert.equal(defaultObjectPath('/a/x'), '/a/x.o');
    assert.ok(isSourceSpec('./x.bpf.c:prog'));
    assert.ok(!isSourceSpec('./x.bpf.o:prog'));
    assert.ok(!isSourceSpec('sched_lat'));
    assert.equal(mapPinName('0123abcd.rodata'), 'map_0123abcd%2Erodata');
    assert.equal(mapPinName('a%b'), 'map_a%25b');
    assert.equal(targetArch('x64'), 'x86');
    assert.equal(targetArch('arm64'), 'arm64');
    assert.throws(
      () => targetArch('vax'),
      (e) => isCgviewError(e, 'E_NOT_SUPPORTED'),
    );
    assert.equal(buildCacheDir({ CGVIEW_CACHE_DIR: '/x/c' }), '/x/c');
    if (process.geteuid?.() === 0) assert.equal(buildCacheDir({}), '/var/cache/cgview');
  });

  it('a build cache someone else can write is refused, and so is a header planted in it', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
    onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const open = path.join(tmp, 'open');
    fs.mkdirSync(open, { mode: 0o777 });
    fs.chmodSync(open, 0o777);
    assert.throws(
      () => vmlinuxHeaderDir({ cacheDir: open }),
      (e) => isCgviewError(e, 'E_PERMISSION'),
    );
    // A vmlinux.h others could have written: refused, never compiled in.
    const mine = path.join(tmp, 'mine');
    const dir = vmlinuxHeaderDir({ cacheDir: mine });
    const header = path.join(dir, 'vmlinux.h');
    assert.ok(fs.statSync(header).size > 1 << 20);
    fs.chmodSync(header, 0o666);
    assert.throws(
      () => vmlinuxHeaderDir({ cacheDir: mine }),
      (e) => isCgviewError(e, 'E_PERMISSION'),
    );
    fs.chmodSync(header, 0o644);
    assert.equal(vmlinuxHeaderDir({ cacheDir: mine }), dir);
  });
});
