/**
 * Never trust the tree: symlinks swapped in are removed, never followed;
 * a cgroup named like a view file is not mirrored and is reported; names of
 * 255 bytes and names that are not UTF-8 are mirrored exactly; an inotify
 * queue overflow is detected, repaired by a rescan and reported.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  bp,
  cgroupId,
  cgroupRels,
  Daemon,
  daemonEnv,
  dirRels,
  expectedListing,
  injectedLimit,
  mkCgroups,
  parseView,
  readView,
  rmCgroups,
  treeListing,
  under,
  viewCgroupId,
  waitForAsync,
  waitForEqual,
} from '../daemon.js';
import { waitFor } from '../helpers.js';

const WAIT = 5000;

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('symlinks in the tree', () => {
  it('are removed and never followed; the views come back', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    mkCgroups(cg, ['a', 'b', 'c', 'c/d']);
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'mirror',
    );
    const passwd = sha('/etc/passwd');
    const etc = fs.readdirSync('/etc').sort();

    // Swap while the daemon is stopped, so it meets the symlinks in place.
    d.signal('SIGSTOP');
    try {
      // A view file replaced with a symlink to a file outside the tree.
      fs.unlinkSync(path.join(tree, 'a', 'info'));
      fs.symlinkSync('/etc/passwd', path.join(tree, 'a', 'info'));
      // A mirrored directory replaced with a symlink to /etc.
      fs.unlinkSync(path.join(tree, 'b', 'info'));
      fs.rmdirSync(path.join(tree, 'b'));
      fs.symlinkSync('/etc', path.join(tree, 'b'));
      // A mirrored directory replaced with a symlink to another tree directory.
      for (const rel of ['c/d', 'c']) {
        fs.unlinkSync(path.join(tree, rel, 'info'));
        fs.rmdirSync(path.join(tree, rel));
      }
      fs.symlinkSync(path.join(tree, 'a'), path.join(tree, 'c'));
      // A symlink under a name no view uses.
      fs.symlinkSync('/etc', path.join(tree, 'a', 'evil'));
    } finally {
      d.signal('SIGCONT');
    }
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'symlinks replaced',
    );
    assert.equal(fs.lstatSync(path.join(tree, 'a', 'info')).isFile(), true);
    assert.equal(fs.lstatSync(path.join(tree, 'b')).isDirectory(), true);
    assert.equal(viewCgroupId(path.join(tree, 'c', 'd', 'info')), cgroupId(cg, 'c/d'));
    // Nothing happened where the symlinks pointed.
    assert.equal(sha('/etc/passwd'), passwd);
    assert.deepEqual(fs.readdirSync('/etc').sort(), etc);

    // A symlink made while the daemon runs goes too.
    fs.symlinkSync('/etc', path.join(tree, 'c', 'sneaky'));
    await waitFor(() => !fs.existsSync(path.join(tree, 'c', 'sneaky')), WAIT, 'the symlink to be removed');
    // And a view file swapped for a symlink in one step (rename over it). The
    // link is made beside the tree (same bpffs mount): made inside, the daemon
    // could remove it before the rename.
    const tmpLink = path.join(path.dirname(tree), 'tmp-link');
    fs.symlinkSync('/etc/passwd', tmpLink);
    fs.renameSync(tmpLink, path.join(tree, 'info'));
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'view file restored',
    );
    assert.equal(sha('/etc/passwd'), passwd);
    await d.stop();
  });
});

describe('a cgroup named like a view file', () => {
  it('is not mirrored, is reported in status, and the parent view stays right', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    mkCgroups(cg, ['a', 'a/info', 'a/info/below', 'info']);
    await waitForAsync(
      async () => {
        const c = (await d.status()).roots[0]?.conflicts ?? [];
        return c.includes('a/info') && c.includes('info');
      },
      WAIT,
      'the conflicts to be reported',
    );
    await waitFor(() => fs.existsSync(path.join(tree, 'a', 'info')), WAIT, 'a/info');
    // The parents' view files are theirs; nothing of the conflicting subtrees is mirrored.
    assert.equal(fs.lstatSync(path.join(tree, 'a', 'info')).isFile(), true);
    assert.equal(viewCgroupId(path.join(tree, 'a', 'info')), cgroupId(cg, 'a'));
    assert.equal(viewCgroupId(path.join(tree, 'info')), cgroupId(cg, ''));
    assert.deepEqual(dirRels(tree), ['', 'a']);
    const st = await d.status();
    assert.deepEqual([...st.roots[0]!.conflicts].sort(), ['a/info', 'info']);
    const text = await d.ok(['status']);
    assert.match(text, /not mirrored/);

    // Removed, the conflict goes from status.
    rmCgroups(cg, ['a/info/below', 'a/info']);
    await waitForAsync(
      async () => (await d.status()).roots[0]!.conflicts.join() === 'info',
      WAIT,
      'the a/info conflict to clear',
    );
    assert.equal(viewCgroupId(path.join(tree, 'a', 'info')), cgroupId(cg, 'a'));
    await d.stop();
  });
});

describe('a pin named like a mirrored cgroup', () => {
  it('is refused rather than un-mirroring the cgroup', async () => {
    const env = daemonEnv();
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['a', 'a/stats']);
    const d = await Daemon.start(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
    const inherited = await d.cli(['pin', 'info', env.bpffs, '--inherit', '--name', 'stats']);
    assert.equal(inherited.code, 1);
    assert.match(inherited.stderr, /a cgroup of that name is mirrored/);
    const local = await d.cli(['pin', 'info', path.join(env.bpffs, 'a'), '--name', 'stats']);
    assert.equal(local.code, 1);
    // Elsewhere the name is free.
    await d.ok(['pin', 'info', path.join(env.bpffs, 'a', 'stats'), '--name', 'stats']);
    await waitFor(
      () => viewCgroupId(path.join(env.bpffs, 'a', 'stats', 'stats')) === cgroupId(cg, 'a/stats'),
      5000,
      'a/stats/stats',
    );
    assert.equal(viewCgroupId(path.join(env.bpffs, 'a', 'stats', 'info')), cgroupId(cg, 'a/stats'));
    await d.stop();
  });
});

describe('names cgroupfs allows', () => {
  it('a 255-byte name and names that are not UTF-8 are mirrored byte for byte', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    const long = 'n'.repeat(255);
    const longUtf8 = `${'é'.repeat(127)}x`; // 255 bytes
    assert.equal(Buffer.byteLength(longUtf8), 255);
    const invalid = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x2d, 0xc3, 0x28]);
    const lone = Buffer.from([0xed, 0xa0, 0x80]); // a UTF-16 surrogate encoded as UTF-8: not valid UTF-8
    const names = [Buffer.from(long), Buffer.from(longUtf8), invalid, lone];
    for (const n of names) fs.mkdirSync(Buffer.concat([Buffer.from(`${cg}/`), n]));
    // A child under the invalid name: paths below it too.
    fs.mkdirSync(Buffer.concat([Buffer.from(`${cg}/`), invalid, Buffer.from('/child')]));
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      WAIT,
      'mirror of odd names',
    );

    const got = fs.readdirSync(tree, { encoding: 'buffer' }).filter((b) => !b.equals(Buffer.from('info')));
    assert.deepEqual(
      got.map((b) => b.toString('hex')).sort(),
      names.map((b) => b.toString('hex')).sort(),
      'the tree holds exactly the cgroup names, byte for byte',
    );
    for (const n of names) {
      const rel = n.toString('latin1');
      const text = readView(under(tree, `${rel}/info`));
      assert.ok(text, `a view for ${n.toString('hex')}`);
      const v = parseView(text);
      assert.equal(v['cgroup_id'], cgroupId(cg, rel));
      assert.equal(v['name'], rel, 'the view prints the same bytes');
    }
    const child = `${invalid.toString('latin1')}/child`;
    assert.equal(viewCgroupId(under(tree, `${child}/info`)), cgroupId(cg, child));

    // Removed as exactly.
    fs.rmdirSync(under(cg, child));
    for (const n of names) fs.rmdirSync(Buffer.concat([Buffer.from(`${cg}/`), n]));
    await waitForEqual(
      () => dirRels(tree),
      () => [''],
      WAIT,
      'odd names removed',
    );
    assert.equal(fs.existsSync(bp(`${tree}/${long}`)), false);
    await d.stop();
  });
});

describe('names bpffs refuses', () => {
  it("names with '.' are mirrored percent-encoded; one that cannot fit is reported, not retried", async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    const tooLong = `${'y'.repeat(250)}.abcd`; // 255 bytes; 257 once encoded
    mkCgroups(cg, ['system.slice', 'system.slice/a.scope', '50%', tooLong]);
    const mirrored = () => cgroupRels(cg).filter((r) => r !== tooLong);
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }], mirrored()),
      WAIT,
      'mirror',
    );
    assert.equal(
      viewCgroupId(path.join(tree, 'system%2Eslice', 'a%2Escope', 'info')),
      cgroupId(cg, 'system.slice/a.scope'),
    );
    assert.equal(parseView(readView(path.join(tree, '50%25', 'info')) ?? '')['name'], '50%');
    await waitForAsync(
      async () => (await d.status()).roots[0]!.conflicts.includes(tooLong),
      WAIT,
      'the long name reported',
    );
    assert.equal((await d.status()).opsFailed, 0, 'nothing is tried that cannot work');
    await d.stop();
  });
});

describe('inotify queue overflow', () => {
  it('is detected, repaired by a rescan, and reported in status', async () => {
    const env = daemonEnv();
    // A queue of 8 events for this daemon only (src/kernel/inotify.ts), not the host's sysctl.
    const d = await Daemon.start(env, { env: { CGVIEW_MAX_QUEUED_EVENTS: '8' } });
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    const rels: string[] = [];
    for (let p = 0; p < 20; p++) {
      rels.push(`p${p}`);
      for (let c = 0; c < 9; c++) rels.push(`p${p}/c${c}`);
    }
    d.signal('SIGSTOP');
    try {
      mkCgroups(cg, rels);
    } finally {
      d.signal('SIGCONT');
    }
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      20000,
      'mirror after overflow',
    );
    const st = await d.status();
    assert.ok(st.overflows >= 1, `overflows reported: ${st.overflows}`);
    assert.ok(st.rescans >= 1, `rescans reported: ${st.rescans}`);
    const text = await d.ok(['status']);
    assert.match(text, /[1-9]\d* overflows/);

    // Removal after an overflow converges too.
    const overflows = st.overflows;
    d.signal('SIGSTOP');
    try {
      rmCgroups(cg, rels);
    } finally {
      d.signal('SIGCONT');
    }
    await waitForEqual(
      () => dirRels(tree),
      () => [''],
      20000,
      'mirror after removal with overflow',
    );
    assert.ok((await d.status()).overflows > overflows, 'the removal overflowed too');
    await d.stop();
  });
});

describe('inotify watch limit', () => {
  it('is detected, reported as degraded, and periodic rescans keep the mirror right', async () => {
    const env = daemonEnv();
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    mkCgroups(cg, ['a', 'b', 'c', 'd']);
    // The daemon's own watch limit (src/kernel/inotify.ts), read from a file on
    // every new watch: the host's fs.inotify.max_user_watches is left alone.
    const limit = injectedLimit();
    const d = await Daemon.start(env, { env: { CGVIEW_MAX_WATCHES: limit.file } });
    // Watches already added stay; new ones fail with ENOSPC while the limit is this low.
    limit.set(1);
    await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      5000,
      'first mirror',
    );
    const st = await d.status();
    assert.ok(st.degraded, 'status says degraded');
    assert.match(await d.ok(['status']), /DEGRADED: inotify watch limit/);
    // Only the first watch (the root cgroup) could be added: a cgroup made
    // under an unwatched one is found by a periodic rescan.
    mkCgroups(cg, ['a/e', 'a/e/f']);
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, [{ name: 'info' }]),
      12000,
      'mirror by rescan',
    );
    assert.ok((await d.status()).rescans >= 1);
    // With the limit lifted, the next rescan adds the missing watches and stops polling.
    limit.set(null);
    await waitForAsync(async () => (await d.status()).degraded === null, 12000, 'degraded cleared');
    rmCgroups(cg, ['a/e/f', 'a/e', 'a', 'b', 'c', 'd']);
    await d.stop();
  });
});
