/**
 * The view kit on the real kernel (issue 12, item 1): new-view
 * --with-collector → cgview build → pin --inherit through a test daemon →
 * counts on new cgroups, checked against the kernel's own context-switch
 * counters of a task the test runs → daemon restart → the counts go on from
 * where they were. A broken source is E_BUILD with clang's message; a
 * collector the verifier rejects is E_VERIFIER and leaves no pin, link or
 * map; a second pin of an unchanged source is a build cache hit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { viewSource } from '../../src/cli/new-view.js';
import { request } from '../../src/daemon/protocol.js';
import { isCgviewError } from '../../src/errors.js';
import { linkInfoById, progFdById } from '../../src/kernel/index.js';
import { classifyView } from '../../src/stats/keys.js';
import { parseViewOutput } from '../../src/views/parse.js';
import { cgroupId, Daemon, type DaemonEnv, daemonEnv, pinnedLinkId, type RunResult } from '../daemon.js';
import {
  CGROUP_V1_CPU,
  CGVIEW,
  iterLinksOf,
  onCleanup,
  REPO,
  RUN_PREFIX,
  sleep,
  waitFor,
} from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
// The build cache of this file's runs (root's, inside the test's own directory).
const CACHE = path.join(tmp, 'cache');

/** bin/cgview in `cwd` with the test's build cache. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<RunResult> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CGVIEW_')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CGVIEW, ...args],
      { cwd, encoding: 'utf8', timeout: 60000, env: { ...clean, CGVIEW_CACHE_DIR: CACHE, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

async function ok(args: string[], cwd: string): Promise<RunResult> {
  const r = await cli(args, cwd);
  assert.equal(r.code, 0, `cgview ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function workDir(): string {
  const d = fs.mkdtempSync(path.join(tmp, 'w'));
  fs.chmodSync(d, 0o755);
  return d;
}

/**
 * A task that joins `cgroup`, then context-switches `n` times (sleeps) for
 * every line it reads. Its kernel counters (voluntary + involuntary context
 * switches from /proc/PID/status, on-CPU ns from /proc/PID/schedstat) are
 * read by the test while it waits on its stdin, when they are up to date.
 */
class Switcher {
  readonly child: ChildProcess;
  #out = '';
  constructor(cgroup: string) {
    const py = `
import os, sys, time
open(sys.argv[1] + '/cgroup.procs', 'w').write(str(os.getpid()))
print('ready', flush=True)
for line in sys.stdin:
    for i in range(int(line)):
        time.sleep(0.0005)
    print('ready', flush=True)
`;
    this.child = spawn('python3', ['-c', py, cgroup], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.#out += s;
    });
    const pid = this.child.pid!;
    onCleanup(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
  }
  /** Waits until the task waits on its stdin; then its counters: [switches, on-CPU ns]. */
  async report(): Promise<[number, number]> {
    await waitFor(
      () => {
        const i = this.#out.indexOf('\n');
        if (i < 0) return false;
        this.#out = this.#out.slice(i + 1);
        return true;
      },
      20000,
      'the switcher ready',
    );
    const pid = this.child.pid!;
    // Off its CPU, in read(2): then its counters and its last slice are final. "State: S" alone
    // is not enough (it is set before the task calls schedule()), so: a wait channel (the kernel
    // gives one only once the task is dequeued) and the same counters twice, 20 ms apart.
    const counters = (): [number, number] | null => {
      const st = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
      if (!/^State:\s+S/m.test(st)) return null;
      const wchan = fs.readFileSync(`/proc/${pid}/wchan`, 'latin1');
      if (wchan === '' || wchan === '0') return null;
      const v = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)![1]);
      const n = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)![1]);
      const ns = Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[0]);
      return [v + n, ns];
    };
    const end = Date.now() + 10000;
    for (;;) {
      const a = counters();
      await sleep(20);
      const b = counters();
      if (a && b && a[0] === b[0] && a[1] === b[1]) return b;
      assert.ok(Date.now() < end, 'the switcher never settled in read(2)');
    }
  }
  async round(n: number): Promise<[number, number]> {
    this.child.stdin!.write(`${n}\n`);
    return this.report();
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

function view(file: string): Record<string, string> {
  return Object.fromEntries(parseViewOutput(fs.readFileSync(file, 'latin1')));
}

/** The daemon's descriptors as BPF ids: programs, links, maps (/proc/PID/fdinfo). */
function heldIds(pid: number): { progs: Set<number>; links: Set<number>; maps: Set<number> } {
  const out = { progs: new Set<number>(), links: new Set<number>(), maps: new Set<number>() };
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    let t: string;
    try {
      t = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
    } catch {
      continue;
    }
    const p = /^prog_id:\s+(\d+)/m.exec(t);
    const l = /^link_id:\s+(\d+)/m.exec(t);
    const m = /^map_id:\s+(\d+)/m.exec(t);
    if (p) out.progs.add(Number(p[1]));
    if (l) out.links.add(Number(l[1]));
    if (m) out.maps.add(Number(m[1]));
  }
  return out;
}

