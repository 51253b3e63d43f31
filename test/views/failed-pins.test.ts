/**
 * Pins that fail leave nothing loaded in the daemon (issue 8.3), and one
 * program the verifier rejects does not spoil the other programs of its
 * object (issue 8.6). Descriptors and programs are those the daemon process
 * holds (/proc/PID/fd, prog_id in /proc/PID/fdinfo), not global listings.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon as D, type Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, onCleanup, waitFor } from '../helpers.js';

/** The daemon's descriptors, and the ids of the BPF programs they hold (prog fds and links). */
function held(pid: number): { fds: number; progs: number[] } {
  const fds = fs.readdirSync(`/proc/${pid}/fd`);
  const progs = new Set<number>();
  for (const fd of fds) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile
    }
    const m = /^prog_id:\s+(\d+)$/m.exec(info);
    if (m) progs.add(Number(m[1]));
  }
  return { fds: fds.length, progs: [...progs].sort((a, b) => a - b) };
}

function copies(dir: string, src: string, n: number, tag: string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const p = path.join(dir, `${tag}${i}.bpf.o`);
    fs.copyFileSync(src, p);
    return p;
  });
}

describe('failed pins', { concurrency: false }, () => {
  let d: Daemon;
  let env: ReturnType<typeof daemonEnv>;
  let objs: string;

  it('setup: a daemon with a tree', async () => {
    env = daemonEnv();
    objs = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-objs-'));
    onCleanup(() => fs.rmSync(objs, { recursive: true, force: true }));
    d = await D.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit']);
  });

  it('20 failed pins from 20 copies leave no descriptor and no program in the daemon', async () => {
    const mixed = path.join(BPF_BUILD, 'test_mixed.bpf.o');
    // Every program of this one verifies: loaded whole, it would stay.
    const fixture = path.join(BPF_BUILD, 'test_fixture.bpf.o');
    const text = path.join(objs, 'notelf.txt');
    fs.writeFileSync(text, 'this is not an ELF file\n');
    const cases: Array<[string[], string, RegExp]> = [
      // a tracing program is not a view
      [
        copies(objs, fixture, 5, 'tp'),
        'fixture_switch',
        /is SEC\("tp_btf\/sched_switch"\), not iter\/cgroup/,
      ],
      // a program that is not there
      [copies(objs, fixture, 5, 'nope'), 'no_such_prog', /program no_such_prog not in/],
      // a program the verifier rejects
      [copies(objs, mixed, 5, 'bad'), 'mixed_bad', /the verifier rejected program mixed_bad/],
      // not an ELF object at all: said in words, not as libbpf's errno 4001
      [copies(objs, text, 5, 'txt'), 'prog', /not a BPF ELF object/],
    ];
    const before = held(d.pid);
    for (const [files, prog, want] of cases)
      for (const f of files) {
        const r = await d.cli(['pin', `${f}:${prog}`, env.bpffs]);
        assert.notEqual(r.code, 0, `pin ${f}:${prog} should fail`);
        assert.match(r.stderr, want, `pin ${f}:${prog}`);
        assert.doesNotMatch(r.stderr, /errno 4001/);
      }
    // The CLI's connections close asynchronously: wait for the count to settle.
    let after = held(d.pid);
    await waitFor(
      () => {
        after = held(d.pid);
        return after.fds <= before.fds;
      },
      5000,
      'the daemon back to its descriptors',
    ).catch(() => {});
    assert.deepEqual(after, before, 'descriptors and programs held by the daemon');
    // The tree is as it was: only info.
    assert.deepEqual(fs.readdirSync(env.bpffs).sort(), ['info']);
  });

  it('one bad program does not spoil its object: the good view pins; the bad one shows its own log', async () => {
    const obj = copies(objs, path.join(BPF_BUILD, 'test_mixed.bpf.o'), 1, 'mixed')[0]!;
    const bad = await d.cli(['pin', `${obj}:mixed_bad`, env.bpffs]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /rejected program mixed_bad/);
    assert.match(bad.stderr, /mixed_bad_unchecked\[4\]/, 'the log of the program asked for');
    assert.doesNotMatch(bad.stderr, /mixed_good/);

    await d.ok(['pin', `${obj}:mixed_good`, env.bpffs, '--inherit']);
    const out = fs.readFileSync(path.join(env.bpffs, 'mixed_good'), 'latin1');
    assert.equal(out, `cgroup_id: ${fs.statSync(env.cgroupRoot).ino}\n`);
    await d.ok(['unpin', path.join(env.bpffs, 'mixed_good')]);
    await d.stop();
  });
});
