/**
 * The standing gauntlet (issue 8): the daemon under churn, crashes, inotify
 * faults, hostile names, an unprivileged attacker, a flooding client and
 * failed pins, each part printing its figures. Every part makes its own
 * cgroups, bpffs directories and daemons (test/daemon.ts) and removes them,
 * and asserts only on what it made, so it runs beside anything else.
 *
 *   node dist/test/stress/gauntlet.js [--scale F] [--seconds S] [--json]
 *
 * As root. --scale 1 is the full run (the goals); --seconds bounds
 * each part's time (default 600 × scale, at least 10). test/stress/gauntlet.test.ts
 * runs a reduced one in the regular suite.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  cgroupId,
  Daemon,
  daemonEnv,
  expectedListing,
  mkCgroups,
  requestOk,
  rmCgroups,
  settle,
  treeListing,
  under,
  waitForEqual,
} from '../daemon.js';
import {
  BPF_BUILD,
  heldBpf,
  onCleanup,
  REPO,
  RssPeak,
  RUN_PREFIX,
  rssBytes,
  runCleanups,
  sleep,
  uniq,
} from '../helpers.js';

export interface GauntletOptions {
  /** 1 = the full run; the counts of every part scale with it. */
  scale: number;
  /** Time bound of each part, seconds. */
  seconds: number;
  log?: (line: string) => void;
}

export interface Figures {
  churn: { writers: number; maxDepth: number; ops: number; checks: number; exact: number; seconds: number };
  restarts: { tried: number; converged: number; ackedKept: number; ackedTotal: number; seconds: number };
  inotify: {
    overflowEpisodes: number;
    overflowsRecovered: number;
    limitEpisodes: number;
    limitRecovered: number;
  };
  names: { tried: number; refusedByCgroupfs: number; mirrored: number; reported: number; exact: boolean };
  races: {
    attempts: number;
    succeeded: number;
    outsideActions: number;
    seconds: number;
    daemonAlive: boolean;
    converged: boolean;
  };
  flood: {
    /** Offered by the one flooding client. */
    sentMb: number;
    /** Of which the kernel took for the daemon (the rest waited in the client). */
    acceptedMb: number;
    baselineMb: number;
    peakMb: number;
    afterMb: number;
    dropped: boolean;
    /** Many unprivileged clients at once (`nobody` on a 0666 socket), each pipelining without reading. */
    many: {
      clients: number;
      connected: number;
      offeredMb: number;
      acceptedMb: number;
      baselineMb: number;
      peakMb: number;
      afterMb: number;
      /** Root's status answered during the flood, and nobody's ping after it. */
      answered: boolean;
    };
  };
  failedPins: {
    tried: number;
    failed: number;
    fdsBefore: number;
    fdsAfter: number;
    progsBefore: number;
    progsAfter: number;
  };
}

const VIEWS = [{ name: 'info' }];

/** RSS in MB; 0 for a process that is gone (or a zombie, which has none). */
function rssMb(pid: number): number {
  try {
    return rssBytes(pid) / 1048576;
  } catch {
    return 0;
  }
}

/** Mirror equals cgroupfs for `views` within `ms`; false (not a throw) when not. */
async function converges(
  tree: string,
  cg: string,
  views: Array<{ name: string }>,
  ms: number,
): Promise<boolean> {
  try {
    await waitForEqual(
      () => treeListing(tree),
      () => expectedListing(cg, views),
      ms,
      'mirror',
    );
    return true;
  } catch {
    return false;
  }
}

// --- 1. churn --------------------------------------------------------------------------------

/** `writers` concurrent loops of mkdir/rmdir at depth up to `maxDepth`, each in its own subtree. */
async function churn(o: GauntletOptions): Promise<Figures['churn']> {
  const writers = 4;
  const maxDepth = 6;
  const target = Math.round(50000 * o.scale);
  const env = daemonEnv();
  const d = await Daemon.start(env);
  const cg = env.cgroupRoot;
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
  const t0 = Date.now();
  const end = t0 + o.seconds * 1000;
  let ops = 0;
  let checks = 0;
  let exact = 0;
  // Rounds of concurrent churn, each ending with a check that the mirror is exact.
  const perRound = Math.max(200, Math.round(target / 10));
  const ws = Array.from({ length: writers }, (_, w) => new Writer(path.join(cg, `w${w}`), maxDepth));
  while (ops < target && Date.now() < end) {
    const quota = Math.min(perRound, target - ops);
    const counts = await Promise.all(ws.map((w) => w.run(Math.ceil(quota / writers), end)));
    ops += counts.reduce((a, b) => a + b, 0);
    checks++;
    if (await converges(env.bpffs, cg, VIEWS, 30000)) exact++;
    else o.log?.(`churn: mirror not exact after ${ops} ops`);
  }
  await d.stop();
  return { writers, maxDepth, ops, checks, exact, seconds: (Date.now() - t0) / 1000 };
}

