/**
 * `cgview status` counts what is there (issue 7 point 9): the directories and
 * view files in place, not the inherit list times the number of watches.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv } from '../daemon.js';
import { waitFor } from '../helpers.js';

/** Directories and view files under a tree root (the root itself included). */
function count(root: string): { dirs: number; files: number } {
  let dirs = 0;
  let files = 0;
  const walk = (dir: string) => {
    dirs++;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else files++;
    }
  };
  walk(root);
  return { dirs, files };
}

describe('status counts', () => {
  it('a view that cannot be loaded has no pins, and status says so', async () => {
    const env = daemonEnv();
    for (const r of ['a', 'a/b', 'c']) fs.mkdirSync(path.join(env.cgroupRoot, r));
    // The state of a tree whose second view's object is gone.
    fs.writeFileSync(
      env.state,
      JSON.stringify({
        version: 1,
        initialized: true,
        roots: [
          {
            dir: env.bpffs,
            cgroup: env.cgroupRoot,
            mode: 'auto',
            inherit: [
              { view: 'info', name: 'info', fileMode: 0o440 },
              { view: path.join(env.bpffsParent, 'gone.bpf.o:gone'), name: 'gone', fileMode: 0o440 },
            ],
            local: {},
          },
        ],
      }),
    );
    const d = await Daemon.start(env);
    await waitFor(() => fs.existsSync(path.join(env.bpffs, 'a', 'b', 'info')), 5000, 'a/b/info');
    const there = count(env.bpffs);
    assert.deepEqual(
      there,
      { dirs: 4, files: 4 },
      'info in every directory, nothing for the view that did not load',
    );
    const st = (await d.status()).roots[0]!;
    assert.equal(st.dirs, there.dirs);
    assert.equal(st.pins, there.files);

    // An inherited pin and its unpin change the counts by one file per directory.
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--name', 'more']);
    assert.equal((await d.status()).roots[0]!.pins, there.files + there.dirs);
    assert.equal(count(env.bpffs).files, there.files + there.dirs);
    await d.ok(['unpin', path.join(env.bpffs, 'more')]);
    assert.equal((await d.status()).roots[0]!.pins, there.files);
    assert.equal(count(env.bpffs).files, there.files);
    await d.stop();
  });
});
