/**
 * The conversion on the real kernel: a fixture view (bpf/test_export.bpf.c)
 * printing every kind of key, info from the daemon's model against the info
 * view files, names with dots and quotes, a cgroup in two trees, a v1
 * hierarchy, and the collectors' kernel cost with BPF stats enabled through
 * BPF_ENABLE_STATS (held by this test only: fd-scoped, not the sysctl).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unlabelPath } from '../../src/export/families.js';
import {
  enableRunTimeStats,
  type Fd,
  linkInfo,
  listDir,
  objGetAt,
  openDir,
  progFdById,
  progInfo,
} from '../../src/kernel/index.js';
import { Daemon, type DaemonEnv, daemonEnv, waitForAsync } from '../daemon.js';
import {
  BPF_BUILD,
  CGROUP_V1_CPU,
  CGROUP2,
  onCleanup,
  RUN_PREFIX,
  tmpBpffsDir,
  waitFor,
} from '../helpers.js';
import { promtoolCheckMetrics } from '../prometheus.js';
import { killTasks, listeningDaemon, parseExposition, pick, scrape, spinners } from './util.js';

const rel = (root: string, cg: string) => `/${path.relative(root, cg)}`;

function viewLines(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of fs.readFileSync(file, 'latin1').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) out.set(l.slice(0, i), l.slice(i + 1).trim());
  }
  return out;
}

describe('the conversion on real views', () => {
  let env: DaemonEnv;
  let d: Daemon;
  let url: string;
  const FIXTURE = `${BPF_BUILD}/test_export.bpf.o:test_export`;

  before(async () => {
    env = daemonEnv();
    for (const n of ['a.b.c', 'odd "name\\', 'svc.service', 'svc.service/sub'])
      fs.mkdirSync(path.join(env.cgroupRoot, n));
    ({ d, url } = await listeningDaemon(env));
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', FIXTURE, env.bpffs, '--inherit']);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await waitFor(
      () => fs.existsSync(path.join(env.bpffs, 'svc%2Eservice', 'sub', 'test_export')),
      5000,
      'pins',
    );
  });

  it('a view following the conventions gets typed metrics with no configuration', async () => {
    const cg = path.join(env.cgroupRoot, 'a.b.c');
    const where = { cgroup: rel(CGROUP2, cg) };
    const s = parseExposition(await scrape(url));
    const one = (n: string, extra: Record<string, string> = {}) => {
      const x = pick(s, n, { ...where, ...extra });
      assert.equal(x.length, 1, `${n}: ${x.length} series`);
      return x[0]!;
    };
    const file = viewLines(path.join(env.bpffs, 'a%2Eb%2Ec', 'test_export'));
    assert.equal(one('cgview_test_export_level').value, Number(file.get('level')));
    assert.equal(one('cgview_test_export_events_total').value, 42);
    assert.equal(one('cgview_test_export_busy_seconds_total').value, 1.5);
    assert.equal(one('cgview_test_export_last_seconds').value, 2e-6);
    assert.deepEqual(
      pick(s, 'cgview_test_export_size_bucket', where).map((x) => [x.labels['le'], x.value]),
      [
        ['10', 1],
        ['100', 3],
        ['+Inf', 4],
      ],
    );
    assert.equal(one('cgview_test_export_size_sum').value, 250);
    assert.equal(one('cgview_test_export_size_count').value, 4);
    // lat_ns: 1024, 2048, 4096 ns: in seconds; with the default bucket set, the bounds nearest to 1.024 µs and 4.096 µs.
    assert.deepEqual(
      pick(s, 'cgview_test_export_lat_seconds_bucket', where).map((x) => [x.labels['le'], x.value]),
      [
        ['1.024e-06', 1],
        ['4.096e-06', 2],
        ['+Inf', 3],
      ],
    );
    assert.equal(one('cgview_test_export_lat_seconds_sum').value, 1e-5);
    assert.equal(one('cgview_test_export_lat_seconds_count').value, 3);
    // Indexed keys: the cgroup id of the culprit family gets its path.
    const own = one('cgview_test_export_culprit_seconds_total', { culprit: file.get('cgroup_id')! });
    assert.equal(own.value, 1);
    assert.equal(own.labels['culprit_path'], where.cgroup);
    assert.equal(one('cgview_test_export_culprit_seconds_total', { culprit: 'rest' }).value, 3);
    // Not exported: text (name), percentiles, the legacy key, lines a histogram uses.
    for (const n of [
      'name',
      'p99',
      'p99_seconds',
      'queue_self',
      'lat_count',
      'lat_seconds_total',
      'size_total',
    ])
      assert.equal(pick(s, `cgview_test_export_${n}`, {}).length, 0, n);
  });

  it('cgroup labels carry real names; cgview_cgroup_info is what each info view prints', async () => {
    const s = parseExposition(await scrape(url));
    for (const n of ['', 'a.b.c', 'odd "name\\', 'svc.service', 'svc.service/sub']) {
      const cg = n ? path.join(env.cgroupRoot, n) : env.cgroupRoot;
      const tree = path.join(
        env.bpffs,
        ...n
          .split('/')
          .filter(Boolean)
          .map((c) => c.replaceAll('%', '%25').replaceAll('.', '%2E')),
      );
      const file = viewLines(path.join(tree, 'info'));
      const i = pick(s, 'cgview_cgroup_info', { cgroup: rel(CGROUP2, cg) });
      assert.equal(i.length, 1, n);
      assert.equal(i[0]!.labels['cgroup_id'], file.get('cgroup_id'));
      assert.equal(i[0]!.labels['level'], file.get('level'));
      assert.equal(i[0]!.labels['hierarchy'], 'v2');
      assert.equal(file.get('name'), path.basename(cg));
    }
    // A cgroup below a unit has the unit's label.
    assert.equal(
      pick(s, 'cgview_cgroup_info', {
        cgroup: rel(CGROUP2, path.join(env.cgroupRoot, 'svc.service/sub')),
      })[0]!.labels['unit'],
      'svc.service',
    );
  });

  it('a cgroup in two trees: each view once, from the first tree', async () => {
    const sub = path.join(env.cgroupRoot, 'svc.service');
    const treeB = path.join(tmpBpffsDir(), 'b');
    await d.ok(['pin', 'sched_lat', treeB, '--inherit', '--cgroup', sub]);
    await waitFor(() => fs.existsSync(path.join(treeB, 'sub', 'sched_lat')), 5000, 'second tree');
    const s = parseExposition(await scrape(url));
    for (const cg of [sub, path.join(sub, 'sub')]) {
      assert.equal(pick(s, 'cgview_sched_lat_wait_seconds_count', { cgroup: rel(CGROUP2, cg) }).length, 1);
      assert.equal(pick(s, 'cgview_cgroup_info', { cgroup: rel(CGROUP2, cg) }).length, 1);
    }
    await d.ok(['unpin', path.join(treeB, 'sched_lat')]);
  });

  it('concurrent scrapes share one snapshot', async () => {
    // Past the cache window of the scrapes before.
    await new Promise((r) => setTimeout(r, 600));
    const before = parseExposition(await scrape(url));
    await new Promise((r) => setTimeout(r, 600));
    // 8: the most connections --listen keeps for one address (docs/operations.md).
    const bodies = await Promise.all(Array.from({ length: 8 }, () => scrape(url)));
    // One snapshot and one body for all 8 (the daemon's own figures in it are the first's).
    for (const b of bodies) assert.equal(b, bodies[0]);
    await new Promise((r) => setTimeout(r, 600));
    const after = parseExposition(await scrape(url));
    const v = (x: ReturnType<typeof parseExposition>, n: string) => pick(x, n, {})[0]!.value;
    // One snapshot for the 8 and one for this scrape.
    assert.equal(v(after, 'cgview_daemon_snapshots_total') - v(before, 'cgview_daemon_snapshots_total'), 2);
    assert.equal(v(after, 'cgview_daemon_scrapes_total') - v(before, 'cgview_daemon_scrapes_total'), 9);
  });

  describe("collectors' kernel cost", () => {
    let stats: Fd | null = null;
    let pids: number[] = [];
    before(() => {
      stats = enableRunTimeStats();
    });
    after(() => {
      stats?.close();
      killTasks(pids);
    });

    /** run_cnt / run_time_ns of the sched_lat collector's programs, from its pinned links. */
    function truth(): Map<string, { cnt: bigint; ns: bigint }> {
      const out = new Map<string, { cnt: bigint; ns: bigint }>();
      const dir = openDir(path.join(env.privateDir, 'sched_lat@0'));
      try {
        for (const e of listDir(dir)) {
          if (!e.name.startsWith('link_')) continue;
          const l = objGetAt(dir, e.name)!;
          const p = progFdById(linkInfo(l).progId);
          const pi = progInfo(p);
          out.set(e.name.slice(5), { cnt: pi.runCnt, ns: pi.runTimeNs });
          p.close();
          l.close();
        }
      } finally {
        dir.close();
      }
      return out;
    }

    it('cgview_daemon_collector_runs_total and _run_seconds_total per program, between two readings of the kernel', async () => {
      pids = await spinners(path.join(env.cgroupRoot, 'a.b.c'), 2);
      await new Promise((r) => setTimeout(r, 1000));
      const a = truth();
      // Past the scrape cache (500 ms) so that the figures are read after `a`.
      await new Promise((r) => setTimeout(r, 600));
      const s = parseExposition(await scrape(url));
      const b = truth();
      assert.ok(a.size >= 3);
      for (const [prog, x] of a) {
        const y = b.get(prog)!;
        const runs = pick(s, 'cgview_daemon_collector_runs_total', {
          collector: 'sched_lat@0',
          program: prog,
        });
        const secs = pick(s, 'cgview_daemon_collector_run_seconds_total', {
          collector: 'sched_lat@0',
          program: prog,
        });
        assert.equal(runs.length, 1, prog);
        assert.ok(
          runs[0]!.value >= Number(x.cnt) && runs[0]!.value <= Number(y.cnt),
          `${prog}: ${runs[0]!.value} not in [${x.cnt}, ${y.cnt}]`,
        );
        assert.ok(secs[0]!.value >= Number(x.ns) / 1e9 && secs[0]!.value <= Number(y.ns) / 1e9, prog);
      }
      // sched_switch runs all the time with two loops sharing a CPU.
      assert.ok(Number(b.get('sl_switch')!.cnt) > 0);
    });
  });
});

