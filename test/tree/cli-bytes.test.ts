/**
 * Every hostile name through the CLI, with a real daemon: cgroups and view
 * names that are not UTF-8, hold a newline, spaces, '%', '.', quotes, glob
 * and shell characters, or start with '-', are addressed by `cgview cat`,
 * `ls`, `pin` and `unpin` as the bytes they are (issue 8 point 5). The CLI
 * runs with its arguments passed as raw bytes (test/bytes.ts).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cgviewBytes } from '../bytes.js';
import {
  bp,
  cgroupId,
  Daemon,
  daemonEnv,
  expectedListing,
  parseView,
  readView,
  treeListing,
  treeName,
  under,
  viewCgroupId,
  waitForEqual,
} from '../daemon.js';
import { onCleanup } from '../helpers.js';

/** Cgroup names as byte strings (one char per byte); cgroupfs refuses a newline, bpffs does not (below). */
const HOSTILE = [
  '\xff\xfe', // not UTF-8
  'bad\xff\xfe\x80-\xc3\x28', // invalid sequences mixed with ASCII
  '\xed\xa0\x80', // a UTF-16 surrogate encoded as UTF-8: not valid UTF-8
  '\xc3\xa9t\xc3\xa9', // "été", valid UTF-8
  'tab\there',
  'with spaces ',
  ' leading space',
  '50%',
  '%2E', // looks like the tree's own encoding
  'a.b', // mirrored percent-encoded
  '-v', // looks like an option
  '--inherit',
  '-',
  '\\xff', // a literal backslash: nothing unescapes it
  'quote\'"',
  '*?[a]',
  '$(id)`id`',
  'n'.repeat(255),
];

/** The view file name pinned beside `info` for cgroup name `n` (bpffs refuses '.'; a newline it takes). */
const viewName = (n: string) => (n.includes('.') ? null : n.length > 250 ? n.slice(0, 250) : `${n}\nv`);

const asBytes = (s: string) => Buffer.from(s, 'latin1');

function rmdirQuiet(p: string | Buffer): void {
  try {
    fs.rmdirSync(p);
  } catch {
    // already gone (or the cgroup root's removal takes it)
  }
}

