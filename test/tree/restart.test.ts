/**
 * Restarts lose nothing: pins are served while the daemon is down, and a
 * restart converges (cgroups made and removed meanwhile are mirrored and
 * dropped). A kill -9 at an injected point (CGVIEW_CRASH_AT=<point>:<n>:
 * after the n-th mkdir, pin, or reconcile op) followed by a restart
 * converges to the tree a clean start makes, with no stale or duplicate pin.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  cgroupId,
  cgroupRels,
  Daemon,
  type DaemonEnv,
  daemonEnv,
  type ExpectedView,
  expectedListing,
  linksFor,
  liveDaemonLogs,
  mkCgroups,
  pinnedLinkId,
  rmCgroups,
  treeListing,
  under,
  viewCgroupId,
  waitForEqual,
} from '../daemon.js';
import { waitFor } from '../helpers.js';

const INITIAL = ['a', 'a/x', 'b', 'b/y', 'c', 'c/z'];
/** Made while the daemon is down. */
const ADDED = ['a/x/deep', 'n0', 'n0/m', 'n1', 'n1/m', 'n2', 'n2/m', 'n3', 'n3/m', 'n4', 'n4/m'];
/** Removed while the daemon is down. */
const REMOVED = ['c/z', 'c', 'b/y'];

const TWO: ExpectedView[] = [{ name: 'info' }, { name: 'second', mode: 0o444 }];

/** Every cgroup id the test has seen, so links of removed cgroups are counted too. */
class Seen {
  readonly ids = new Set<string>();
  constructor(readonly cg: string) {
    this.snap();
  }
  snap(): void {
    for (const rel of cgroupRels(this.cg)) this.ids.add(cgroupId(this.cg, rel));
  }
}

/** A daemon mirroring INITIAL with `views` inherited, converged. */
async function setup(views: ExpectedView[] = TWO): Promise<{ env: DaemonEnv; d: Daemon; seen: Seen }> {
  const env = daemonEnv();
  mkCgroups(env.cgroupRoot, INITIAL);
  const seen = new Seen(env.cgroupRoot);
  const d = await Daemon.start(env);
  for (const [i, v] of views.entries()) {
    const args = ['pin', 'info', env.bpffs, '--inherit', '--name', v.name];
    if (i === 0) args.push('--cgroup', env.cgroupRoot);
    if (v.mode !== undefined) args.push('--file-mode', `0${v.mode.toString(8)}`);
    await d.ok(args);
  }
  await waitForEqual(
    () => treeListing(env.bpffs),
    () => expectedListing(env.cgroupRoot, views),
    5000,
    'initial mirror',
  );
  return { env, d, seen };
}

function changeWhileDown(env: DaemonEnv, seen: Seen): void {
  mkCgroups(env.cgroupRoot, ADDED);
  seen.snap();
  rmCgroups(env.cgroupRoot, REMOVED);
}

/**
 * The tree equals what a clean start makes from cgroupfs, and the kernel
 * holds exactly one link per view file: views.length per live cgroup, none
 * for a removed one.
 */
async function checkConverged(env: DaemonEnv, views: ExpectedView[], seen: Seen): Promise<void> {
  await waitForEqual(
    () => treeListing(env.bpffs),
    () => expectedListing(env.cgroupRoot, views),
    10000,
    'convergence',
  );
  const live = new Set(cgroupRels(env.cgroupRoot).map((r) => cgroupId(env.cgroupRoot, r)));
  const perCgroup = () => {
    const n = new Map<string, number>();
    for (const l of linksFor(seen.ids)) n.set(String(l.cgroup_id), (n.get(String(l.cgroup_id)) ?? 0) + 1);
    return n;
  };
  const want = new Map([...live].map((id) => [id, views.length]));
  // Links held only by a killed daemon's descriptors are released shortly after it dies.
  await waitForEqual(
    () => [...perCgroup()].sort(),
    () => [...want].sort(),
    5000,
    'one link per view file, none for removed cgroups',
  );
}