describe('a v1 hierarchy', () => {
  it('hierarchy is the controllers, cgroup the path in that hierarchy', async () => {
    const env = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    fs.mkdirSync(path.join(env.cgroupRoot, 'x.scope'));
    const { d, url } = await listeningDaemon(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await waitFor(() => fs.existsSync(path.join(env.bpffs, 'x%2Escope', 'sched_lat')), 5000, 'pins');
    const s = parseExposition(await scrape(url));
    const want = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === CGROUP_V1_CPU)!
      .split(' - ')[1]!
      .split(' ')[2]!
      .split(',')
      .filter((o) => o !== 'rw' && o !== 'ro' && !o.includes('='))
      .join(',');
    const cg = rel(CGROUP_V1_CPU, path.join(env.cgroupRoot, 'x.scope'));
    const i = pick(s, 'cgview_cgroup_info', { cgroup: cg });
    assert.equal(i.length, 1);
    assert.equal(i[0]!.labels['hierarchy'], want);
    assert.equal(i[0]!.labels['unit'], 'x.scope');
    assert.equal(pick(s, 'cgview_sched_lat_wait_seconds_count', { cgroup: cg, hierarchy: want }).length, 1);
    await d.stop();
  });
});

describe('--metrics-config', () => {
  it('selects cgroups and views; a wrong file stops start-up naming the mistake', async () => {
    const env = daemonEnv();
    for (const n of ['keep.service', 'drop.service', 'keep.service/deep'])
      fs.mkdirSync(path.join(env.cgroupRoot, n));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cfg = path.join(dir, 'metrics.json');
    const top = rel(CGROUP2, env.cgroupRoot);
    fs.writeFileSync(
      cfg,
      JSON.stringify({
        include: [`${top}/**`],
        exclude: ['/**/drop.service'],
        max_depth: top.split('/').length,
        views: ['info'],
      }),
    );
    const { d, url } = await listeningDaemon(env, { args: ['--metrics-config', cfg] });
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    await waitFor(
      () => fs.existsSync(path.join(env.bpffs, 'keep%2Eservice', 'deep', 'sched_lat')),
      5000,
      'pins',
    );
    const s = parseExposition(await scrape(url));
    const cgs = pick(s, 'cgview_cgroup_info', {})
      .map((x) => x.labels['cgroup'])
      .sort();
    assert.deepEqual(cgs, [top, `${top}/keep.service`]); // drop excluded, deep past max_depth
    assert.equal(s.filter((x) => x.name.startsWith('cgview_sched_lat_')).length, 0);
    await d.stop();
    fs.writeFileSync(cfg, '{"include": ["/"], "bukets": "all"}');
    const bad = await Daemon.start(daemonEnv(), {
      args: ['--listen', '127.0.0.1:0', '--metrics-config', cfg],
      waitReady: false,
    });
    const exit = await bad.exited;
    assert.notEqual(exit.code, 0);
    assert.match(bad.stderr, /unknown key "bukets"/);
  });
});

