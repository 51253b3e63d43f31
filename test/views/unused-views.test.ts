/**
 * Views nobody pins any more are closed: after an unpin (or the untag it
 * leads to) the daemon holds no program of a view that no tagged root
 * names, user object or built-in. Before, every user object ever pinned
 * stayed loaded for the daemon's lifetime (one program per distinct copy).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { storeUserView } from '../../src/views/objstore.js';
import { ViewSet } from '../../src/views/registry.js';
import { Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, checkFdLeaks, heldBpf, onCleanup } from '../helpers.js';

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-unused-'));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Copies of info.bpf.o that differ in trailing bytes (libbpf ignores them): each its own store entry. */
function infoCopies(dir: string, n: number): string[] {
  const info = fs.readFileSync(path.join(BPF_BUILD, 'info.bpf.o'));
  return Array.from({ length: n }, (_, i) => {
    const p = path.join(dir, `v${i}.bpf.o`);
    fs.writeFileSync(p, Buffer.concat([info, Buffer.from(`\0copy ${i}\0`)]), { mode: 0o644 });
    return p;
  });
}

const progs = (pid: number) => heldBpf(pid).progs.size;

describe('views nobody pins any more', () => {
  it('the daemon closes their objects after unpin: its BPF programs go back to the baseline', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const copies = infoCopies(tmpDir(), 3);
    const base = progs(d.pid);
    // A tree that stays tagged (its own pin stays), so that unpins below are not all untags.
    await d.ok(['pin', 'info', env.bpffs, '--cgroup', env.cgroupRoot, '--name', 'keep']);
    const withInfo = progs(d.pid);
    assert.equal(withInfo, base + 1, 'the built-in info view is loaded once');
    for (const obj of copies) {
      await d.ok(['pin', `${obj}:info`, env.bpffs, '--name', 'user']);
      assert.equal(progs(d.pid), withInfo + 1, `${obj} loaded`);
      await d.ok(['unpin', path.join(env.bpffs, 'user')]);
      assert.equal(progs(d.pid), withInfo, `${obj} closed after its unpin`);
    }
    // The last pin goes, the tree is untagged: the built-in view's object goes too.
    await d.ok(['unpin', path.join(env.bpffs, 'keep')]);
    assert.deepEqual((await d.status()).roots, []);
    assert.equal(progs(d.pid), base, 'nothing pinned, nothing loaded');
    // An untag by unpin, of a user view alone.
    await d.ok(['pin', `${copies[0]}:info`, env.bpffs, '--cgroup', env.cgroupRoot]);
    assert.equal(progs(d.pid), base + 1);
    await d.ok(['unpin', path.join(env.bpffs, 'info')]);
    assert.equal(progs(d.pid), base);
    await d.stop();
  });

  describe('ViewSet.closeUnused', () => {
    checkFdLeaks();
    const noCollectors = { acquire: () => ({}), running: () => false, release: () => {} };
    const root = (views: string[], fd: unknown = 1) => ({
      cfg: { inherit: views.map((view) => ({ view })), local: {} },
      hierarchyId: 0,
      fd,
    });

    it('closes the objects no root names, keeps the ones named (inherited or local)', () => {
      const store = path.join(tmpDir(), 'objects');
      const [a, b, c] = infoCopies(tmpDir(), 3).map((o) => storeUserView(`${o}:info`, store));
      const views = new ViewSet(noCollectors);
      try {
        const va = views.get(a!);
        const vb = views.get(b!);
        const vc = views.get(c!);
        const vi = views.get('info');
        views.closeUnused([
          root([a!]),
          {
            cfg: { inherit: [], local: { x: [{ view: 'info' }], y: [{ view: 'no such view' }] } },
            hierarchyId: 0,
            fd: 1,
          },
        ]);
        assert.equal(va.program.object.closed, false);
        assert.equal(vi.program.object.closed, false);
        assert.equal(vb.program.object.closed, true);
        assert.equal(vc.program.object.closed, true);
        assert.equal(views.identityOf(b!), undefined, 'a closed view is forgotten');
        // Named again: loaded again.
        assert.equal(views.get(b!).program.object.closed, false);
        views.closeUnused([]);
        assert.equal(va.program.object.closed, true);
        assert.equal(vi.program.object.closed, true);
      } finally {
        views.close();
      }
    });
  });
});
