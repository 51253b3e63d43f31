/**
 * A replacement of a collector that fails partway (a program that does not
 * attach) keeps the counters it was carrying: the carried maps stay pinned,
 * everything the failed start made goes, and the next start carries them
 * over. Before, the clean-up unlinked every pin, the carried maps with
 * them, and the old links were already gone: the counters were lost.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/daemon/log.js';
import { type Fd, mapInfo, objGetAt, openDir } from '../../src/kernel/index.js';
import { Collectors } from '../../src/views/collectors.js';
import { BPF_BUILD, onCleanup, tmpBpffsDir } from '../helpers.js';

const INSTANCE = 'sched_lat@0';
const SHARED = ['sl_cg_v1', 'sl_cgrp'];

function logger(): { log: Logger; msgs: string[] } {
  const msgs: string[] = [];
  return { log: (_level, msg) => msgs.push(msg), msgs };
}

/** An earlier version's collector (other code, same maps) left pinned in `privateDir`. */
function pinOld(privateDir: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-old-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(
    path.join(BPF_BUILD, 'test_sl_old_code.bpf.o'),
    path.join(dir, 'sched_lat_collector.bpf.o'),
  );
  const c = new Collectors(privateDir, dir, logger().log);
  c.acquire(INSTANCE);
  c.close(); // leaves the pins
}

/** Names pinned in the instance directory, and the ids of the shared maps there. */
function pinnedNow(privateDir: string): { names: string[]; mapIds: Record<string, number> } {
  const d = path.join(privateDir, INSTANCE);
  const names = fs.readdirSync(d).sort();
  const dir = openDir(d);
  try {
    const mapIds: Record<string, number> = {};
    for (const m of SHARED) {
      const fd = objGetAt(dir, m);
      if (!fd) continue;
      mapIds[m] = mapInfo(fd).id;
      fd.close();
    }
    return { names, mapIds };
  } finally {
    dir.close();
  }
}

describe('a collector replacement that fails partway', () => {
  it('keeps the carried counter maps pinned; the next start carries them over', () => {
    const privateDir = path.join(tmpBpffsDir(), 'private');
    pinOld(privateDir);
    const old = pinnedNow(privateDir);
    assert.deepEqual(Object.keys(old.mapIds).sort(), SHARED, 'the old collector pinned its maps');

    // This version's start fails at its fourth program, after three are attached.
    const failing = logger();
    const bad = new Collectors(privateDir, BPF_BUILD, failing.log, {
      beforeAttach: (p) => {
        if (p === 'sl_wakeup') throw new Error('injected attach failure');
      },
    });
    try {
      assert.throws(() => bad.acquire(INSTANCE), /injected attach failure/);
      assert.equal(bad.running(INSTANCE), false);
    } finally {
      bad.close();
    }
    const after = pinnedNow(privateDir);
    assert.deepEqual(after.mapIds, old.mapIds, 'the counter maps are still pinned, the same maps');
    // No link pin: the old ones went before the start, the failed start's own went with it (detached).
    assert.deepEqual(after.names, SHARED, 'nothing else of the failed start (nor of the old one) is left');

    // The next (good) start carries them.
    const good = logger();
    const c = new Collectors(privateDir, BPF_BUILD, good.log);
    let maps: Record<string, Fd>;
    try {
      maps = c.acquire(INSTANCE);
      assert.deepEqual(
        Object.fromEntries(SHARED.map((m) => [m, mapInfo(maps[m]!).id])),
        old.mapIds,
        'the views read the carried maps',
      );
      const st = c.status()[INSTANCE] as { start: string; carried: string[]; reasons: string[] };
      assert.equal(st.start, 'replaced', JSON.stringify(st));
      assert.deepEqual([...st.carried].sort(), SHARED);
      assert.ok(st.reasons.length > 0, 'why it was not adopted');
      const now = pinnedNow(privateDir);
      assert.deepEqual(now.mapIds, old.mapIds);
      assert.equal(now.names.filter((n) => n.startsWith('link_')).length, 5, 'every program attached');
    } finally {
      c.stop(INSTANCE);
      c.close();
    }
  });
});