describe('restart after SIGTERM', () => {
  it('leaves pins readable while down, then converges with what changed meanwhile', async () => {
    const { env, d, seen } = await setup();
    const tree = env.bpffs;
    const cg = env.cgroupRoot;
    const adoptedBefore = pinnedLinkId(path.join(tree, 'a', 'info'));
    assert.deepEqual(await d.stop(), { code: 0, signal: null });

    // Served by the kernel with no daemon.
    assert.deepEqual(treeListing(tree), expectedListing(cg, TWO));
    assert.equal(viewCgroupId(path.join(tree, 'a', 'x', 'info')), cgroupId(cg, 'a/x'));

    changeWhileDown(env, seen);
    // S6: the view of a removed cgroup reads nothing.
    assert.equal(fs.readFileSync(path.join(tree, 'c', 'info'), 'utf8'), '');

    const d2 = await Daemon.start(env);
    await checkConverged(env, TWO, seen);
    assert.equal(
      pinnedLinkId(path.join(tree, 'a', 'info')),
      adoptedBefore,
      'a right pin is adopted, not replaced',
    );
    assert.equal(fs.existsSync(path.join(tree, 'c')), false, 'stale directories are gone');
    const st = await d2.status();
    assert.equal(st.roots.length, 1);
    assert.deepEqual(
      st.roots[0]!.inherit.map((p) => [p.name, p.fileMode]),
      [
        ['info', '440'],
        ['second', '444'],
      ],
      'the inherit list and file modes survive a restart',
    );

    // The oracle itself: a clean start on a fresh tree makes the same listing.
    const clean = daemonEnv({ cgroupRoot: cg });
    const d3 = await Daemon.start(clean);
    await d3.ok(['pin', 'info', clean.bpffs, '--inherit', '--cgroup', cg]);
    await d3.ok(['pin', 'info', clean.bpffs, '--inherit', '--name', 'second', '--file-mode', '0444']);
    await waitForEqual(
      () => treeListing(clean.bpffs),
      () => treeListing(tree),
      5000,
      'clean start = restarted tree',
    );
    await d3.stop();
    await d2.stop();
  });
});

interface Scenario {
  crash: string;
  /** When the crash happens: reconciling at start, following cgroup events, serving a pin, untagging. */
  phase: 'start' | 'events' | 'pin request' | 'untag';
}

const SCENARIOS: Scenario[] = [
  { crash: 'mkdir:1', phase: 'start' },
  { crash: 'mkdir:4', phase: 'start' },
  { crash: 'pin:1', phase: 'start' },
  { crash: 'pin:9', phase: 'start' },
  { crash: 'reconcile:2', phase: 'start' },
  { crash: 'reconcile:20', phase: 'start' },
  { crash: 'mkdir:3', phase: 'events' },
  { crash: 'pin:5', phase: 'events' },
  { crash: 'reconcile:4', phase: 'pin request' },
  { crash: 'reconcile:5', phase: 'untag' },
];

async function crashed(d: Daemon, what: string): Promise<void> {
  const exit = await d.waitExit(10000);
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, `the daemon was to crash ${what}:\n${d.stderr}`);
}

describe('kill -9 at injected points, then restart', () => {
  for (const s of SCENARIOS) {
    it(`CGVIEW_CRASH_AT=${s.crash} while ${s.phase === 'start' ? 'reconciling at start' : s.phase}`, async () => {
      const views = s.phase === 'untag' ? [{ name: 'info' }] : TWO;
      const { env, d, seen } = await setup(views);
      const tree = env.bpffs;
      const cg = env.cgroupRoot;
      await d.stop();
      const crashEnv = { CGVIEW_CRASH_AT: s.crash };
      let want = views;

      if (s.phase === 'start') {
        changeWhileDown(env, seen);
        const dc = await Daemon.start(env, { env: crashEnv, waitReady: false });
        await crashed(dc, 'while reconciling at start');
      } else if (s.phase === 'events') {
        // Nothing to do at start (the tree is right); the crash comes while following new cgroups.
        const dc = await Daemon.start(env, { env: crashEnv });
        mkCgroups(cg, ['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
        seen.snap();
        await crashed(dc, 'while following cgroup events');
        changeWhileDown(env, seen);
      } else if (s.phase === 'pin request') {
        const dc = await Daemon.start(env, { env: crashEnv });
        const r = await dc.cli(['pin', 'info', tree, '--inherit', '--name', 'third'], { timeoutMs: 5000 });
        await crashed(dc, 'while serving a pin');
        assert.equal(r.code, 1, `the client reports the lost daemon promptly:\n${r.stderr}`);
        assert.match(r.stderr, /^cgview: /);
        changeWhileDown(env, seen);
        // The state was saved before the tree was touched: the new view is part of it.
        want = [...TWO, { name: 'third' }];
      } else {
        const dc = await Daemon.start(env, { env: crashEnv });
        await dc.cli(['unpin', path.join(tree, 'info')], { timeoutMs: 5000 });
        await crashed(dc, 'while untagging');
        want = [];
      }

      // Restart without the fault: converges to what a clean start makes.
      const d2 = await Daemon.start(env);
      if (want.length === 0) {
        await waitFor(
          () => fs.readdirSync(tree).length === 0,
          5000,
          `the untagged tree to be empty\n${liveDaemonLogs()}`,
        ).catch((e: Error) => {
          e.message += `\n${treeListing(tree).slice(0, 20).join('\n')}`;
          throw e;
        });
        assert.deepEqual((await d2.status()).roots, []);
        await waitFor(() => linksFor(seen.ids).length === 0, 5000, 'no link left for the untagged tree');
      } else {
        await checkConverged(env, want, seen);
        assert.equal(viewCgroupId(under(tree, 'n0/m/info')), cgroupId(cg, 'n0/m'));
      }
      await d2.stop();
    });
  }
});