describe('cgroup names that are not UTF-8', () => {
  it('each is its own series, its label the reversible escape (\\xNN), promtool clean', async () => {
    const env = daemonEnv();
    // bad\xff, bad\xfe (invalid UTF-8), bad\xef\xbf\xbd (valid: U+FFFD), bad\xc3 with a literal backslash.
    const names = [
      Buffer.from([0x62, 0x61, 0x64, 0xff]),
      Buffer.from([0x62, 0x61, 0x64, 0xfe]),
      Buffer.from([0x62, 0x61, 0x64, 0xef, 0xbf, 0xbd]),
      Buffer.from([0x62, 0x5c, 0xc3]),
    ];
    const ids: string[] = [];
    for (const n of names) {
      const p = Buffer.concat([Buffer.from(`${env.cgroupRoot}/`), n]);
      fs.mkdirSync(p);
      ids.push(String(fs.statSync(p, { bigint: true }).ino));
    }
    const { d, url } = await listeningDaemon(env);
    await d.ok(['pin', 'info', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    const want = ['bad\\xff', 'bad\\xfe', 'bad\uFFFD', 'b\\\\\\xc3'].map(
      (n) => `${rel(CGROUP2, env.cgroupRoot)}/${n}`,
    );
    let body = '';
    await waitForAsync(
      async () => {
        body = await scrape(url);
        const s = parseExposition(body);
        return want.every((c) => pick(s, 'cgview_sched_lat_wait_seconds_count', { cgroup: c }).length === 1);
      },
      10000,
      'a sched_lat series for each cgroup',
    );
    const s = parseExposition(body);
    for (let i = 0; i < names.length; i++) {
      const info = pick(s, 'cgview_cgroup_info', { cgroup: want[i]! });
      assert.equal(info.length, 1, want[i]);
      assert.equal(info[0]!.labels['cgroup_id'], ids[i], want[i]);
      // The label reads back as the name's bytes.
      const back = unlabelPath(want[i]!.slice(want[i]!.lastIndexOf('/') + 1));
      assert.deepEqual(Buffer.from(back, 'latin1'), names[i]);
    }
    assert.equal(promtoolCheckMetrics(body).output, '');
  });
});

describe('name clashes on a real daemon', () => {
  it("a user object's program named sched_lat is cgview_user_sched_lat_*, the built-in keeps cgview_sched_lat_*", async () => {
    const env = daemonEnv();
    fs.mkdirSync(path.join(env.cgroupRoot, 'w'));
    const { d, url } = await listeningDaemon(env);
    // The user object first: it must not take the built-in's names (nor its place in the cgroup's views).
    await d.ok(['pin', `${BPF_BUILD}/sched_lat.bpf.o:sched_lat`, env.bpffs, '--inherit', '--name', 'mine']);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit']);
    const cgroup = rel(CGROUP2, path.join(env.cgroupRoot, 'w'));
    let body = '';
    await waitForAsync(
      async () => {
        body = await scrape(url);
        const s = parseExposition(body);
        return (
          pick(s, 'cgview_sched_lat_wait_seconds_count', { cgroup }).length === 1 &&
          pick(s, 'cgview_user_sched_lat_wait_seconds_count', { cgroup }).length === 1
        );
      },
      10000,
      'both views exported',
    );
    const s = parseExposition(body);
    assert.equal(pick(s, 'cgview_daemon_name_conflicts', {})[0]!.value, 0);
    assert.match(body, /^# HELP cgview_sched_lat_wait_seconds Time tasks of the cgroup waited/m);
    assert.match(
      body,
      /^# HELP cgview_user_sched_lat_wait_seconds From the user_sched_lat view's wait_ns line/m,
    );
    assert.equal(promtoolCheckMetrics(body).output, '');
  });
});
