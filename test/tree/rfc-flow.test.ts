/**
 * The RFC selftest's flow, in user space: pin a view at a root with
 * --inherit; cgroups made (and, in manual mode, their tree directories) get
 * the view file; a tree directory matching no cgroup is refused; a removed
 * cgroup's directory goes; unpin removes the view everywhere and untags.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  cgview,
  Daemon,
  daemonEnv,
  expectedListing,
  treeListing,
  viewCgroupId,
  waitForAsync,
  waitForEqual,
} from '../daemon.js';
import { inode, sleep, uniq, waitFor } from '../helpers.js';

const WAIT = 5000;

function idOf(cg: string): string {
  return String(inode(cg));
}

for (const mode of ['auto', 'manual'] as const) {
  describe(`RFC flow, ${mode} mode`, () => {
    it('pin --inherit, mkdir, refuse, rmdir, unpin', async () => {
      const env = daemonEnv();
      const d = await Daemon.start(env);
      const tree = env.bpffs;
      const cg = env.cgroupRoot;

      // S1: the first pin tags the directory with the cgroup.
      const args = [
        'pin',
        'info',
        tree,
        '--inherit',
        '--cgroup',
        cg,
        ...(mode === 'manual' ? ['--mode', 'manual'] : []),
      ];
      await d.ok(args);
      assert.equal(
        viewCgroupId(path.join(tree, 'info')),
        idOf(cg),
        'the root view prints the root cgroup id',
      );
      const ls = JSON.parse(await d.ok(['ls', '--json'])) as {
        roots: Array<{ dir: string; cgroup: string; mode: string }>;
      };
      assert.deepEqual(
        ls.roots.map((r) => [r.dir, r.cgroup, r.mode]),
        [[tree, cg, mode]],
      );

      // A cgroup comes: in manual mode its tree directory only when a user makes it.
      fs.mkdirSync(path.join(cg, 'a'));
      if (mode === 'manual') {
        await sleep(300);
        assert.equal(fs.existsSync(path.join(tree, 'a')), false, 'manual mode does not mirror by itself');
        fs.mkdirSync(path.join(tree, 'a'));
      }
      await waitFor(
        () => viewCgroupId(path.join(tree, 'a', 'info')) === idOf(path.join(cg, 'a')),
        WAIT,
        'a/info',
      );
      const a = fs.readFileSync(path.join(tree, 'a', 'info'), 'utf8');
      assert.match(a, /^cgroup_id: \d+\nlevel: \d+\nname: a\n/);

      // Deeper.
      fs.mkdirSync(path.join(cg, 'a', 'b'));
      if (mode === 'manual') fs.mkdirSync(path.join(tree, 'a', 'b'));
      await waitFor(
        () => viewCgroupId(path.join(tree, 'a', 'b', 'info')) === idOf(path.join(cg, 'a', 'b')),
        WAIT,
        'a/b/info',
      );

      // S2: a tree directory that matches no cgroup is refused (removed, with the reason logged).
      const bogus = uniq('nomatch');
      fs.mkdirSync(path.join(tree, bogus));
      await waitFor(
        () => !fs.existsSync(path.join(tree, bogus)),
        WAIT,
        'the unmatched directory to be removed',
      );
      fs.mkdirSync(path.join(tree, 'a', bogus));
      await waitFor(
        () => !fs.existsSync(path.join(tree, 'a', bogus)),
        WAIT,
        'the unmatched nested directory to be removed',
      );
      const refusal = d.logs().find((r) => r['msg'] === 'removed directory' && r['rel'] === bogus);
      assert.ok(refusal, `the refusal is logged:\n${d.stderr}`);
      assert.equal(typeof refusal['reason'], 'string');
      assert.ok((refusal['reason'] as string).length > 0);

      await waitForEqual(
        () => treeListing(tree),
        () => expectedListing(cg, [{ name: 'info' }]),
        WAIT,
        'the tree mirrors the cgroups',
      );

      // S4: the cgroup goes, its directory goes.
      fs.rmdirSync(path.join(cg, 'a', 'b'));
      await waitFor(() => !fs.existsSync(path.join(tree, 'a', 'b')), WAIT, 'a/b to be removed');
      assert.equal(viewCgroupId(path.join(tree, 'a', 'info')), idOf(path.join(cg, 'a')));

      // Unpin of the inherited view: gone everywhere, and the root is untagged.
      await d.ok(['unpin', path.join(tree, 'info')]);
      await waitFor(() => fs.readdirSync(tree).length === 0, WAIT, 'the tree to be emptied');
      const after = JSON.parse(await d.ok(['ls', '--json'])) as { roots: unknown[] };
      assert.deepEqual(after.roots, []);
      // Untagged: the directory can be tagged again, with another cgroup.
      await d.ok(['pin', 'info', tree, '--cgroup', path.join(cg, 'a')]);
      assert.equal(viewCgroupId(path.join(tree, 'info')), idOf(path.join(cg, 'a')));
      await d.ok(['unpin', path.join(tree, 'info')]);
      assert.deepEqual(fs.readdirSync(tree), []);
      const st = await d.status();
      assert.deepEqual(st.roots, []);
      assert.equal(st.opsFailed, 0, `no operation failed:\n${d.stderr}`);
      assert.deepEqual(await d.stop(), { code: 0, signal: null });
    });
  });
}

describe('pins and inheritance', () => {
  it('a view pinned without --inherit stays in its directory', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    fs.mkdirSync(path.join(cg, 'a'));
    await waitFor(() => fs.existsSync(path.join(tree, 'a', 'info')), WAIT, 'a/info');

    await d.ok(['pin', 'info', path.join(tree, 'a'), '--name', 'mine']);
    await d.ok(['pin', 'info', tree, '--name', 'top']);
    assert.equal(
      viewCgroupId(path.join(tree, 'a', 'mine')),
      idOf(path.join(cg, 'a')),
      'a local pin is for its own cgroup',
    );
    assert.equal(viewCgroupId(path.join(tree, 'top')), idOf(cg));

    fs.mkdirSync(path.join(cg, 'a', 'b'));
    fs.mkdirSync(path.join(cg, 'c'));
    await waitFor(
      () => fs.existsSync(path.join(tree, 'a', 'b', 'info')) && fs.existsSync(path.join(tree, 'c', 'info')),
      WAIT,
      'b, c',
    );
    await sleep(200);
    const local = (rel: string, name: string) => (rel === '' ? name : `${rel}/${name}`);
    const want = expectedListing(cg, [{ name: 'info' }]);
    const extra = (rel: string, name: string) => {
      const full = path.join(cg, rel);
      const st = fs.statSync(full);
      return `file ${local(rel, name)} cgroup_id=${inode(full)} mode=440 owner=${st.uid}:${st.gid}`;
    };
    assert.deepEqual(treeListing(tree), [...want, extra('a', 'mine'), extra('', 'top')].sort());

    // Unpinning a local view removes that file only.
    await d.ok(['unpin', path.join(tree, 'a', 'mine')]);
    assert.equal(fs.existsSync(path.join(tree, 'a', 'mine')), false);
    assert.deepEqual(treeListing(tree), [...want, extra('', 'top')].sort());
    // Unpinning a name that is not pinned there fails and changes nothing.
    const r = await d.cli(['unpin', path.join(tree, 'c', 'top')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^cgview: /);
    assert.deepEqual(treeListing(tree), [...want, extra('', 'top')].sort());
    await d.stop();
  });

  it('a second inherited view populates every existing directory, with its file mode', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    for (const rel of ['a', 'a/b', 'a/b/c', 'd']) fs.mkdirSync(path.join(cg, rel));
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'first view mirrored',
    );

    await d.ok(['pin', 'info', tree, '--inherit', '--name', 'second', '--file-mode', '0444']);
    // The pin request returns once every existing directory has the view.
    assert.deepEqual(
      treeListing(tree),
      expectedListing(cg, [{ name: 'info' }, { name: 'second', mode: 0o444 }]),
    );

    // New directories get both.
    fs.mkdirSync(path.join(cg, 'd', 'e'));
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }, { name: 'second', mode: 0o444 }]),
      WAIT,
      'new directory with both views',
    );
    // The name is taken now.
    const again = await d.cli(['pin', 'info', tree, '--inherit', '--name', 'second']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /taken|exists/);

    await d.ok(['unpin', path.join(tree, 'second')]);
    assert.deepEqual(treeListing(tree), expectedListing(cg, [{ name: 'info' }]));
    await d.stop();
  });
});

describe('local pins and removal (S4)', () => {
  it('a directory that goes takes its own pins; a new cgroup of that name gets the inherit list only', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    fs.mkdirSync(path.join(cg, 'a'));
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    await d.ok(['pin', 'info', path.join(tree, 'a'), '--name', 'mine']);
    assert.equal(viewCgroupId(path.join(tree, 'a', 'mine')), idOf(path.join(cg, 'a')));
    fs.rmdirSync(path.join(cg, 'a'));
    await waitFor(() => !fs.existsSync(path.join(tree, 'a')), WAIT, 'a removed');
    await waitForAsync(
      async () => Object.keys((await d.status()).roots[0]!.local).length === 0,
      WAIT,
      'local pin dropped',
    );
    fs.mkdirSync(path.join(cg, 'a'));
    await waitFor(
      () => viewCgroupId(path.join(tree, 'a', 'info')) === idOf(path.join(cg, 'a')),
      WAIT,
      'new a/info',
    );
    await sleep(200);
    assert.deepEqual(fs.readdirSync(path.join(tree, 'a')), ['info']);
    await d.stop();
  });
});

describe('cgview cat', () => {
  it('prints the views of a cgroup directory, of a tree directory, and of one view file', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    const a = path.join(cg, 'a');
    fs.mkdirSync(a);
    await waitFor(() => viewCgroupId(path.join(tree, 'a', 'info')) === idOf(a), WAIT, 'a/info');

    const viaCgroup = await d.ok(['cat', a]);
    assert.match(viaCgroup, new RegExp(`^cgroup_id: ${idOf(a)}$`, 'm'));
    assert.match(viaCgroup, /^name: a$/m);
    assert.doesNotMatch(viaCgroup, new RegExp(`cgroup_id: ${idOf(cg)}\n`), 'only that cgroup');

    const oneView = await d.ok(['cat', a, 'info']);
    assert.equal(oneView, fs.readFileSync(path.join(tree, 'a', 'info'), 'utf8'));

    const viaFile = await d.ok(['cat', path.join(tree, 'a', 'info')]);
    assert.equal(viaFile, oneView);

    const viaTreeDir = await d.ok(['cat', path.join(tree, 'a')]);
    assert.match(viaTreeDir, new RegExp(`^cgroup_id: ${idOf(a)}$`, 'm'));

    const asJson = JSON.parse(await d.ok(['cat', a, '--json'])) as Record<string, Record<string, string>>;
    assert.deepEqual(Object.keys(asJson), [path.join(tree, 'a', 'info')]);
    assert.equal(asJson[path.join(tree, 'a', 'info')]?.['cgroup_id'], idOf(a));
    assert.equal(asJson[path.join(tree, 'a', 'info')]?.['name'], 'a');

    const root = await d.ok(['cat', cg, 'info']);
    assert.match(root, new RegExp(`^cgroup_id: ${idOf(cg)}$`, 'm'));

    // A cgroup no tree mirrors.
    const none = await d.cli(['cat', '/sys/fs/cgroup/unified']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no view tree mirrors/);
    await d.stop();
  });
});

describe('no daemon', () => {
  it('client commands say the daemon is not running and how to start it', async () => {
    const env = daemonEnv();
    fs.mkdirSync(path.join(env.cgroupRoot, 'a'));
    const socket = path.join(path.dirname(env.socket), 'nothing-here.sock');
    const commands = [
      ['status'],
      ['ls'],
      ['pin', 'info', env.bpffs, '--inherit'],
      ['unpin', path.join(env.bpffs, 'info')],
      ['cat', path.join(env.cgroupRoot, 'a')],
    ];
    for (const c of commands) {
      const r = await cgview([...c, '--socket', socket]);
      assert.equal(r.code, 1, `cgview ${c[0]}: ${r.stderr}`);
      assert.match(r.stderr, /daemon is not running/, `cgview ${c[0]}`);
      assert.match(r.stderr, /cgview daemon/, `cgview ${c[0]} says how to start it`);
      assert.equal(r.stdout, '');
    }
    // CGVIEW_SOCKET is honoured the same way.
    const r = await cgview(['status'], { env: { CGVIEW_SOCKET: socket } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`not running.*${socket.replaceAll('.', '\\.')}`));
  });
});
