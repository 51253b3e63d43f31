/**
 * Upgrades (issue 7.5): a collector an earlier version left pinned is
 * adopted only if its programs (tags) and maps (type, sizes, flags, value
 * layout) are the ones this version loads. Otherwise it is replaced; its
 * counters are carried over when their maps' layout is the same, and start
 * afresh when it is not (a same-size layout change included). The "earlier
 * versions" are the collector built with other code (test_sl_old_code) or
 * with two counters swapped (test_sl_old_layout), pinned by the same loader.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeLogger } from '../../src/daemon/log.js';
import {
  BpfObject,
  linkInfo,
  mapInfo,
  objGetAt,
  openDir,
  progFdById,
  progInfo,
} from '../../src/kernel/index.js';
import { Collectors } from '../../src/views/collectors.js';
import { parseSchedLat } from '../../src/views/parse.js';
import { Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, inode, onCleanup, sleep } from '../helpers.js';

const INSTANCE = 'sched_lat@0';
const PROGS = ['sl_switch', 'sl_migrate', 'sl_rmdir', 'sl_wakeup', 'sl_wakeup_new'];

/** A few sleepers in `cg`, so that it has waits. */
function sleepers(cg: string): void {
  const script =
    'echo $$ > "$1/cgroup.procs" || exit 1\n' +
    'for i in 1 2 3 4 5 6; do\n' +
    "  perl -e 'select(undef, undef, undef, 0.01) while 1' </dev/null >/dev/null 2>&1 &\n" +
    '  echo $!\n' +
    'done\n';
  const out = execFileSync('sh', ['-c', script, 'sh', cg], { encoding: 'latin1' });
  // Registered after the cgroup, so run before its removal (cleanups go newest first).
  const pids = out.trim().split('\n').map(Number);
  onCleanup(() => {
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

/** An earlier version's collector pinned in `privateDir`, as its daemon would have left it. */
function pinOld(privateDir: string, object: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-old-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(path.join(BPF_BUILD, object), path.join(dir, 'sched_lat_collector.bpf.o'));
  const c = new Collectors(privateDir, dir, makeLogger('error'));
  c.acquire(INSTANCE);
  c.close(); // leaves the pins
}

/** What the pinned collector runs: each link's program tag, and the id of its sl_cgrp map. */
function pinned(privateDir: string): { tags: Record<string, string>; cgrpMapId: number } {
  const dir = openDir(path.join(privateDir, INSTANCE));
  try {
    const tags: Record<string, string> = {};
    for (const p of PROGS) {
      const l = objGetAt(dir, `link_${p}`)!;
      const pf = progFdById(linkInfo(l).progId);
      tags[p] = progInfo(pf).tag;
      pf.close();
      l.close();
    }
    const m = objGetAt(dir, 'sl_cgrp')!;
    try {
      return { tags, cgrpMapId: mapInfo(m).id };
    } finally {
      m.close();
    }
  } finally {
    dir.close();
  }
}

/** Tags of this version's programs (loaded, not attached). */
function currentTags(): Record<string, string> {
  const o = BpfObject.load(path.join(BPF_BUILD, 'sched_lat_collector.bpf.o'));
  try {
    return Object.fromEntries(PROGS.map((p) => [p, o.program(p).info().tag]));
  } finally {
    o.close();
  }
}

/** wait_count of a cgroup as the pinned collector has it (sched_lat read with its maps). */
function pinnedWaitCount(privateDir: string, cg: string): bigint {
  const dir = openDir(path.join(privateDir, INSTANCE));
  const cgrp = objGetAt(dir, 'sl_cgrp')!;
  const v1 = objGetAt(dir, 'sl_cg_v1')!;
  dir.close();
  try {
    const view = BpfObject.load(path.join(BPF_BUILD, 'sched_lat.bpf.o'), {
      programs: ['sched_lat'],
      reuseMaps: { sl_cgrp: cgrp, sl_cg_v1: v1 },
    });
    try {
      const l = view.program('sched_lat').cgroupIter({ id: inode(cg) });
      try {
        return parseSchedLat(l.read().toString('latin1'))!.waitCount;
      } finally {
        l.close();
      }
    } finally {
      view.close();
    }
  } finally {
    cgrp.close();
    v1.close();
  }
}

interface CollectorStatus {
  adopted: boolean;
  start: string;
  reasons?: string[];
  carried?: string[];
}

async function collectorStatus(d: Daemon): Promise<CollectorStatus> {
  return ((await d.status()) as unknown as { collectors: Record<string, CollectorStatus> }).collectors[
    INSTANCE
  ]!;
}

describe('collector upgrades', { concurrency: false }, () => {
  for (const [variant, carried] of [
    ['test_sl_old_code.bpf.o', true],
    ['test_sl_old_layout.bpf.o', false],
  ] as const)
    it(`${variant}: replaced, counters ${carried ? 'carried over' : 'started afresh'}; then adopted`, async () => {
      const env = daemonEnv();
      const cg = path.join(env.cgroupRoot, 'busy');
      fs.mkdirSync(cg);
      // A tree with sched_lat, as the earlier version's daemon left it...
      let d = await Daemon.start(env);
      await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
      await d.stop();
      // ... with that version's collector.
      new Collectors(env.privateDir, BPF_BUILD, makeLogger('error')).stop(INSTANCE);
      pinOld(env.privateDir, variant);
      sleepers(cg);
      await sleep(500);
      const old = pinned(env.privateDir);
      const oldCount = pinnedWaitCount(env.privateDir, cg);
      assert.ok(oldCount > 0n, 'the old collector counted');
      assert.notDeepEqual(old.tags, currentTags(), 'the old version runs other programs');

      d = await Daemon.start(env);
      const st = await collectorStatus(d);
      assert.equal(st.start, 'replaced', JSON.stringify(st));
      assert.equal(st.adopted, false);
      assert.ok(st.reasons && st.reasons.length > 0, 'the reasons are in status');
      const now = pinned(env.privateDir);
      assert.deepEqual(now.tags, currentTags(), "this version's programs run now");
      const count = parseSchedLat(
        fs.readFileSync(path.join(env.bpffs, 'busy', 'sched_lat'), 'latin1'),
      )!.waitCount;
      const logged = d
        .logs()
        .find((l) => l['msg'] === 'collector replaced: the pinned one is not what this version loads');
      assert.ok(logged, 'the replacement is logged');
      if (carried) {
        assert.deepEqual([...(st.carried ?? [])].sort(), ['sl_cg_v1', 'sl_cgrp']);
        assert.equal(now.cgrpMapId, old.cgrpMapId, 'the counters map is the old one');
        assert.ok(count >= oldCount, `wait_count ${count} carried over from ${oldCount}`);
      } else {
        assert.deepEqual(st.carried, []);
        assert.notEqual(now.cgrpMapId, old.cgrpMapId, 'a new counters map');
        assert.match(JSON.stringify(st.reasons), /sl_cgrp: value layout differs/);
      }

      // This version's own pins are adopted on the next start.
      await d.stop();
      d = await Daemon.start(env);
      await sleep(100);
      const again = await collectorStatus(d);
      assert.equal(again.start, 'adopted', JSON.stringify(again));
      assert.deepEqual(pinned(env.privateDir), now);
      await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);
      await d.stop();
    });

  it('a pin this version does not make (a program it dropped): replaced, the pin goes', async () => {
    const env = daemonEnv();
    let d = await Daemon.start(env);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await d.stop();
    // An earlier version's extra program, still attached through its pin.
    const extra = BpfObject.load(path.join(BPF_BUILD, 'test_fixture.bpf.o'), {
      programs: ['fixture_switch'],
    });
    const dir = openDir(path.join(env.privateDir, INSTANCE));
    try {
      const l = extra.program('fixture_switch').attach();
      l.pinAt(dir, 'link_sl_dropped');
      l.close();
    } finally {
      dir.close();
      extra.close();
    }
    d = await Daemon.start(env);
    const st = await collectorStatus(d);
    assert.equal(st.start, 'replaced', JSON.stringify(st));
    assert.match(JSON.stringify(st.reasons), /pin link_sl_dropped: not one of this version's/);
    assert.deepEqual([...(st.carried ?? [])].sort(), ['sl_cg_v1', 'sl_cgrp'], 'the counters stay');
    assert.ok(
      !fs.existsSync(path.join(env.privateDir, INSTANCE, 'link_sl_dropped')),
      'the extra pin is gone',
    );
    await d.ok(['unpin', path.join(env.bpffs, 'sched_lat')]);
    await d.stop();
  });
});
