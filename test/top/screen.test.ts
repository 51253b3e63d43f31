/**
 * The interactive screen under tmux (its own server socket, killed after the
 * test): header and the busy cgroup on top, `s` sorts by the next column,
 * `/` filters, Enter opens the histogram pane, a resize redraws to the new
 * width, NO_COLOR means no colour codes, `q` leaves the alternate screen
 * and gives the terminal back.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Daemon, DaemonEnv } from '../daemon.js';
import { CGROUP2, CGVIEW, onCleanup, uniq, waitFor } from '../helpers.js';
import { child, schedTree, shownPath, spinners } from './workload.js';

const SERVER = uniq('cgvt-tmux');
const tmux = (...args: string[]) =>
  execFileSync('tmux', ['-L', SERVER, ...args], { encoding: 'utf8', env: { ...process.env, TMUX: '' } });
const screen = (escapes = false) => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 'top');
const flag = (f: string) => tmux('display-message', '-p', '-t', 'top', `#{${f}}`).trim();

let env: DaemonEnv;
let d: Daemon;
let busyPath: string;
let longName: string;
let cmd: string;

before(async () => {
  ({ env, d } = await schedTree());
  const busy = await child(env, 'busy');
  await child(env, 'quiet');
  longName = `a-cgroup-name-long-enough-to-be-shortened-at-100-columns.${'x'.repeat(20)}`;
  await child(env, longName);
  spinners(busy, 2, 1);
  busyPath = shownPath(CGROUP2, busy);
  onCleanup(() => {
    try {
      tmux('kill-server');
    } catch {
      /* not running */
    }
  });
  cmd = [
    'env',
    'LANG=C.UTF-8',
    'TERM=xterm-256color',
    'NO_COLOR=1',
    process.execPath,
    CGVIEW,
    'top',
    env.cgroupRoot,
    '--socket',
    env.socket,
    '--delay',
    '1',
  ]
    .map((a) => `'${a}'`)
    .join(' ');
  tmux(
    '-f',
    '/dev/null',
    'new-session',
    '-d',
    '-s',
    'top',
    '-x',
    '100',
    '-y',
    '30',
    `${cmd}; echo TOP-EXITED $?; sleep 600`,
  );
});

after(async () => {
  await d?.stop();
});

async function until(what: string, ok: (s: string) => boolean, ms = 10000): Promise<string> {
  let last = '';
  try {
    await waitFor(
      () => {
        last = screen();
        return ok(last);
      },
      ms,
      what,
    );
  } catch (e) {
    (e as Error).message += `\n--- screen ---\n${last}`;
    throw e;
  }
  return last;
}

/** The table's rows: the lines after the column header, up to the first empty one. */
function tableRows(s: string): string[] {
  const lines = s.split('\n');
  const h = lines.findIndex((l) => l.startsWith('CGROUP'));
  const out: string[] = [];
  for (const l of lines.slice(h + 1)) {
    if (l.trim() === '') break;
    out.push(l);
  }
  return out;
}