function progAlive(id: number): boolean {
  try {
    progFdById(id).close();
    return true;
  } catch {
    return false;
  }
}

function privateEntries(env: DaemonEnv): string[] {
  try {
    return fs
      .readdirSync(env.privateDir)
      .flatMap((d) => [d, ...fs.readdirSync(path.join(env.privateDir, d)).map((f) => `${d}/${f}`)]);
  } catch {
    return [];
  }
}

describe('the view kit', { concurrency: false }, () => {
  it('new-view --with-collector: builds, pins with --inherit, counts on new cgroups, survives a restart', async () => {
    const w = workDir();
    const name = 'kit_ctx';
    let r = await ok(['new-view', name, '--with-collector'], w);
    const src = path.join(w, `${name}.bpf.c`);
    const text = fs.readFileSync(src, 'utf8');
    assert.match(text, new RegExp(`SEC\\("iter/cgroup"\\)\\nint ${name}\\(`));
    // Never overwritten.
    r = await cli(['new-view', name], w);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exists; not overwritten/);
    assert.equal(fs.readFileSync(src, 'utf8'), text);
    r = await cli(['new-view', 'bad.name'], w);
    assert.equal(r.code, 2, r.stderr);
    r = await cli(['new-view', 'sched_lat'], w);
    assert.equal(r.code, 2, r.stderr);

    r = await ok(['build', `${name}.bpf.c`], w);
    assert.match(r.stdout, new RegExp(`^  ${name}\\s+iter/cgroup\\s+view`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${name}_switch\\s+tp_btf/sched_switch\\s+collector`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${name}_rmdir\\s+tp_btf/cgroup_rmdir\\s+collector`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${name}_store\\s+cgrp_storage`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${name}_store_v1\\s+hash \\(max_entries 16384\\)`, 'm'));
    assert.ok(fs.existsSync(path.join(w, `${name}.bpf.o`)));
    const j = JSON.parse((await ok(['build', `${name}.bpf.c`, '--json'], w)).stdout) as {
      object: string;
      programs: Array<{ name: string; section: string; kind: string }>;
    };
    assert.equal(j.object, path.join(w, `${name}.bpf.o`));
    assert.deepEqual(j.programs.map((p) => `${p.name} ${p.section} ${p.kind}`).sort(), [
      `${name} iter/cgroup view`,
      `${name}_rmdir tp_btf/cgroup_rmdir collector`,
      `${name}_switch tp_btf/sched_switch collector`,
    ]);

    const env = daemonEnv();
    let d = await Daemon.start(env);
    r = await cli(['pin', `./${name}.bpf.o:${name}`, env.bpffs, '--inherit', '--socket', env.socket], w);
    assert.equal(r.code, 0, r.stderr);
    // A cgroup made after the pin gets the view, and the collector counts its tasks.
    const cg = path.join(env.cgroupRoot, 'job');
    fs.mkdirSync(cg);
    const file = path.join(env.bpffs, 'job', name);
    await waitFor(() => fs.existsSync(file), 5000, 'the inherited view in a new cgroup');
    const inst = (await waitFor(() => privateEntries(env).find((e) => /^u_[0-9a-f]{64}@0$/.test(e))))!;
    const pins = privateEntries(env)
      .filter((e) => e.startsWith(`${inst}/`))
      .map((e) => e.slice(inst.length + 1))
      .sort();
    assert.deepEqual(
      pins.filter((p) => !p.endsWith('%2Erodata')),
      [`link_${name}_rmdir`, `link_${name}_switch`, `map_${name}_store`, `map_${name}_store_v1`],
    );
    assert.equal(pins.length, 5, `pins: ${pins.join(' ')}`);
    const collectorLink = pinnedLinkId(path.join(env.privateDir, inst, `link_${name}_switch`));
    const collectorProg = linkInfoById(collectorLink)!.progId;

    const task = new Switcher(cg);
    const [base] = await task.report();
    const v0 = Number(view(file)['switches_total']);
    let [sw] = await task.round(200);
    const first = Number(view(file)['switches_total']);
    assert.ok(sw - base >= 200, `the task switched ${sw - base} times`);
    assert.ok(Math.abs(first - v0 - (sw - base)) <= 1, `view ${first - v0}, kernel ${sw - base}`);
    assert.equal(view(file)['cgroup_id'], String(fs.statSync(cg, { bigint: true }).ino));

    // Restart: the collector's pins stay, the next daemon adopts them, nothing starts from zero.
    await d.stop();
    [sw] = await task.round(100); // counted while no daemon runs
    d = await Daemon.start(env);
    await waitFor(() => d.logs().some((l) => l['msg'] === 'collector adopted' && l['collector'] === inst));
    assert.equal(pinnedLinkId(path.join(env.privateDir, inst, `link_${name}_switch`)), collectorLink);
    [sw] = await task.round(200);
    const later = Number(view(file)['switches_total']);
    assert.ok(later > first, `still growing: ${first} then ${later}`);
    assert.ok(
      Math.abs(later - v0 - (sw - base)) <= 1,
      `view ${later - v0}, kernel ${sw - base} since the first count`,
    );
    const st = await d.status();
    assert.equal((st.collectors[inst] as { start: string }).start, 'adopted');
    // kill -9 too: nothing to clean up, the pins are all there is.
    await d.kill();
    d = await Daemon.start(env);
    await waitFor(() => d.logs().some((l) => l['msg'] === 'collector adopted' && l['collector'] === inst));
    [sw] = await task.round(50);
    const last = Number(view(file)['switches_total']);
    assert.ok(
      Math.abs(last - v0 - (sw - base)) <= 1,
      `after kill -9: view ${last - v0}, kernel ${sw - base}`,
    );
    task.stop();

    // The last view of the object goes: so does its collector.
    r = await cli(['unpin', path.join(env.bpffs, name), '--socket', env.socket], w);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => privateEntries(env).length === 0, 5000, 'the collector pins removed');
    assert.equal(linkInfoById(collectorLink), null, 'the collector link is gone');
    await waitFor(() => !progAlive(collectorProg), 5000, 'the collector program unloaded');
    await d.stop();
  });

  it('examples/ctxsw: the switch counter and the slice histogram against the kernel, as metrics', async () => {
    const w = workDir();
    const obj = path.join(w, 'ctxsw.bpf.o');
    const r = await ok(['build', path.join(REPO, 'examples/ctxsw.bpf.c'), '-o', obj], w);
    assert.match(r.stdout, /^ {2}ctxsw\s+iter\/cgroup/m);
    const env = daemonEnv();
    const d = await Daemon.start(env);
    await ok(['pin', `${obj}:ctxsw`, env.bpffs, '--inherit', '--socket', env.socket], w);
    const cg = path.join(env.cgroupRoot, 'ex');
    fs.mkdirSync(cg);
    const file = path.join(env.bpffs, 'ex', 'ctxsw');
    await waitFor(() => fs.existsSync(file));
    const task = new Switcher(cg);
    const [sw0, ns0] = await task.report();
    const v0 = view(file);
    const [sw1, ns1] = await task.round(300);
    const v = view(file);
    task.stop();
    const switches = Number(v['switches_total']);
    const dsw = switches - Number(v0['switches_total']);
    assert.ok(Math.abs(dsw - (sw1 - sw0)) <= 1, `switches: view ${dsw}, kernel ${sw1 - sw0}`);
    // Every slice that ended in the cgroup is in the histogram (the task started after the collector).
    assert.equal(Number(v['slice_ns_lt_inf']), switches);
    // On-CPU time of the round: the slices' sum against schedstat.
    const sum = Number(v['slice_ns_total']);
    const dsum = sum - Number(v0['slice_ns_total']);
    const truth = ns1 - ns0;
    assert.ok(Math.abs(dsum - truth) <= truth * 0.02 + 2e5, `slice sum ${dsum} ns, schedstat ${truth} ns`);
    // As the exporter sees it: one counter and one histogram in seconds.
    const s = classifyView(parseViewOutput(fs.readFileSync(file, 'latin1')));
    const byName = new Map(s.metrics.map((m) => [m.name, m]));
    assert.deepEqual([...byName.keys()].sort(), ['slice_seconds', 'switches_total']);
    const h = byName.get('slice_seconds')!;
    assert.equal(h.kind, 'histogram');
    assert.equal(h.scale, 1e-9);
    assert.equal(h.hist!.count, switches);
    assert.equal(h.hist!.sum, sum);
    assert.equal(h.hist!.bounds[0], 2048);
    assert.equal(h.hist!.bounds.at(-1), 2 ** 39);
    for (let i = 1; i < h.hist!.cum.length; i++) assert.ok(h.hist!.cum[i]! >= h.hist!.cum[i - 1]!);
    assert.equal(byName.get('switches_total')!.kind, 'counter');
    // The percentiles lie in the bucket where the cumulative count crosses them.
    for (const [key, q] of [
      ['p50_ns', 0.5],
      ['p99_ns', 0.99],
    ] as const) {
      const p = Number(v[key]);
      const { bounds, cum, count } = h.hist!;
      const i = cum.findIndex((c) => c >= Math.ceil(count * q));
      const lo = i <= 0 ? 0 : bounds[i - 1]!;
      const hi = i < 0 ? Number.POSITIVE_INFINITY : bounds[i]!;
      assert.ok(p >= lo && p <= hi, `${key} ${p} not in [${lo}, ${hi}]`);
    }
    await d.stop();
  });

  it('examples/ctxsw on a cgroup v1 tree: its own collector instance, v1_hierarchy_id set before load', async () => {
    const w = workDir();
    const obj = path.join(w, 'ctxsw.bpf.o');
    await ok(['build', path.join(REPO, 'examples/ctxsw.bpf.c'), '-o', obj], w);
    const env = daemonEnv({ cgroupParent: CGROUP_V1_CPU });
    const d = await Daemon.start(env);
    await ok(['pin', `${obj}:ctxsw`, env.bpffs, '--inherit', '--socket', env.socket], w);
    // The hierarchy id of the cpu controller's v1 hierarchy (/proc/self/cgroup: "ID:CONTROLLERS:PATH").
    const id = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[1]?.split(',').includes('cpu'))?.[0];
    assert.ok(id, 'the cpu hierarchy in /proc/self/cgroup');
    const cg = path.join(env.cgroupRoot, 'v1job');
    fs.mkdirSync(cg);
    const file = path.join(env.bpffs, 'v1job', 'ctxsw');
    await waitFor(() => fs.existsSync(file));
    assert.ok(
      privateEntries(env).some((e) => new RegExp(`^u_[0-9a-f]{64}@${id}$`).test(e)),
      privateEntries(env).join(' '),
    );
    const task = new Switcher(cg);
    const [sw0] = await task.report();
    const v0 = Number(view(file)['switches_total']);
    const [sw1] = await task.round(100);
    const v1 = Number(view(file)['switches_total']);
    task.stop();
    assert.ok(Math.abs(v1 - v0 - (sw1 - sw0)) <= 1, `v1 switches: view ${v1 - v0}, kernel ${sw1 - sw0}`);
    assert.equal(view(file)['cgroup_id'], String(fs.statSync(cg, { bigint: true }).ino));
    await d.stop();
  });

  it('collector pins left incomplete (a crash while starting) are cleared and the collector started afresh', async () => {
    const w = workDir();
    fs.writeFileSync(path.join(w, 'part.bpf.c'), viewSource('part', true));
    await ok(['build', 'part.bpf.c'], w);
    const env = daemonEnv();
    let d = await Daemon.start(env);
    await ok(['pin', './part.bpf.o:part', env.bpffs, '--inherit', '--socket', env.socket], w);
    const inst = privateEntries(env).find((e) => /^u_[0-9a-f]{64}@0$/.test(e))!;
    assert.ok(inst, privateEntries(env).join(' '));
    const oldLink = pinnedLinkId(path.join(env.privateDir, inst, 'link_part_switch'));
    await d.stop();
    // As if the daemon died between pinning the maps and the links.
    fs.unlinkSync(path.join(env.privateDir, inst, 'link_part_switch'));
    fs.unlinkSync(path.join(env.privateDir, inst, 'link_part_rmdir'));
    d = await Daemon.start(env);
    await waitFor(() => d.logs().some((l) => l['msg'] === 'collector started' && l['collector'] === inst));
    assert.ok(d.logs().some((l) => String(l['msg']).startsWith('collector pins are not')));
    const newLink = pinnedLinkId(path.join(env.privateDir, inst, 'link_part_switch'));
    assert.notEqual(newLink, oldLink);
    assert.equal(linkInfoById(oldLink), null);
    // The view was made again on the new maps: it counts.
    fs.mkdirSync(path.join(env.cgroupRoot, 'p1'));
    const file = path.join(env.bpffs, 'p1', 'part');
    await waitFor(() => fs.existsSync(file));
    const task = new Switcher(path.join(env.cgroupRoot, 'p1'));
    const [a] = await task.report();
    const v0 = Number(view(file)['switches_total']);
    const [b] = await task.round(50);
    task.stop();
    assert.ok(Math.abs(Number(view(file)['switches_total']) - v0 - (b - a)) <= 1);
    await d.stop();
  });

  it('a broken source is E_BUILD with clang’s message; pin of it sends nothing to the daemon', async () => {
    const w = workDir();
    fs.writeFileSync(
      path.join(w, 'broken.bpf.c'),
      '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nSEC("iter/cgroup")\nint broken(void *ctx)\n{\n\treturn = 1;\n}\n',
    );
    let r = await cli(['build', 'broken.bpf.c'], w);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^cgview: build .*broken\.bpf\.c: clang failed:/m);
    assert.match(r.stderr, /broken\.bpf\.c:6:9: error: expected expression/);
    assert.ok(!fs.existsSync(path.join(w, 'broken.bpf.o')));
    assert.deepEqual(
      fs.readdirSync(w).filter((f) => f.startsWith('.')),
      [],
      'no temporary file left',
    );
    const env = daemonEnv();
    const d = await Daemon.start(env);
    r = await cli(['pin', './broken.bpf.c:broken', env.bpffs, '--socket', env.socket], w);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: expected expression/);
    assert.ok(!fs.existsSync(env.bpffs), 'nothing was tagged');
    await d.stop();
  });

  it('a collector the verifier rejects is E_VERIFIER with the whole log, and leaves no pin, link or map', async () => {
    const w = workDir();
    fs.writeFileSync(
      path.join(w, 'badcol.bpf.c'),
      `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} badcol_arr SEC(".maps");
SEC("tp_btf/sched_switch")
int BPF_PROG(badcol_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 k = 0;
	__u64 *badcol_unchecked = bpf_map_lookup_elem(&badcol_arr, &k);
	return badcol_unchecked[4]; /* past the end of the 8-byte value: rejected */
}
SEC("iter/cgroup")
int badcol(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;

	if (cgrp)
		BPF_SEQ_PRINTF(ctx->meta->seq, "cgroup_id: %llu\\n", cgrp->kn->id);
	return 0;
}
`,
    );
    await ok(['build', 'badcol.bpf.c'], w);
    const env = daemonEnv();
    const d = await Daemon.start(env);
    fs.mkdirSync(path.join(env.cgroupRoot, 'c1'));
    const before = heldIds(d.pid);
    let r = await cli(['pin', './badcol.bpf.o:badcol', env.bpffs, '--inherit', '--socket', env.socket], w);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /collector of .*: load .*: the verifier rejected program badcol_switch/);
    assert.doesNotMatch(r.stderr, /--- log ---/);
    // --verbose: the whole log, from the daemon over the socket.
    r = await cli(['pin', './badcol.bpf.o:badcol', env.bpffs, '--inherit', '-v', '--socket', env.socket], w);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--- log ---\n/);
    assert.match(r.stderr, /badcol_unchecked/);
    assert.match(r.stderr, /invalid access to map value/);
    // On the socket: the code, and the whole log (the message has its end only).
    await assert.rejects(
      request(env.socket, {
        op: 'pin',
        args: { view: `${path.join(w, 'badcol.bpf.o')}:badcol`, dir: env.bpffs, inherit: true },
      }),
      (e: unknown) => {
        assert.ok(isCgviewError(e, 'E_VERIFIER'), String(e));
        assert.match(e.log ?? '', /^0: R1=ctx\(\)/m, 'the log from its first line');
        assert.match(e.log ?? '', /invalid access to map value/);
        return true;
      },
    );
    // Nothing left: no tree, no collector pins, nothing more held by the daemon.
    assert.deepEqual(iterLinksOf([cgroupId(env.cgroupRoot, 'c1'), cgroupId(env.cgroupRoot, '')]), []);
    assert.deepEqual((await d.status()).roots, [], 'not tagged');
    assert.deepEqual(fs.existsSync(env.bpffs) ? fs.readdirSync(env.bpffs) : [], [], 'no view file');
    assert.deepEqual(privateEntries(env), []);
    const now = heldIds(d.pid);
    for (const k of ['progs', 'links', 'maps'] as const)
      assert.deepEqual(
        [...now[k]].filter((id) => !before[k].has(id)),
        [],
        `${k} the daemon holds after the failed pin`,
      );
    // The daemon goes on serving: a good view pins.
    fs.writeFileSync(
      path.join(w, 'good.bpf.c'),
      (await import('../../src/cli/new-view.js')).viewSource('good', false),
    );
    r = await cli(['pin', './good.bpf.c:good', env.bpffs, '--socket', env.socket], w);
    assert.equal(r.code, 0, r.stderr);
    await d.stop();
  });

  it('views of one object share its collector; it stops with the last; a view the verifier rejects stops the collector it started', async () => {
    const w = workDir();
    const two = viewSource('duo_a', true)
      .replace(/duo_a_cgroup/g, 'duo_cgroup')
      .replace(/duo_a_store/g, 'duo_store')
      .concat(`
SEC("iter/cgroup")
int duo_b(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	duo_store_t *c;

	if (!cgrp)
		return 0;
	c = cgv_storage_lookup(duo_store, cgrp);
	BPF_SEQ_PRINTF(ctx->meta->seq, "cgroup_id: %llu\\nswitches_total: %llu\\n", cgrp->kn->id, c ? c->switches : 0);
	return 0;
}

SEC("iter/cgroup")
int duo_bad(struct bpf_iter__cgroup *ctx)
{
	duo_store_t *c = cgv_storage_lookup(duo_store, ctx->cgroup);

	return c->switches; /* ctx->cgroup and c unchecked: rejected */
}
`);
    fs.writeFileSync(path.join(w, 'duo.bpf.c'), two);
    await ok(['build', 'duo.bpf.c'], w);
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const obj = `${path.join(w, 'duo.bpf.o')}`;
    const instances = () => privateEntries(env).filter((e) => /^u_[0-9a-f]{64}@0$/.test(e));
    // A view that does not verify: the collector started for it goes again.
    const r = await cli(['pin', `${obj}:duo_bad`, env.bpffs, '--socket', env.socket], w);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the verifier rejected program duo_bad/);
    assert.deepEqual(privateEntries(env), []);
    await ok(['pin', `${obj}:duo_a`, env.bpffs, '--socket', env.socket], w);
    await ok(['pin', `${obj}:duo_b`, env.bpffs, '--socket', env.socket], w);
    assert.equal(instances().length, 1, privateEntries(env).join(' '));
    const task = new Switcher(env.cgroupRoot);
    await task.report();
    await task.round(50);
    const a = Number(view(path.join(env.bpffs, 'duo_a'))['switches_total']);
    const b = Number(view(path.join(env.bpffs, 'duo_b'))['switches_total']);
    assert.ok(a > 0 && b > 0, `${a} ${b}`);
    // The same maps: what b reads later is at least what a read before.
    assert.ok(b >= a);
    await ok(['unpin', path.join(env.bpffs, 'duo_a'), '--socket', env.socket], w);
    assert.equal(instances().length, 1, 'still used by duo_b');
    const b2 = Number(view(path.join(env.bpffs, 'duo_b'))['switches_total']);
    await task.round(50);
    assert.ok(Number(view(path.join(env.bpffs, 'duo_b'))['switches_total']) >= b2 + 50, 'still counting');
    task.stop();
    await ok(['unpin', path.join(env.bpffs, 'duo_b'), '--socket', env.socket], w);
    await waitFor(() => privateEntries(env).length === 0, 5000, 'the collector stopped');
    await d.stop();
  });

  it('anyone can build: a user other than root builds with a cache of its own', async () => {
    // Outside the test's root-only directory: nobody must reach it.
    const base = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
    onCleanup(() => fs.rmSync(base, { recursive: true, force: true }));
    fs.chmodSync(base, 0o755);
    const home = path.join(base, 'home');
    fs.mkdirSync(home);
    fs.chownSync(home, 65534, 65534);
    const as = (args: string[]) =>
      new Promise<RunResult>((resolve) =>
        execFile(
          'setpriv',
          [
            '--reuid=65534',
            '--regid=65534',
            '--clear-groups',
            '--',
            'env',
            `HOME=${home}`,
            process.execPath,
            CGVIEW,
            ...args,
          ],
          {
            cwd: home,
            encoding: 'utf8',
            timeout: 60000,
            env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
          },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
        ),
      );
    let r = await as(['new-view', 'mine', '--with-collector']);
    assert.equal(r.code, 0, r.stderr);
    r = await as(['build', 'mine.bpf.c']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}mine\s+iter\/cgroup/m);
    assert.equal(fs.statSync(path.join(home, 'mine.bpf.o')).uid, 65534);
    // vmlinux.h went to the user's own cache.
    const vm = path.join(home, '.cache/cgview/vmlinux');
    const [dir] = fs.readdirSync(vm);
    assert.equal(fs.statSync(path.join(vm, dir!, 'vmlinux.h')).uid, 65534);
  });

  it('pin of a source builds once: a second pin of the unchanged source (and header) is a cache hit', async () => {
    const w = workDir();
    fs.writeFileSync(path.join(w, 'cached.h'), '#define CACHED_LEVEL_KEY "level"\n');
    const body = (await import('../../src/cli/new-view.js'))
      .viewSource('cached', false)
      .replace('#include <cgview/cgview.h>', '#include <cgview/cgview.h>\n#include "cached.h"')
      .replace('cgv_print_int(seq, "level",', 'cgv_print_int(seq, CACHED_LEVEL_KEY,');
    assert.match(body, /CACHED_LEVEL_KEY,/);
    fs.writeFileSync(path.join(w, 'cached.bpf.c'), body);
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const pin = (n: string) =>
      cli(['pin', './cached.bpf.c:cached', env.bpffs, '--name', n, '--socket', env.socket], w);
    let r = await pin('one');
    assert.equal(r.code, 0, r.stderr);
    const built = /built .*cached\.bpf\.c into (\S+)/.exec(r.stderr)?.[1];
    assert.ok(built, r.stderr);
    const st = fs.statSync(built);
    r = await pin('two');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`unchanged, built before: ${built}`));
    const st2 = fs.statSync(built);
    assert.equal(st2.ino, st.ino);
    assert.equal(st2.mtimeMs, st.mtimeMs);
    assert.equal(view(path.join(env.bpffs, 'two'))['level'], '1');
    // A changed header is a new build.
    fs.writeFileSync(path.join(w, 'cached.h'), '#define CACHED_LEVEL_KEY "depth"\n');
    r = await pin('three');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /built .*cached\.bpf\.c into /);
    assert.equal(view(path.join(env.bpffs, 'three'))['depth'], '1');
    await d.stop();
  });
});