/** One writer: random creations and removals under its own directory, which it keeps between rounds. */
class Writer {
  readonly #dirs: string[] = ['']; // relative to root, parents before children
  #serial = 0;
  constructor(
    readonly root: string,
    readonly maxDepth: number,
  ) {}

  async run(n: number, end: number): Promise<number> {
    if (this.#serial === 0) await fs.promises.mkdir(this.root);
    const dirs = this.#dirs;
    let ops = 0;
    while (ops < n && Date.now() < end) {
      if (dirs.length < 3 || randomInt(100) < 55) {
        const parent = dirs[randomInt(dirs.length)]!;
        // root is at depth 1 under the tree's cgroup: children down to maxDepth
        if (parent !== '' && parent.split('/').length >= this.maxDepth - 1) continue;
        const rel = parent === '' ? `d${this.#serial++}` : `${parent}/d${this.#serial++}`;
        await fs.promises.mkdir(path.join(this.root, rel));
        dirs.push(rel);
      } else {
        const i = 1 + randomInt(dirs.length - 1);
        const rel = dirs[i]!;
        if (dirs.some((r) => r.startsWith(`${rel}/`))) continue; // only leaves
        await fs.promises.rmdir(path.join(this.root, rel));
        dirs.splice(i, 1);
      }
      ops++;
    }
    this.#serial ||= 1;
    return ops;
  }
}

// --- 2. kill -9 restarts ---------------------------------------------------------------------

async function restarts(o: GauntletOptions): Promise<Figures['restarts']> {
  const target = Math.round(200 * o.scale);
  const env = daemonEnv();
  const cg = env.cgroupRoot;
  const tree = env.bpffs;
  const live = new Set<string>();
  const mk = (rel: string) => {
    fs.mkdirSync(under(cg, rel));
    live.add(rel);
  };
  for (let i = 0; i < 8; i++) {
    mk(`r${i}`);
    for (let j = 0; j < 4; j++) mk(`r${i}/s${j}`);
  }
  let d = await Daemon.start(env);
  await d.ok(['pin', 'info', tree, '--inherit', '--cgroup', cg]);
  // info2 is pinned and unpinned across kills; its acknowledged state must survive each one.
  let want: 'in' | 'out' | 'unknown' = 'out';
  let tried = 0;
  let converged = 0;
  let ackedTotal = 0;
  let ackedKept = 0;
  let serial = 0;
  const t0 = Date.now();
  const end = t0 + o.seconds * 1000;
  while (tried < target && Date.now() < end) {
    tried++;
    const how = randomInt(5);
    let ack: Promise<boolean> | null = null;
    let acked: 'in' | 'out' | null = null;
    if (how === 0 || how === 1) {
      // During a pin or an unpin of the inherited info2 (it touches every directory).
      const pin = want !== 'in';
      ack = pin
        ? requestOk(env.socket, 'pin', { view: 'info', dir: tree, inherit: true, name: 'info2' })
        : requestOk(env.socket, 'unpin', { path: path.join(tree, 'info2') });
      const target2: 'in' | 'out' = pin ? 'in' : 'out';
      void ack.then((ok) => {
        if (ok) acked = target2;
      });
      // Killed at a random moment of it (how 0), or right after its answer (how 1):
      // an acknowledged request must survive the kill.
      if (how === 0) await sleep(randomInt(40));
      else await ack;
    } else if (how === 2) {
      // While cgroups come and go.
      for (let k = 0; k < 10; k++) mk(`n${serial++}`);
      await sleep(randomInt(30));
    } else {
      await sleep(randomInt(200)); // any moment of a steady daemon
    }
    await d.kill();
    if (ack) await ack;
    if (acked) {
      ackedTotal++;
      want = acked;
    } else if (ack) want = 'unknown';
    // The tree changes while the daemon is down.
    const gone = [...live].filter((r) => !r.includes('/') && r.startsWith('n'));
    for (const r of gone.slice(0, randomInt(gone.length + 1))) {
      fs.rmdirSync(under(cg, r));
      live.delete(r);
    }
    mk(`n${serial++}`);
    mk(`r${randomInt(8)}/t${serial++}`);
    // Restart: a crash point some of the time (the process kills itself mid-reconcile).
    const crashAt = randomInt(4) === 0 ? { CGVIEW_CRASH_AT: `reconcile:${1 + randomInt(5)}` } : undefined;
    if (crashAt) {
      const c = await Daemon.start(env, { env: crashAt, waitReady: false });
      await c.waitExit(20000).catch(() => c.kill());
    }
    d = await Daemon.start(env);
    const st = await d.status();
    const has2 = st.roots[0]?.inherit.some((p) => p.name === 'info2') ?? false;
    if (acked) {
      if ((acked === 'in') === has2) ackedKept++;
      else o.log?.(`restart ${tried}: acknowledged ${acked} of info2 lost`);
    }
    want = has2 ? 'in' : 'out';
    const views = has2 ? [{ name: 'info' }, { name: 'info2' }] : VIEWS;
    if (await converges(tree, cg, views, 20000)) converged++;
    else o.log?.(`restart ${tried}: did not converge`);
  }
  await d.stop();
  return { tried, converged, ackedKept, ackedTotal, seconds: (Date.now() - t0) / 1000 };
}

// --- 3. inotify overflows and watch-limit episodes (injected, src/kernel/inotify.ts) --------

async function inotifyFaults(o: GauntletOptions): Promise<Figures['inotify']> {
  const env = daemonEnv();
  const cg = env.cgroupRoot;
  const limits = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(limits, { recursive: true, force: true }));
  const queue = path.join(limits, 'queue');
  const watches = path.join(limits, 'watches');
  const d = await Daemon.start(env, {
    env: { CGVIEW_MAX_QUEUED_EVENTS: queue, CGVIEW_MAX_WATCHES: watches },
  });
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
  const episodes = Math.max(1, Math.round(10 * o.scale));
  const f = { overflowEpisodes: 0, overflowsRecovered: 0, limitEpisodes: 0, limitRecovered: 0 };
  const end = Date.now() + o.seconds * 1000;
  for (let e = 0; e < episodes && Date.now() < end; e++) {
    // Overflow: a burst while the daemon is stopped, read back through an 8-event queue.
    fs.writeFileSync(queue, '8');
    const before = (await d.status()).overflows;
    const rels: string[] = [];
    for (let p = 0; p < 15; p++) {
      rels.push(`o${e}p${p}`);
      for (let c = 0; c < 3; c++) rels.push(`o${e}p${p}/c${c}`);
    }
    d.signal('SIGSTOP');
    try {
      mkCgroups(cg, rels);
    } finally {
      d.signal('SIGCONT');
    }
    f.overflowEpisodes++;
    const ok1 = await converges(env.bpffs, cg, VIEWS, 20000);
    d.signal('SIGSTOP');
    try {
      rmCgroups(cg, rels);
    } finally {
      d.signal('SIGCONT');
    }
    const ok2 = await converges(env.bpffs, cg, VIEWS, 20000);
    fs.writeFileSync(queue, '');
    if (ok1 && ok2 && (await d.status()).overflows > before) f.overflowsRecovered++;
    else o.log?.(`overflow episode ${e}: not recovered`);

    if (e % 3 !== 0) continue; // watch-limit episodes wait for a poll (5 s): fewer of them
    // Watch limit: no new watch while cgroups are made; periodic rescans keep up; lifted, it recovers.
    const n = (await d.status()) as unknown as { watches: number };
    fs.writeFileSync(watches, String(n.watches));
    f.limitEpisodes++;
    const lrels = [`l${e}`, `l${e}/a`, `l${e}/a/b`, `l${e}/c`];
    mkCgroups(cg, lrels);
    const ok3 = await converges(env.bpffs, cg, VIEWS, 15000);
    const degraded = (await d.status()).degraded !== null;
    fs.writeFileSync(watches, '');
    let cleared = false;
    for (let i = 0; i < 150 && !cleared; i++) {
      cleared = (await d.status()).degraded === null;
      if (!cleared) await sleep(100);
    }
    rmCgroups(cg, lrels);
    const ok4 = await converges(env.bpffs, cg, VIEWS, 15000);
    if (ok3 && degraded && cleared && ok4) f.limitRecovered++;
    else o.log?.(`watch-limit episode ${e}: mirror ${ok3}, degraded ${degraded}, cleared ${cleared}, ${ok4}`);
  }
  await d.stop();
  return f;
}

