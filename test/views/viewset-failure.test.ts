/**
 * A view whose object fails to load leaves nothing (issue 8.3): the
 * ViewSet closes what it loaded and gives back a collector it acquired for
 * it (release: stopped if this daemon started it, let go if adopted). The
 * collector host here is a fake that hands out a map of the wrong kind, so
 * that the sched_lat view cannot load with it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BpfObject, type Fd } from '../../src/kernel/index.js';
import type { CollectorHost } from '../../src/views/registry.js';
import { ViewSet } from '../../src/views/registry.js';
import { BPF_BUILD, checkFdLeaks } from '../helpers.js';

checkFdLeaks();

class FakeHost implements CollectorHost {
  readonly calls: string[] = [];
  #running = false;
  constructor(readonly maps: Record<string, { readonly fd: number }>) {}
  acquire(name: string): Record<string, Fd> {
    this.calls.push(`acquire ${name}`);
    this.#running = true;
    return this.maps as unknown as Record<string, Fd>;
  }
  running(): boolean {
    return this.#running;
  }
  release(name: string): void {
    this.calls.push(`release ${name}`);
    this.#running = false;
  }
}

describe('ViewSet: a view that fails to load', () => {
  it('releases the collector it acquired for it, and keeps nothing', () => {
    // A hash map where the view expects cgroup storage: libbpf or the kernel refuses it.
    const other = BpfObject.load(path.join(BPF_BUILD, 'test_fixture.bpf.o'), {
      programs: ['fixture_magic_view'],
    });
    try {
      const host = new FakeHost({ sl_cgrp: other.map('fixture_hash'), sl_cg_v1: other.map('fixture_hash') });
      const views = new ViewSet(host);
      assert.throws(() => views.get('sched_lat'));
      assert.deepEqual(host.calls, ['acquire sched_lat@0', 'release sched_lat@0']);
      assert.equal(views.identityOf('sched_lat'), undefined, 'nothing loaded is kept');
      views.close();
    } finally {
      other.close();
    }
  });
});
