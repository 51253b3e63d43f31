/**
 * `cgview top` CPU time per refresh (issue 10), side by side with
 * `systemd-cgtop -b` on the same cgroups, depth and interval.
 *
 * It makes N cgroups (two levels, sqrt(N) × sqrt(N)) under the v2 mount,
 * for cgview (sched_lat counts v2 cgroups), and the same names in the v1
 * cpuacct hierarchy, for systemd-cgtop: on this hybrid host (/sys/fs/cgroup
 * is not cgroup2) it walks the v2 tree for the cgroups and reads CPU from
 * v1 cpuacct, and shows only cgroups with CPU figures. A daemon mirrors the
 * v2 cgroups with `sched_lat` and `info` inherited and is stopped (top
 * reads the files, not the daemon). Then it
 * runs each tool for 1 and for 1+M refreshes and takes the difference of
 * their CPU time (user + system, children's `times` of a shell), so that
 * start-up is not counted.
 *
 * With --active K, K leaves (each under another parent) get a shell that
 * wakes once a second (`sleep 1` in a loop), in the v2 and the v1 cgroup
 * alike: those cgroups and their parents are not idle, so top reads them.
 *
 * Run as root: node dist/bench/top.js [--cgroups 1000,10000] [--refreshes 10] [--delay 1] [--active 0]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
const CGVIEW = path.join(REPO, 'bin/cgview');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const SIZES = arg('cgroups', '1000,10000').split(',').map(Number);
const M = Number(arg('refreshes', '10'));
const DELAY = arg('delay', '1');
const ACTIVE = Number(arg('active', '0'));
const V2 = '/sys/fs/cgroup/unified';
const V1 = '/sys/fs/cgroup/cpuacct';
const tag = `cgvb-top-${process.pid}`;

function layout(n: number): string[] {
  const k = Math.ceil(Math.sqrt(n));
  const rels: string[] = [];
  for (let i = 0; i < k && rels.length < n; i++) {
    rels.push(`g${i}`);
    for (let j = 0; j < k - 1 && rels.length < n; j++) rels.push(`g${i}/c${j}`);
  }
  return rels;
}

function rmTree(p: string): void {
  if (!fs.existsSync(p)) return;
  for (const e of fs.readdirSync(p, { withFileTypes: true })) {
    const q = path.join(p, e.name);
    if (e.isDirectory()) rmTree(q);
    else if (!p.startsWith('/sys/fs/cgroup')) fs.unlinkSync(q);
  }
  fs.rmdirSync(p);
}

/** CPU seconds (user + system) of the children of a shell that ran `cmd`. */
function cpuOf(cmd: string[]): number {
  const q = cmd.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const out = execFileSync('sh', ['-c', `${q} >/dev/null 2>&1; times`], { encoding: 'utf8' });
  const kids = out.trim().split('\n').pop()!;
  let s = 0;
  for (const m of kids.matchAll(/(\d+)m([\d.]+)s/g)) s += Number(m[1]) * 60 + Number(m[2]);
  return s;
}

/** CPU per refresh: (run with 1+M refreshes − run with 1) / M, in ms; median of 3. */
function perRefresh(make: (n: number) => string[]): { ms: number; base: number } {
  const r: number[] = [];
  let base = 0;
  for (let i = 0; i < 3; i++) {
    base = cpuOf(make(1));
    const many = cpuOf(make(1 + M));
    r.push(((many - base) / M) * 1000);
  }
  r.sort((a, b) => a - b);
  return { ms: r[1]!, base: base * 1000 };
}