// --- 4. hostile names ------------------------------------------------------------------------

/** Names cgroupfs accepts that a naive mirror gets wrong. */
function hostileNames(): Buffer[] {
  const s = (x: string) => Buffer.from(x, 'latin1');
  return [
    s('n'.repeat(255)),
    Buffer.from(`${'é'.repeat(127)}x`),
    Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x80]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from([0x80]),
    s('system.slice'),
    s('a.b.c'),
    s('.hidden'),
    s('..x'),
    s('x.'),
    s('50%'),
    s('%2E'),
    s('%25'),
    s('%'),
    s('with space'),
    s(' lead'),
    s('trail '),
    s('new\nline'),
    s('tab\there'),
    s('-n'),
    s('--help'),
    s('\\back'),
    s('quote"d'),
    s("it's"),
    s('$(id)'),
    s('*'),
    s('?'),
    s('[x]'),
    s('\x01\x02\x7f'),
    Buffer.from('日本語'),
    Buffer.from('🦀'),
    s('info2'),
    s('info'), // a view's name: reported, not mirrored
    s(`${'y'.repeat(250)}.abcd`), // 257 bytes once encoded: reported, not mirrored
  ];
}

async function names(_o: GauntletOptions): Promise<Figures['names']> {
  const env = daemonEnv();
  const cg = env.cgroupRoot;
  const d = await Daemon.start(env);
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', cg]);
  // Those cgroupfs itself refuses (EINVAL) are left out.
  const all = hostileNames().filter((n) => {
    try {
      fs.mkdirSync(Buffer.concat([Buffer.from(`${cg}/`), n]));
      return true;
    } catch {
      return false;
    }
  });
  const unmirrorable = new Set(['info', `${'y'.repeat(250)}.abcd`]);
  const rels = ['', ...all.map((n) => n.toString('latin1')).filter((n) => !unmirrorable.has(n))];
  let exact = true;
  try {
    await waitForEqual(
      () => treeListing(env.bpffs),
      () => expectedListing(cg, VIEWS, rels),
      15000,
      'hostile names',
    );
  } catch {
    exact = false;
  }
  const mirrored = rels.filter((r) => r !== '' && fs.existsSync(under(env.bpffs, treeRelOf(r)))).length;
  const conflicts = (await d.status()).roots[0]?.conflicts ?? [];
  await d.stop();
  for (const n of all) fs.rmdirSync(Buffer.concat([Buffer.from(`${cg}/`), n]));
  return {
    tried: all.length,
    refusedByCgroupfs: hostileNames().length - all.length,
    mirrored,
    reported: conflicts.length,
    exact,
  };
}

