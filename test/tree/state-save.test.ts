/**
 * A change is made only once it is saved: when the state file cannot be
 * written (its directory made immutable, a real failure of the save), the
 * request fails and the daemon goes on exactly as before — the pin is not
 * listed, no new cgroup gets the view, no new tree is remembered later.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv } from '../daemon.js';
import { heldBpf, onCleanup, sleep, waitFor } from '../helpers.js';

const chattr = (flag: '+i' | '-i', dir: string) => execFileSync('chattr', [flag, dir]);

describe('a state file that cannot be saved', () => {
  it('the request fails and nothing of it is live', async () => {
    const env = daemonEnv();
    const stateDir = path.dirname(env.state);
    // Newest cleanups run first: the directory is mutable again before it is removed.
    onCleanup(() => chattr('-i', stateDir));
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    fs.mkdirSync(path.join(cg, 'a'));
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    await waitFor(() => fs.existsSync(path.join(tree, 'a', 'info')), 5000, 'a/info');
    const other = path.join(env.bpffsParent, 'other');

    chattr('+i', stateDir);
    try {
      const r = await d.cli(['pin', 'info', tree, '--inherit', '--name', 'info2']);
      assert.notEqual(r.code, 0, 'the pin fails');
      assert.match(r.stderr, /state file/);
      const t = await d.cli(['pin', 'info', other, '--cgroup', path.join(cg, 'a')]);
      assert.notEqual(t.code, 0, 'a new tree fails too');
      // A view with a collector: its planning loads the view and starts the
      // collector; the failed save must take both back.
      const held = () => {
        const h = heldBpf(d.pid);
        return { fds: h.fds, links: [...h.links].sort(), progs: [...h.progs].sort() };
      };
      const before = held();
      const c = await d.cli(['pin', 'sched_lat', tree, '--inherit']);
      assert.notEqual(c.code, 0, 'the collector view fails too');
      assert.deepEqual(held(), before, "the daemon's descriptors, links and programs after the failed pin");
      assert.deepEqual((await d.status()).collectors, {}, 'no collector runs');

      const st = await d.status();
      assert.deepEqual(
        st.roots.map((x) => [x.dir, x.inherit.map((p) => p.name)]),
        [[tree, ['info']]],
        'status lists neither the pin nor the new tree',
      );
      // A new cgroup gets the views that were saved, not the one that was not.
      fs.mkdirSync(path.join(cg, 'b'));
      await waitFor(() => fs.existsSync(path.join(tree, 'b', 'info')), 5000, 'b/info');
      await sleep(200);
      assert.equal(fs.existsSync(path.join(tree, 'b', 'info2')), false, 'b has no info2');
      assert.equal(fs.existsSync(path.join(tree, 'a', 'info2')), false, 'a has no info2');
    } finally {
      chattr('-i', stateDir);
    }
    // Saving works again: what is saved now is the live state, without the failed changes.
    await d.ok(['pin', 'info', tree, '--inherit', '--name', 'info3']);
    const saved = JSON.parse(fs.readFileSync(env.state, 'utf8')) as {
      roots: Array<{ dir: string; inherit: Array<{ name: string }> }>;
    };
    assert.deepEqual(
      saved.roots.map((x) => [x.dir, x.inherit.map((p) => p.name)]),
      [[tree, ['info', 'info3']]],
    );
    await waitFor(() => fs.existsSync(path.join(tree, 'b', 'info3')), 5000, 'b/info3');
    await d.stop();
  });
});