async function startDaemon(
  tree: string,
  cg: string,
  sock: string,
  state: string,
): Promise<ReturnType<typeof spawn>> {
  const d = spawn(
    process.execPath,
    [
      CGVIEW,
      'daemon',
      '--bpffs',
      tree,
      '--cgroup-root',
      cg,
      '--state',
      state,
      '--socket',
      sock,
      '--no-default-views',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let buf = '';
  d.stderr!.on('data', (s) => {
    buf += s;
  });
  for (let i = 0; i < 600 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(sock)) throw new Error(`daemon did not start: ${buf}`);
  return d;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/cgvb-top-');
  const bpffs = `/sys/fs/bpf/${tag}`;
  fs.mkdirSync(bpffs);
  const made: string[] = [];
  let daemon: ReturnType<typeof spawn> | undefined;
  const results: string[] = [];
  try {
    for (const n of SIZES) {
      const parent = path.join(V2, `${tag}-${n}`);
      const parent1 = path.join(V1, `${tag}-${n}`);
      const rels = layout(n);
      for (const p of [parent, parent1]) {
        fs.mkdirSync(p);
        made.push(p);
        for (const r of rels) fs.mkdirSync(path.join(p, r));
      }
      const shells: ReturnType<typeof spawn>[] = [];
      const k = Math.ceil(Math.sqrt(n));
      for (let i = 0; i < Math.min(ACTIVE, k); i++) {
        const leaf = `g${i}/c0`;
        const sh = spawn(
          'sh',
          [
            '-c',
            'echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && while :; do sleep 1; done',
            'sh',
            path.join(parent, leaf),
            path.join(parent1, leaf),
          ],
          { stdio: 'ignore' },
        );
        shells.push(sh);
      }
      const tree = path.join(bpffs, `t${n}`);
      const sock = path.join(work, `s${n}.sock`);
      daemon = await startDaemon(tree, parent, sock, path.join(work, `st${n}.json`));
      execFileSync(process.execPath, [
        CGVIEW,
        'pin',
        'sched_lat',
        tree,
        '--inherit',
        '--cgroup',
        parent,
        '--socket',
        sock,
      ]);
      execFileSync(process.execPath, [CGVIEW, 'pin', 'info', tree, '--inherit', '--socket', sock]);
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
      daemon = undefined;
      // Both tools see the parent and its two levels.
      const top = (k: number) => [
        process.execPath,
        CGVIEW,
        'top',
        tree,
        '--batch',
        '--iterations',
        String(k),
        '--delay',
        DELAY,
        '--depth',
        '2',
      ];
      const cgtopPath = `/${path.basename(parent)}`;
      const cgtop = (k: number) => [
        'systemd-cgtop',
        '-b',
        '-r',
        '-n',
        String(k),
        '-d',
        DELAY,
        '--depth=3',
        cgtopPath,
      ];
      const rowsTop = execFileSync(top(1)[0]!, top(1).slice(1), { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.startsWith('/')).length;
      // systemd-cgtop shows a cgroup once it has a CPU rate: the second table of two.
      const cgOut = execFileSync(cgtop(2)[0]!, cgtop(2).slice(1), { encoding: 'utf8' }).trim().split('\n\n');
      const rowsCg = cgOut[cgOut.length - 1]!.split('\n').filter((l) => l.startsWith('/')).length;
      const a = perRefresh(top);
      process.env['CGVIEW_TOP_NO_REUSE'] = '1';
      const full = perRefresh(top);
      // The same without root's bulk path (src/top/bulk.ts): every sched_lat file read.
      process.env['CGVIEW_TOP_NO_BULK'] = '1';
      const fullFiles = perRefresh(top);
      delete process.env['CGVIEW_TOP_NO_BULK'];
      delete process.env['CGVIEW_TOP_NO_REUSE'];
      const b = perRefresh(cgtop);
      const line = `| ${n.toLocaleString('en')}${ACTIVE ? ` (${Math.min(ACTIVE, k)} active)` : ''} | ${rowsTop} | ${a.ms.toFixed(1)} ms | ${rowsCg} | ${b.ms.toFixed(1)} ms | ${(a.ms / b.ms).toFixed(2)} | ${full.ms.toFixed(1)} ms (${(full.ms / b.ms).toFixed(2)}) | ${fullFiles.ms.toFixed(1)} ms (${(full.ms / fullFiles.ms).toFixed(2)}) | ${a.base.toFixed(0)} / ${b.base.toFixed(0)} ms |`;
      console.log(line);
      results.push(line);
      for (const sh of shells) {
        sh.kill('SIGKILL');
        await new Promise((r) =>
          sh.exitCode !== null || sh.signalCode !== null ? r(null) : sh.once('exit', r),
        );
      }
      // Their last `sleep` children: killed by the cgroups' own lists (they are in our cgroups only).
      for (const p of [parent, parent1])
        for (const r of rels)
          for (const pid of fs
            .readFileSync(path.join(p, r, 'cgroup.procs'), 'utf8')
            .split('\n')
            .filter(Boolean))
            try {
              process.kill(Number(pid), 'SIGKILL');
            } catch {
              /* gone */
            }
      await new Promise((r) => setTimeout(r, 200));
      for (const p of [parent1, parent]) {
        rmTree(p);
        made.splice(made.indexOf(p), 1);
      }
      rmTree(tree);
    }
    console.log(
      `\n| cgroups | top rows | cgview top CPU/refresh | cgtop rows | systemd-cgtop CPU/refresh | ratio | every file read each refresh (ratio) | same, no bulk path (bulk / files) | one-refresh run (start-up incl.) top / cgtop |`,
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const l of results) console.log(l);
  } finally {
    daemon?.kill('SIGKILL');
    for (const p of made.reverse()) rmTree(p);
    rmTree(bpffs);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
