/**
 * User view objects: pinning copies the object into a root-owned,
 * content-addressed store and only that copy is loaded, also after a
 * restart; objects someone other than root can write are refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { storeUserView } from '../../src/views/objstore.js';
import { ViewSet } from '../../src/views/registry.js';
import { Daemon, daemonEnv, parseView, readView, waitForAsync } from '../daemon.js';
import { BPF_BUILD, onCleanup, REPO } from '../helpers.js';

const NOBODY = 65534;

/**
 * Builds a user view whose program `probe` prints `variant: <n>`. The number
 * is an immediate, so variants differ in their instructions (program tag),
 * not only in their strings.
 */
function buildVariant(dir: string, tag: string, n: number): string {
  const src = path.join(dir, `${tag}.bpf.c`);
  fs.writeFileSync(
    src,
    `// SPDX-License-Identifier: GPL-2.0
#include "cgview.h"
char LICENSE[] SEC("license") = "GPL";
SEC("iter/cgroup")
int probe(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	if (!cgrp)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "cgroup_id: %llu\\n", cgrp->kn->id);
	BPF_SEQ_PRINTF(ctx->meta->seq, "variant: %d\\n", ${n});
	return 0;
}
`,
  );
  const out = path.join(dir, `${tag}.bpf.o`);
  execFileSync('clang', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    `-I${BPF_BUILD}`,
    `-I${path.join(REPO, 'bpf')}`,
    `-I${path.join(REPO, 'bpf', 'include')}`,
    '-c',
    src,
    '-o',
    out,
  ]);
  return out;
}

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-obj-'));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('user view objects', () => {
  const src = tmpDir();
  const a = buildVariant(src, 'a', 1);
  const b = buildVariant(src, 'b', 2);

  it('are loaded from the copy made at pin time, also after the file changed and a restart', async () => {
    const env = daemonEnv();
    const mine = path.join(src, 'mine.bpf.o');
    fs.copyFileSync(a, mine);
    let d = await Daemon.start(env);
    await d.ok(['pin', `${mine}:probe`, env.bpffs, '--cgroup', env.cgroupRoot, '--inherit']);
    const file = path.join(env.bpffs, 'probe');
    assert.equal(parseView(readView(file) ?? '')['variant'], '1');
    await d.stop();
    // Someone replaces the object while the daemon is down.
    fs.copyFileSync(b, mine);
    d = await Daemon.start(env);
    assert.equal(parseView(readView(file) ?? '')['variant'], '1', 'the stored copy, not the new content');
    // The state names the stored copy: root's, 0700, named by its content.
    const st = await d.status();
    const spec = st.roots[0]!.inherit[0]!.view;
    const store = path.join(path.dirname(env.state), 'objects');
    assert.match(spec, new RegExp(`^${store}/[0-9a-f]{64}\\.bpf\\.o:probe$`));
    assert.equal(fs.statSync(store).mode & 0o777, 0o700);
    assert.equal(fs.statSync(spec.slice(0, spec.lastIndexOf(':'))).mode & 0o777, 0o400);
    // A cgroup made now gets the stored program too.
    fs.mkdirSync(path.join(env.cgroupRoot, 'c1'));
    const child = path.join(env.bpffs, 'c1', 'probe');
    await waitForAsync(() => readView(child) !== null, 10000, 'the new cgroup mirrored');
    assert.equal(parseView(readView(child) ?? '')['variant'], '1');
    await d.stop();
  });

  it('refuses objects someone other than root can write, or in a directory they can write', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    const theirs = path.join(src, 'theirs.bpf.o');
    fs.copyFileSync(a, theirs);
    fs.chownSync(theirs, NOBODY, NOBODY);
    const open = path.join(src, 'open.bpf.o');
    fs.copyFileSync(a, open);
    fs.chmodSync(open, 0o666);
    const dir = path.join(src, 'world');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    const inOpenDir = path.join(dir, 'x.bpf.o');
    fs.copyFileSync(a, inOpenDir);
    for (const [obj, why] of [
      [theirs, /theirs\.bpf\.o is owned by uid 65534, not root/],
      [open, /open\.bpf\.o is writable by group or others/],
      [inOpenDir, /world is writable by group or others/],
    ] as const) {
      const r = await d.cli(['pin', `${obj}:probe`, env.bpffs, '--cgroup', env.cgroupRoot]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, why);
    }
    assert.deepEqual((await d.status()).roots, []);
    await d.stop();
  });

  // User views here have no collector: a host that has none.
  const noCollectors = { acquire: () => ({}), running: () => false, release: () => {} };

  it('the registry loads no user object outside the store, nor a stored copy that was changed', () => {
    const views = new ViewSet(noCollectors);
    try {
      assert.throws(() => views.get(`${a}:probe`), /not in the object store/);
      const store = path.join(tmpDir(), 'objects');
      const spec = storeUserView(`${a}:probe`, store);
      assert.equal(views.get(spec).def.program, 'probe');
      // Only the normalized path of a stored copy: no '..' through which a symlink could lead elsewhere.
      const i = spec.lastIndexOf('/objects/');
      const dotted = `${spec.slice(0, i)}/objects/../objects/${spec.slice(i + '/objects/'.length)}`;
      assert.throws(() => views.get(dotted), /not a normalized absolute path/);
      views.close();
      const stored = spec.slice(0, spec.lastIndexOf(':'));
      fs.chmodSync(stored, 0o600);
      fs.copyFileSync(b, stored);
      assert.throws(() => new ViewSet(noCollectors).get(spec), /does not match its name/);
    } finally {
      views.close();
    }
  });
});