function treeRelOf(rel: string): string {
  return rel.replace(/[%.]/g, (c) => (c === '%' ? '%25' : '%2E'));
}

// --- 5. an unprivileged attacker in manual mode ----------------------------------------------

const NOBODY = { uid: 65534, gid: 65534 };

/** A listing of everything under `dirs` (type, mode, owner, links, inode, size): any action there shows. */
function snapshot(dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      out.push(`${p} gone`);
      return;
    }
    out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink} i${st.ino} s${st.size}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
  };
  for (const d of dirs) walk(d);
  return out;
}

async function races(o: GauntletOptions): Promise<Figures['races']> {
  const env = daemonEnv();
  const cg = env.cgroupRoot;
  const tree = env.bpffs;
  // The job's cgroup is delegated to nobody; its tree directory is handed over (S7).
  const job = path.join(cg, 'job');
  fs.mkdirSync(job);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'])
    fs.chownSync(path.join(job, f), NOBODY.uid, NOBODY.gid);
  const kids = Array.from({ length: 12 }, (_, i) => `k${i}`);
  for (const k of kids) fs.mkdirSync(path.join(job, k));
  for (const k of kids)
    for (const f of ['', 'cgroup.procs']) fs.chownSync(path.join(job, k, f), NOBODY.uid, NOBODY.gid);

  // Canaries outside the tree: a bpffs directory with a root-owned pinned map
  // nobody may hard-link (0666), and a /tmp directory with a file.
  const canaryBpf = path.join(env.bpffsParent, 'canary');
  fs.mkdirSync(canaryBpf);
  fs.mkdirSync(path.join(canaryBpf, 'sub'));
  const canaryPin = path.join(canaryBpf, 'pin');
  execFileSync('bpftool', [
    'map',
    'create',
    canaryPin,
    'type',
    'array',
    'key',
    '4',
    'value',
    '4',
    'entries',
    '1',
    'name',
    'canary',
  ]);
  fs.chmodSync(canaryPin, 0o666);
  const d = await Daemon.start(env);
  const canaryTmp = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(canaryTmp, { recursive: true, force: true }));
  fs.chmodSync(canaryTmp, 0o755);
  const canaryFile = path.join(canaryTmp, 'file');
  fs.writeFileSync(canaryFile, 'canary\n', { mode: 0o644 });
  const attacker = path.join(canaryTmp, 'attacker.py');
  fs.copyFileSync(path.join(REPO, 'test/stress/attacker.py'), attacker);
  fs.chmodSync(attacker, 0o644);

  await d.ok(['pin', 'info', tree, '--inherit', '--mode', 'manual', '--cgroup', cg]);
  fs.mkdirSync(path.join(tree, 'job'));
  await waitForEqual(
    () => fs.lstatSync(path.join(tree, 'job')).uid,
    () => NOBODY.uid,
    5000,
    'job/ handed over',
  );
  const before = snapshot([canaryBpf, canaryTmp]);
  const target = Math.round(100000 * o.scale);
  const t0 = Date.now();
  const end = t0 + o.seconds * 1000;
  let attempts = 0;
  let succeeded = 0;
  let outside = 0;
  let round = 0;
  while (attempts < target && Date.now() < end) {
    const n = Math.min(target - attempts, Math.max(2000, Math.round(target / 10)));
    const secs = Math.max(1, (end - Date.now()) / 1000);
    // Root churns the job's cgroups meanwhile, so the daemon has work in the directories under attack.
    let churning = true;
    const thisRound = round++;
    const churner = (async () => {
      for (let i = 0; churning; i++) {
        const p = path.join(job, `t${thisRound}x${i}`);
        await fs.promises.mkdir(p).catch(() => {});
        await sleep(5);
        await fs.promises.rmdir(p).catch(() => {});
      }
    })();
    const r = await runAttacker(attacker, [
      path.join(tree, 'job'),
      canaryBpf,
      canaryPin,
      canaryFile,
      kids.join(','),
      String(n),
      String(secs),
      String(thisRound),
    ]);
    churning = false;
    await churner;
    attempts += r.attempts;
    succeeded += r.succeeded;
    // Let the daemon finish what the attack left it, then look at the canaries.
    await requestOk(env.socket, 'rescan');
    await settle(tree, null, 15000);
    const now = snapshot([canaryBpf, canaryTmp]);
    const changed =
      now.filter((l) => !before.includes(l)).length + before.filter((l) => !now.includes(l)).length;
    if (changed) o.log?.(`races: canaries changed:\n${now.join('\n')}`);
    outside += changed;
  }
  const daemonAlive = d.exit === null;
  // Afterwards the tree is sound again: a fresh mkdir of each kid by its owner gets its view.
  let converged = false;
  if (daemonAlive) {
    for (const k of kids) {
      const p = path.join(tree, 'job', k);
      try {
        const st = fs.lstatSync(p);
        if (!st.isDirectory()) fs.rmSync(p, { force: true });
      } catch {
        /* absent */
      }
      try {
        fs.mkdirSync(p);
      } catch {
        /* there */
      }
    }
    try {
      await waitForEqual(
        () => kids.map((k) => fs.existsSync(path.join(tree, 'job', k, 'info'))),
        () => kids.map(() => true),
        15000,
        'views back in every kid',
      );
      converged = kids.every(
        (k) =>
          fs.lstatSync(path.join(tree, 'job', k, 'info')).isFile() &&
          treeListing(path.join(tree, 'job', k)).some((l) => l.includes(`cgroup_id=${cgroupId(job, k)}`)),
      );
    } catch {
      converged = false;
    }
  }
  await d.stop();
  return {
    attempts,
    succeeded,
    outsideActions: outside,
    seconds: (Date.now() - t0) / 1000,
    daemonAlive,
    converged,
  };
}

