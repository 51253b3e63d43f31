/**
 * The build run by root on files others can write (review items 1, 9, 10):
 * no file clang or cgview makes is reachable from a directory another user
 * can write, so a symlink planted there (also by a watcher that sees the
 * temporary names appear) is never followed; as root, what is compiled is a
 * private copy of the source, and a header others can change is refused;
 * a cache directory that cannot be made, and a pin by someone who is not
 * root, are clear errors before anything is compiled.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { viewSource } from '../../src/cli/new-view.js';
import { isCgviewError } from '../../src/errors.js';
import { buildView, describeObject, notRootOnly } from '../../src/views/build.js';
import { CGVIEW, onCleanup, RUN_PREFIX } from '../helpers.js';

const NOBODY = 65534;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** bin/cgview in `cwd`, as root, or as nobody (setpriv) with `home`. */
function cgview(args: string[], cwd: string, env: Record<string, string>, asNobody = false): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CGVIEW_')));
  const [cmd, argv] = asNobody
    ? [
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          '--',
          'env',
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          process.execPath,
          CGVIEW,
          ...args,
        ],
      ]
    : [process.execPath, [CGVIEW, ...args]];
  return new Promise((resolve) =>
    execFile(
      cmd as string,
      argv as string[],
      {
        cwd,
        encoding: 'utf8',
        timeout: 60000,
        env: asNobody ? { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } : { ...clean, ...env },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

function base(): string {
  const b = fs.mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  onCleanup(() => fs.rmSync(b, { recursive: true, force: true }));
  fs.chmodSync(b, 0o755);
  return b;
}

/** A directory nobody (uid 65534) owns and can write. */
function nobodysDir(parent: string, name: string): string {
  const d = path.join(parent, name);
  fs.mkdirSync(d, { mode: 0o755 });
  fs.chownSync(d, NOBODY, NOBODY);
  return d;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('building as root on files others can write', { concurrency: false }, () => {
  it('a directory another user can write: no symlink planted there, before or during the build, is followed', async () => {
    const b = base();
    const cache = path.join(b, 'cache');
    const open = nobodysDir(b, 'open');
    const target = path.join(b, 'target');
    fs.writeFileSync(target, 'precious\n', { mode: 0o600 });
    const src = path.join(open, 'att.bpf.c');
    fs.writeFileSync(src, viewSource('att', false));
    fs.chownSync(src, NOBODY, NOBODY);
    const plant = (name: string) => {
      try {
        fs.symlinkSync(target, path.join(open, name));
        fs.lchownSync(path.join(open, name), NOBODY, NOBODY);
      } catch {
        // taken already
      }
    };
    // Every name known beforehand: the object, make-style dependency files of it.
    for (const n of ['att.bpf.o', 'att.bpf.o.d', 'att.bpf.d', 'att.d', '.att.bpf.o.d']) plant(n);
    // What the other user's watcher does: for any temporary name that shows up, its .d and itself.
    const seen = new Set<string>();
    const watcher = fs.watch(open, (_ev, name) => {
      const m = name ? /tmp-(\d+)-([0-9a-f]+)/.exec(name) : null;
      if (!m || !name) return;
      seen.add(name);
      const tmp = `.att.bpf.o.tmp-${m[1]}-${m[2]}`;
      plant(`${tmp}.d`);
      plant(tmp);
    });
    let r: Run;
    try {
      r = await cgview(['build', 'att.bpf.c'], open, { CGVIEW_CACHE_DIR: cache });
    } finally {
      watcher.close();
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      fs.readFileSync(target, 'utf8'),
      'precious\n',
      `target overwritten; names seen: ${[...seen]}`,
    );
    assert.equal(fs.statSync(target).mode & 0o777, 0o600, 'target chmodded');
    // The planted symlink at the object's name was replaced, not written through.
    const st = fs.lstatSync(path.join(open, 'att.bpf.o'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o644);
    const d = describeObject(fs.readFileSync(path.join(open, 'att.bpf.o')));
    assert.deepEqual(
      d.programs.map((p) => p.name),
      ['att'],
    );
    // The same with -o into a sticky world-writable directory.
    const sticky = path.join(b, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    fs.symlinkSync(target, path.join(sticky, 'x.o'));
    fs.lchownSync(path.join(sticky, 'x.o'), NOBODY, NOBODY);
    r = await cgview(['build', 'att.bpf.c', '-o', path.join(sticky, 'x.o')], open, {
      CGVIEW_CACHE_DIR: cache,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious\n');
    assert.ok(fs.lstatSync(path.join(sticky, 'x.o')).isFile());
    // Nothing was left behind: no temporary files beside the object, no build directory in the cache.
    assert.deepEqual(
      fs.readdirSync(open).filter((n) => !seen.has(n) && !/tmp-/.test(n) && !n.endsWith('.d')),
      ['att.bpf.c', 'att.bpf.o'],
    );
    assert.deepEqual(
      fs.readdirSync(cache).filter((n) => n.startsWith('.build-')),
      [],
    );
  });

  it('as root, a header another user can change is refused (also behind a symlink, also on a cache hit)', () => {
    const b = base();
    const cache = path.join(b, 'cache');
    const mine = path.join(b, 'mine');
    fs.mkdirSync(mine, { mode: 0o755 });
    const open = nobodysDir(b, 'open');
    const header = path.join(open, 'h.h');
    fs.writeFileSync(header, '#define H_KEY "level"\n');
    fs.chownSync(header, NOBODY, NOBODY);
    const withHeader = (inc: string) =>
      viewSource('hv', false)
        .replace('#include <cgview/cgview.h>', `#include <cgview/cgview.h>\n#include "${inc}"`)
        .replace('cgv_print_int(seq, "level",', 'cgv_print_int(seq, H_KEY,');
    const src = path.join(mine, 'hv.bpf.c');
    const out = path.join(mine, 'hv.bpf.o');
    fs.writeFileSync(src, withHeader('../open/h.h'));
    assert.throws(
      () => buildView(src, { out, cacheDir: cache }),
      (e) => isCgviewError(e, 'E_PERMISSION') && e.message.includes(header) && /uid 65534/.test(e.message),
    );
    assert.ok(!fs.existsSync(out), 'no object from a refused build');
    // A symlink of another user's, to a header root owns.
    const good = path.join(mine, 'good.h');
    fs.writeFileSync(good, '#define H_KEY "level"\n');
    const link = path.join(mine, 'link.h');
    fs.symlinkSync(good, link);
    fs.lchownSync(link, NOBODY, NOBODY);
    fs.writeFileSync(src, withHeader('link.h'));
    assert.throws(
      () => buildView(src, { out, cacheDir: cache }),
      (e) => isCgviewError(e, 'E_PERMISSION') && e.message.includes(link),
    );
    assert.match(notRootOnly(link) ?? '', /symlink owned by uid 65534/);
    // Root's own header: built, into the cache; then the header is given away: no cache hit, refused.
    fs.writeFileSync(src, withHeader('good.h'));
    const r = buildView(src, { cacheDir: cache });
    assert.equal(r.cached, false);
    assert.equal(buildView(src, { cacheDir: cache }).cached, true);
    fs.chownSync(good, NOBODY, NOBODY);
    assert.throws(
      () => buildView(src, { cacheDir: cache }),
      (e) => isCgviewError(e, 'E_PERMISSION') && e.message.includes(good),
    );
    assert.equal(notRootOnly(src), null);
  });

  it('as root, a source another user owns is compiled from a private copy: the object is the one its content gives', () => {
    const b = base();
    const cache = path.join(b, 'cache');
    const open = nobodysDir(b, 'open');
    const text = viewSource('cv', false);
    const src = path.join(open, 'cv.bpf.c');
    fs.writeFileSync(src, text);
    fs.chownSync(src, NOBODY, NOBODY);
    const r = buildView(src, { out: path.join(b, 'theirs.o'), cacheDir: cache });
    assert.match(r.diagnostics, new RegExp(`note: others can change ${src} .*sha256 ${sha(text)}`));
    // The same content root owns, at the same path: the same object (debug info names the source, not the copy).
    fs.chownSync(open, 0, 0);
    fs.chownSync(src, 0, 0);
    const r2 = buildView(src, { out: path.join(b, 'root.o'), cacheDir: cache });
    assert.equal(r2.diagnostics, '');
    assert.equal(
      sha(fs.readFileSync(path.join(b, 'theirs.o'))),
      sha(fs.readFileSync(path.join(b, 'root.o'))),
    );
    assert.ok(!fs.readFileSync(path.join(b, 'root.o')).includes('/proc/self/fd'));
  });

  it('clang diagnostics name the source, not the private copy', () => {
    const b = base();
    const src = path.join(b, 'broken.bpf.c');
    fs.writeFileSync(src, 'int x = ;\n');
    assert.throws(
      () => buildView(src, { out: path.join(b, 'broken.o'), cacheDir: path.join(b, 'cache') }),
      (e) =>
        isCgviewError(e, 'E_BUILD') && e.message.includes(`${src}:1:`) && !e.message.includes('/proc/self'),
    );
  });

  it('a cache directory that cannot be made is E_PERMISSION with a hint; a pin by others fails before compiling', async () => {
    const b = base();
    const home = nobodysDir(b, 'home');
    fs.writeFileSync(path.join(home, 'nv.bpf.c'), viewSource('nv', false));
    let r = await cgview(['build', 'nv.bpf.c'], home, { HOME: '/nonexistent' }, true);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^cgview: build cache \/nonexistent\/\.cache\/cgview: cannot make it: EACCES$/m);
    assert.match(r.stderr, /hint: set CGVIEW_CACHE_DIR/);
    r = await cgview(
      ['pin', './nv.bpf.c:nv', path.join(b, 'nowhere'), '--socket', path.join(b, 'no.sock')],
      home,
      { HOME: home },
      true,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /only root may pin views/);
    assert.match(r.stderr, /hint: run it as root/);
    assert.ok(!fs.existsSync(path.join(home, '.cache')), 'nothing was built');
  });
});