describe('cgview top under tmux', () => {
  it('shows the header and the busy cgroup first', async () => {
    const s = await until('figures', (x) => tableRows(x)[0]?.startsWith(busyPath) === true);
    const lines = s.split('\n');
    assert.match(
      lines[0]!,
      /^cgview top - \S+ +\d\d:\d\d:\d\d +up .* load [\d.]+ [\d.]+ [\d.]+ +interval 1s/,
    );
    assert.match(lines[1]!, /^4 cgroups in 1 tree {2}sort wait {2}flat/);
    assert.match(s, /^CGROUP +TASKS +THR +CPU%\*WAIT\/s WAITS\/s +P50 +P99 SELF%/m);
    const busy = tableRows(s)[0]!.slice(busyPath.length).trim().split(/ +/);
    assert.deepEqual(busy.slice(0, 2), ['2', '2']);
    assert.ok(Number(busy[3]) > 0.5, `wait/s ${busy[3]}`);
    assert.equal(flag('alternate_on'), '1');
    // NO_COLOR: no colour codes (reverse video for the header and the selection is not colour).
    // (tmux itself writes 39/49, "default colour", around what it captures.)
    const COLOUR = /\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m/;
    assert.doesNotMatch(screen(true), COLOUR);
    // Without NO_COLOR, the same screen has colour.
    tmux('new-window', '-d', '-t', 'top', '-n', 'colour', cmd.replace("'NO_COLOR=1' ", ''));
    await waitFor(
      () => /cgroups in 1 tree/.test(tmux('capture-pane', '-p', '-t', 'top:colour')),
      10000,
      'colour window',
    );
    assert.match(tmux('capture-pane', '-p', '-e', '-t', 'top:colour'), COLOUR);
    tmux('kill-window', '-t', 'top:colour');
  });

  it('s sorts by the next column', async () => {
    tmux('send-keys', '-t', 'top', 's');
    const s = await until('sort waits', (x) => /sort waits {2}/.test(x));
    assert.match(s, /^CGROUP +TASKS +THR +CPU% WAIT\/s\*WAITS\/s/m);
    tmux('send-keys', '-t', 'top', '<');
    await until('sort wait again', (x) => /sort wait {2}/.test(x));
  });

  it('t shows the tree: the tree cgroup first, its children indented under it, foldable', async () => {
    tmux('send-keys', '-t', 'top', 't');
    const s = await until('tree mode', (x) => /sort wait {2}tree/.test(x) && tableRows(x).length === 4);
    const rows = tableRows(s);
    assert.ok(rows[0]!.startsWith(`-${shownPath(CGROUP2, env.cgroupRoot)} `), rows[0]);
    assert.ok(rows[1]!.startsWith('   busy '), rows[1]); // first by wait/s among the children
    tmux('send-keys', '-t', 'top', 'Home', 'Space');
    await until('folded', (x) => tableRows(x).length === 1 && tableRows(x)[0]!.startsWith('+'));
    tmux('send-keys', '-t', 'top', 'Space', 't');
    await until('flat again', (x) => /sort wait {2}flat/.test(x) && tableRows(x).length === 4);
  });

  it('/ filters by a substring of the path', async () => {
    tmux('send-keys', '-t', 'top', '/', 'q', 'u', 'i');
    await until('the filter line', (x) => x.includes('/qui_'));
    tmux('send-keys', '-t', 'top', 'Enter');
    const s = await until('only quiet', (x) => x.includes('filter "qui"') && tableRows(x).length === 1);
    assert.ok(tableRows(s)[0]!.startsWith(`${shownPath(CGROUP2, env.cgroupRoot)}/quiet `), s);
    tmux('send-keys', '-t', 'top', 'Escape');
    await until('all rows again', (x) => tableRows(x).length === 4 && !x.includes('filter "'));
  });

  it('Enter shows the detail pane with the interval histogram as bars', async () => {
    // The selection is on the first row: the busy cgroup.
    tmux('send-keys', '-t', 'top', 'Home', 'Enter');
    const s = await until('the histogram', (x) =>
      /wait histogram of the interval:\n(?: *<.*\n)*? *< *[\d.]+[nmu]?s #+ +\d+/.test(x),
    );
    assert.match(
      s,
      new RegExp(`^${busyPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +\\(v2, id \\d+\\)`, 'm'),
    );
    assert.match(s, /^tasks 2 {2}threads 2 {2}CPU [\d.]+%/m);
    assert.match(s, /^sched_lat: wait [\d.]+\/s {2}waits [\d.k]+\/s {2}p50 \S+ {2}p99 \S+ {2}self [\d.]+%/m);
    tmux('send-keys', '-t', 'top', 'Enter');
    await until('the pane closed', (x) => !x.includes('wait histogram'));
  });

  it('redraws to the new width on a resize; long names are shortened in the middle', async () => {
    const at100 = await until('the long name shortened', (x) => x.includes('…'));
    const long = path.join(shownPath(CGROUP2, env.cgroupRoot), longName);
    assert.ok(!at100.includes(long));
    assert.ok(at100.split('\n').every((l) => [...l].length <= 100));
    tmux('resize-window', '-t', 'top', '-x', '180', '-y', '30');
    const at180 = await until('the long name whole', (x) => x.includes(long));
    assert.ok(at180.split('\n').some((l) => [...l].length > 100));
    tmux('resize-window', '-t', 'top', '-x', '80', '-y', '24');
    const at80 = await until(
      '80 columns',
      (x) => x.split('\n').length <= 25 && x.includes('…') && !x.includes(long),
    );
    assert.ok(at80.split('\n').every((l) => [...l].length <= 80));
    assert.match(at80, /^CGROUP +TASKS +THR +CPU%\*WAIT\/s WAITS\/s +P50 +P99 SELF%$/m);
  });

  it('SIGTERM: the terminal is given back before top dies of it', async () => {
    tmux('new-window', '-d', '-t', 'top', '-n', 'term', `${cmd}; echo TOP-EXITED $?; sleep 600`);
    const win = 'top:term';
    await waitFor(() => /cgroups in 1 tree/.test(tmux('capture-pane', '-p', '-t', win)), 10000, 'second top');
    const shell = tmux('display-message', '-p', '-t', win, '#{pane_pid}').trim();
    const tree = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
    const pid = tree
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find(([, ppid, ...args]) => ppid === shell && args.join(' ').includes(' top '))?.[0];
    assert.ok(
      pid,
      `top under pane ${shell}:\n${tree
        .split('\n')
        .filter((l) => l.includes(shell))
        .join('\n')}`,
    );
    assert.equal(tmux('display-message', '-p', '-t', win, '#{alternate_on}').trim(), '1');
    process.kill(Number(pid), 'SIGTERM');
    await waitFor(
      () => tmux('capture-pane', '-p', '-t', win).includes('TOP-EXITED 143'),
      10000,
      'exit by SIGTERM',
    );
    assert.equal(tmux('display-message', '-p', '-t', win, '#{alternate_on}').trim(), '0');
    assert.equal(tmux('display-message', '-p', '-t', win, '#{cursor_flag}').trim(), '1');
    tmux('kill-window', '-t', win);
  });

  it('q quits and gives the terminal back', async () => {
    tmux('send-keys', '-t', 'top', 'q');
    const s = await until('exit', (x) => x.includes('TOP-EXITED 0'));
    assert.doesNotMatch(s, /cgview top -/); // the alternate screen is gone with what top drew
    assert.equal(flag('alternate_on'), '0');
    assert.equal(flag('cursor_flag'), '1');
    // The terminal is out of raw mode: stty on the pane's tty says so.
    const tty = flag('pane_tty');
    assert.match(
      execFileSync('stty', ['-F', tty, '-a'], { encoding: 'utf8' }),
      /\bicanon\b.*\becho\b|\becho\b.*\bicanon\b/s,
    );
    assert.doesNotMatch(execFileSync('stty', ['-F', tty, '-a'], { encoding: 'utf8' }), /-icanon|-echo\b/);
  });
});