function runAttacker(script: string, args: string[]): Promise<{ attempts: number; succeeded: number }> {
  return new Promise((resolve) => {
    const c = spawn(
      'setpriv',
      [
        `--reuid=${NOBODY.uid}`,
        `--regid=${NOBODY.gid}`,
        '--clear-groups',
        '--',
        '/usr/bin/python3',
        script,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    c.on('exit', () => {
      const [n, ok] = out.trim().split(' ').map(Number);
      resolve({ attempts: n || 0, succeeded: ok || 0 });
    });
  });
}

// --- 6. a flooding client --------------------------------------------------------------------

/** Pipelines requests and never reads the answers; the daemon's RSS is sampled throughout. */
async function flood(o: GauntletOptions): Promise<Figures['flood']> {
  const env = daemonEnv();
  const d = await Daemon.start(env);
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
  mkCgroups(env.cgroupRoot, ['a', 'b', 'c']);
  const mem = new RssPeak(d.pid);
  const baselineMb = mem.base / 1048576;
  const limitBytes = Math.round(28 * 1024 * 1024 * Math.max(0.1, o.scale));
  const chunk = Buffer.from('{"op":"status"}\n'.repeat(4096));
  let sent = 0;
  let dropped = false;
  const c = net.connect(env.socket);
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  c.on('error', () => {
    dropped = true;
  });
  c.on('close', () => {
    dropped = true;
  });
  c.pause(); // never read the answers
  // Everything is offered at once (the same buffer queued again and again in
  // this process): what the daemon takes is up to it.
  while (sent < limitBytes && !dropped) {
    c.write(chunk);
    sent += chunk.length;
  }
  const end = Date.now() + Math.min(o.seconds, 5) * 1000;
  while (Date.now() < end && !dropped) await sleep(100);
  const accepted = sent - c.writableLength;
  const droppedByDaemon = dropped; // before our own destroy() closes it
  c.destroy();
  await sleep(1000);
  const afterMb = d.exit ? 0 : rssMb(d.pid);
  mem.stop();
  const peakMb = Math.max(mem.peak / 1048576, afterMb);
  await d.stop().catch(() => d.kill());
  const many = await floodMany(o);
  return {
    sentMb: sent / 1024 / 1024,
    acceptedMb: accepted / 1024 / 1024,
    baselineMb,
    peakMb,
    afterMb,
    dropped: droppedByDaemon,
    many,
  };
}

/**
 * A child run as `nobody`: opens N connections, each writing the same
 * buffer of status requests TIMES times and never reading. It prints
 * `ready` once all are connected (or closed), and on `report` on its stdin
 * one JSON line: bytes offered, bytes that left it (taken by the kernel for
 * the daemon), connections connected.
 */
const MANY_SCRIPT = `
const net = require('node:net');
const [file, n, mib, times] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
const chunk = Buffer.from('{"op":"status"}\\n'.repeat(Math.round((mib * 1048576) / 16)));
const socks = [];
let settled = 0, connected = 0, offered = 0;
for (let i = 0; i < n; i++) {
  const c = net.connect(file);
  socks.push(c);
  let done = false;
  const settle = () => { if (!done) { done = true; if (++settled === n) process.stdout.write('ready\\n'); } };
  c.on('error', () => {});
  c.on('close', settle);
  c.on('connect', () => {
    connected++;
    c.pause();
    // In 16 KiB views of the one buffer: what a socket still holds is then
    // what the kernel has not taken, to within 16 KiB.
    for (let k = 0; k < times; k++)
      for (let off = 0; off < chunk.length; off += 16384) c.write(chunk.subarray(off, off + 16384));
    offered += times * chunk.length;
    settle();
  });
}
process.stdin.on('data', () => {
  let accepted = 0;
  for (const c of socks) accepted += c.destroyed ? 0 : times * chunk.length - c.writableLength;
  process.stdout.write(JSON.stringify({ offered, accepted, connected }) + '\\n');
});
`;

/** Many clients of `nobody` at once on a 0666 socket, each pipelining 1 MiB three times and never reading. */
async function floodMany(o: GauntletOptions): Promise<Figures['flood']['many']> {
  const env = daemonEnv();
  fs.chmodSync(path.dirname(env.socket), 0o711);
  // One uid may hold them all: what is tried is the budget over all clients, not the cap per uid.
  const d = await Daemon.start(env, {
    args: ['--socket-mode', '666'],
    env: { CGVIEW_MAX_CLIENTS_PER_UID: '1000' },
  });
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
  const clients = Math.max(50, Math.min(900, Math.round(400 * Math.max(0.25, o.scale))));
  const mem = new RssPeak(d.pid);
  const baselineMb = mem.base / 1048576;
  const child = spawn(process.execPath, ['-e', MANY_SCRIPT, env.socket, String(clients), '1', '3'], {
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (x: string) => {
    out += x;
    for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
      lines.push(out.slice(0, i));
      out = out.slice(i + 1);
    }
  });
  const line = async (n: number, ms: number) => {
    const end = Date.now() + ms;
    while (lines.length < n && Date.now() < end && child.exitCode === null) await sleep(50);
    return lines[n - 1];
  };
  let answered = false;
  let figures = { offered: 0, accepted: 0, connected: 0 };
  try {
    await line(1, Math.min(60, o.seconds) * 1000);
    // Let the daemon take what it will; stop early if it grows past reason.
    for (let i = 0; i < 30 && mem.peak / 1048576 - baselineMb < 600; i++) await sleep(100);
    answered = await requestOk(env.socket, 'status', {}, 20000);
    child.stdin!.write('report\n');
    const r = await line(2, 10000);
    if (r) figures = JSON.parse(r) as typeof figures;
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise<void>((resolve) =>
    child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
  // Unprivileged peers are served again once the flood is gone.
  const after = await new Promise<boolean>((resolve) => {
    const c = spawn(
      process.execPath,
      [
        '-e',
        `const c=require('node:net').connect(process.argv[1]);c.on('data',(d)=>{process.exit(String(d).startsWith('{"ok":true')?0:1)});c.on('error',()=>process.exit(2));c.write('{"op":"ping"}\\n');setTimeout(()=>process.exit(3),20000);`,
        env.socket,
      ],
      { uid: NOBODY.uid, gid: NOBODY.gid, stdio: 'ignore' },
    );
    c.on('exit', (code) => resolve(code === 0));
  });
  const afterMb = d.exit ? 0 : rssMb(d.pid);
  mem.stop();
  const peakMb = Math.max(mem.peak / 1048576, afterMb);
  await d.stop().catch(() => d.kill());
  return {
    clients,
    connected: figures.connected,
    offeredMb: figures.offered / 1048576,
    acceptedMb: figures.accepted / 1048576,
    baselineMb,
    peakMb,
    afterMb,
    answered: answered && after,
  };
}

// --- 7. failed pins --------------------------------------------------------------------------

/**
 * Pins that fail, 20 copies each: a program the verifier refuses; an object
 * that loads but whose program is no view; a view pinned where it cannot be.
 */
async function failedPins(o: GauntletOptions): Promise<Figures['failedPins']> {
  const env = daemonEnv();
  const d = await Daemon.start(env);
  await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const copies = Math.max(2, Math.round(20 * Math.min(1, o.scale * 4)));
  // Warm up the request path first, so that what is counted is what failures leave.
  await d.cli(['pin', `${path.join(BPF_BUILD, 'test_bad.bpf.o')}:test_bad`, path.join(env.bpffs, 'a')]);
  const before = heldBpf(d.pid);
  let tried = 0;
  let failed = 0;
  for (let i = 0; i < copies; i++) {
    const bad = path.join(dir, `bad${i}.bpf.o`);
    fs.copyFileSync(path.join(BPF_BUILD, 'test_bad.bpf.o'), bad);
    const good = path.join(dir, `good${i}.bpf.o`);
    fs.copyFileSync(path.join(BPF_BUILD, 'info.bpf.o'), good);
    const collector = path.join(dir, `collector${i}.bpf.o`);
    fs.copyFileSync(path.join(BPF_BUILD, 'sched_lat_collector.bpf.o'), collector);
    for (const [view, where] of [
      [`${bad}:test_bad`, env.bpffs],
      // Loads (five tracing programs), then is refused: not an iter/cgroup program.
      [`${collector}:sl_switch`, env.bpffs],
      // Loads, then cannot be pinned: a directory of the tree that mirrors no cgroup.
      [`${good}:info`, path.join(env.bpffs, uniq('nomatch'))],
    ] as const) {
      tried++;
      const r = await d.cli(['pin', view, where, '--name', `x${i}`]);
      if (r.code !== 0) failed++;
    }
  }
  // Each pin was answered before the next: what the daemon holds now is what failures left.
  const after = heldBpf(d.pid);
  await d.stop();
  return {
    tried,
    failed,
    fdsBefore: before.fds,
    fdsAfter: after.fds,
    progsBefore: before.progs.size,
    progsAfter: after.progs.size,
  };
}

// --- the whole run ---------------------------------------------------------------------------

export const PARTS = ['churn', 'restarts', 'inotify', 'names', 'races', 'flood', 'failedPins'] as const;
export type Part = (typeof PARTS)[number];

export async function runGauntlet(
  o: GauntletOptions,
  only: readonly Part[] = PARTS,
): Promise<Partial<Figures>> {
  const f: Partial<Figures> = {};
  const step = async <K extends Part>(k: K, fn: (o: GauntletOptions) => Promise<Figures[K]>) => {
    if (!only.includes(k)) return;
    const t = Date.now();
    f[k] = await fn(o);
    o.log?.(`${k} (${((Date.now() - t) / 1000).toFixed(1)} s): ${JSON.stringify(f[k])}`);
  };
  await step('churn', churn);
  await step('restarts', restarts);
  await step('inotify', inotifyFaults);
  await step('names', names);
  await step('races', races);
  await step('flood', flood);
  await step('failedPins', failedPins);
  return f;
}

/** The figures as the lines RESULTS.md records. */
export function report(f: Partial<Figures>): string {
  const l: string[] = [];
  if (f.churn)
    l.push(
      `churn: ${f.churn.ops} operations by ${f.churn.writers} writers at depth <= ${f.churn.maxDepth} in ${f.churn.seconds.toFixed(0)} s; mirror exact at ${f.churn.exact}/${f.churn.checks} checks`,
    );
  if (f.restarts)
    l.push(
      `kill -9 restarts: ${f.restarts.converged}/${f.restarts.tried} converged; acknowledged pin/unpin kept ${f.restarts.ackedKept}/${f.restarts.ackedTotal} (${f.restarts.seconds.toFixed(0)} s)`,
    );
  if (f.inotify)
    l.push(
      `inotify: overflow episodes recovered ${f.inotify.overflowsRecovered}/${f.inotify.overflowEpisodes}; watch-limit episodes recovered ${f.inotify.limitRecovered}/${f.inotify.limitEpisodes}`,
    );
  if (f.names)
    l.push(
      `hostile names: ${f.names.mirrored} mirrored exactly of ${f.names.tried} made (${f.names.reported} reported as not mirrorable, ${f.names.refusedByCgroupfs} refused by cgroupfs); listing exact: ${f.names.exact}`,
    );
  if (f.races)
    l.push(
      `races by nobody (manual mode): ${f.races.attempts} attempts (${f.races.succeeded} of their file operations succeeded) in ${f.races.seconds.toFixed(0)} s, actions outside the tree ${f.races.outsideActions}; daemon alive ${f.races.daemonAlive}, views back ${f.races.converged}`,
    );
  if (f.flood)
    l.push(
      `flooding client: ${f.flood.sentMb.toFixed(1)} MiB pipelined unread (${f.flood.acceptedMb.toFixed(1)} MiB accepted); daemon RSS ${f.flood.baselineMb.toFixed(0)} MB before, peak ${f.flood.peakMb.toFixed(0)} MB, ${f.flood.afterMb.toFixed(0)} MB after; connection dropped by the daemon: ${f.flood.dropped}`,
      `${f.flood.many.clients} flooding clients of nobody at once (${f.flood.many.connected} connected): ${f.flood.many.offeredMb.toFixed(0)} MiB offered, ${f.flood.many.acceptedMb.toFixed(1)} MiB accepted; daemon RSS ${f.flood.many.baselineMb.toFixed(0)} MB before, peak ${f.flood.many.peakMb.toFixed(0)} MB, ${f.flood.many.afterMb.toFixed(0)} MB after; still answering: ${f.flood.many.answered}`,
    );
  if (f.failedPins)
    l.push(
      `failed pins: ${f.failedPins.failed}/${f.failedPins.tried} failed; daemon descriptors ${f.failedPins.fdsBefore} -> ${f.failedPins.fdsAfter}, programs held ${f.failedPins.progsBefore} -> ${f.failedPins.progsAfter}`,
    );
  return l.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const scale = Number(arg('scale') ?? '1');
  const seconds = Number(arg('seconds') ?? String(Math.max(10, Math.round(600 * scale))));
  const only = (arg('only')?.split(',') as Part[] | undefined) ?? PARTS;
  const stop = () => {
    runCleanups();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const t = Date.now();
  try {
    const f = await runGauntlet({ scale, seconds, log: (s) => console.error(`[gauntlet] ${s}`) }, only);
    console.log(`gauntlet --scale ${scale} --seconds ${seconds} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
    console.log(process.argv.includes('--json') ? JSON.stringify(f, null, 2) : report(f));
  } finally {
    runCleanups();
  }
}