describe('hostile names through the CLI', () => {
  it('cat, ls, pin and unpin address every name by its bytes', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    const sock = env.socket;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    for (const n of HOSTILE) fs.mkdirSync(under(cg, n));
    onCleanup(() => {
      for (const n of HOSTILE) rmdirQuiet(under(cg, n));
    });
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      10000,
      'mirror of the hostile names',
    );

    for (const n of HOSTILE) {
      const label = JSON.stringify(n);
      const cgDir = `${cg}/${n}`;
      const dir = `${tree}/${treeName(n)}`;
      const id = cgroupId(cg, n);

      // cat by cgroup path: the daemon resolves it to the tree directory.
      let r = await cgviewBytes(['cat', cgDir, 'info', '--socket', sock]);
      assert.equal(r.code, 0, `cat ${label}: ${r.stderr}`);
      assert.equal(parseView(r.stdout)['cgroup_id'], id, `cat ${label}`);
      assert.ok(r.stdout.includes(`name: ${n}\n`), `cat ${label} prints the name's bytes: ${r.stdout}`);
      // cat of the view file itself, and of the tree directory.
      r = await cgviewBytes(['cat', `${dir}/info`, '--socket', sock]);
      assert.equal(r.code, 0, `cat file ${label}: ${r.stderr}`);
      assert.equal(parseView(r.stdout)['cgroup_id'], id);
      r = await cgviewBytes(['cat', dir, '--socket', sock]);
      assert.equal(r.code, 0, `cat dir ${label}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`==> ${dir}/info <==\n`), `cat dir ${label}: ${r.stdout}`);

      // ls of the tree directory names it and its cgroup with their bytes.
      r = await cgviewBytes(['ls', dir, '--socket', sock]);
      assert.equal(r.code, 0, `ls ${label}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`${dir} (cgroup ${cgDir})\n  info\tinfo\t`), `ls ${label}: ${r.stdout}`);

      // pin a view in that directory under a hostile name, read it, unpin it.
      const name = viewName(n);
      if (name !== null) {
        r = await cgviewBytes(['pin', 'info', dir, '--name', name, '--socket', sock]);
        assert.equal(r.code, 0, `pin --name ${label}: ${r.stderr}`);
        const file = `${dir}/${name}`;
        assert.equal(viewCgroupId(asBytes(file)), id, `pinned ${label}`);
        r = await cgviewBytes(['ls', dir, '--socket', sock]);
        assert.ok(r.stdout.includes(`\n  ${name}\tinfo\t`), `ls shows ${label}: ${r.stdout}`);
        r = await cgviewBytes(['cat', '--socket', sock, '--', cgDir, name]);
        assert.equal(r.code, 0, `cat ${label} ${label}: ${r.stderr}`);
        assert.equal(parseView(r.stdout)['cgroup_id'], id);
        r = await cgviewBytes(['unpin', file, '--socket', sock]);
        assert.equal(r.code, 0, `unpin ${label}: ${r.stderr}`);
        assert.equal(r.stdout, `unpinned ${file}\n`);
        assert.equal(fs.existsSync(asBytes(file)), false, `unpinned ${label} is gone`);
      }
    }
    assert.deepEqual(
      treeListing(tree),
      expectedListing(cg, [{ name: 'info' }]),
      'only the inherited views are left',
    );
    await d.stop();
  });

  it('a tree whose own directory and cgroup have hostile names', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const n = 'root\xff \t-%';
    const cgDir = `${env.cgroupRoot}/${n}`;
    fs.mkdirSync(bp(cgDir));
    onCleanup(() => rmdirQuiet(bp(cgDir)));
    fs.mkdirSync(bp(`${cgDir}/kid\xfe`));
    onCleanup(() => rmdirQuiet(bp(`${cgDir}/kid\xfe`)));
    const tree = `${env.bpffsParent}/t\xff\n-x`;
    fs.mkdirSync(bp(tree));
    onCleanup(() => fs.rmSync(bp(tree), { force: true, recursive: true }));

    let r = await cgviewBytes(['pin', 'info', tree, '--inherit', '--cgroup', cgDir, '--socket', env.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`tagged ${tree} with ${cgDir} `), r.stdout);
    assert.equal(viewCgroupId(bp(`${tree}/kid\xfe/info`)), cgroupId(env.cgroupRoot, `${n}/kid\xfe`));
    r = await cgviewBytes(['ls', '--socket', env.socket]);
    assert.ok(r.stdout.includes(`${tree}\t${cgDir}\tauto\t`), r.stdout);
    r = await cgviewBytes(['cat', `${cgDir}/kid\xfe`, 'info', '--socket', env.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseView(r.stdout)['name'], 'kid\xfe');

    // Relative paths with a leading '-' after --, from a directory whose name is hostile.
    r = await cgviewBytes(['cat', '--socket', env.socket, '--', 'kid\xfe/info'], { cwd: tree });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseView(r.stdout)['name'], 'kid\xfe');

    r = await cgviewBytes(['unpin', `${tree}/info`, '--socket', env.socket]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /from the whole tree; the tree is untagged\n$/);
    r = await cgviewBytes(['ls', '--socket', env.socket]);
    assert.equal(r.stdout.includes(tree), false, r.stdout);
    assert.equal(readView(bp(`${tree}/info`)), null);
    await d.stop();
  });

  it('a relative view path that starts with "-" is taken after --', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    fs.mkdirSync(path.join(env.cgroupRoot, '-rf'));
    onCleanup(() => rmdirQuiet(path.join(env.cgroupRoot, '-rf')));
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(env.cgroupRoot, [{ name: 'info' }]),
      10000,
      'mirror',
    );
    let r = await cgviewBytes(['cat', '-rf', '--socket', env.socket], { cwd: env.cgroupRoot });
    assert.equal(r.code, 2, 'without --, "-rf" is an unknown option');
    assert.match(r.stderr, /unknown option -r/);
    r = await cgviewBytes(['cat', '--socket', env.socket, '--', '-rf', 'info'], { cwd: env.cgroupRoot });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseView(r.stdout)['name'], '-rf');
    await d.stop();
  });
});
