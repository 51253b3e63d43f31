/**
 * `ls DIR` by an unprivileged peer: the daemon checks the directory by a
 * descriptor, then lists it again from the tree's root fd. What is listed
 * must be the inode that was checked: a directory swapped in between is
 * refused. The swap is made here between the two steps by hand (racing a
 * real client against the daemon would pass by luck most of the time).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import { openDir } from '../../src/kernel/index.js';
import { scanTree, TagCache } from '../../src/tree/treefs.js';
import { checkFdLeaks, tmpBpffsDir } from '../helpers.js';

describe('ls of a checked directory', () => {
  checkFdLeaks();

  const subdirs = (m: Map<string, unknown>, rel: string) => [...m.keys()].filter((r) => r !== rel).sort();

  it('lists the directory when it is the inode checked, refuses another', () => {
    const root = tmpBpffsDir();
    fs.mkdirSync(path.join(root, 'a', 'x'), { recursive: true });
    const st = fs.statSync(path.join(root, 'a'), { bigint: true });
    const fd = openDir(root);
    try {
      const ok = scanTree(fd, 'a', new TagCache(), false, (r) => r === 'a', { dev: st.dev, ino: st.ino });
      assert.deepEqual(subdirs(ok, 'a'), ['a/x']);
      assert.throws(
        () => scanTree(fd, 'a', new TagCache(), false, (r) => r === 'a', { dev: st.dev, ino: st.ino + 1n }),
        (e: unknown) =>
          isCgviewError(e) && e.code === 'E_PERMISSION' && /changed while it was checked/.test(e.message),
      );
    } finally {
      fd.close();
    }
  });

  it('a directory swapped in after the check is not listed', () => {
    const root = tmpBpffsDir();
    fs.mkdirSync(path.join(root, 'a', 'mine'), { recursive: true });
    // What another user could list and the daemon must not show: b/secret.
    fs.mkdirSync(path.join(root, 'b', 'secret'), { recursive: true });
    // The check: the inode of a.
    const checked = fs.statSync(path.join(root, 'a'), { bigint: true });
    // The swap, between check and use.
    fs.renameSync(path.join(root, 'a'), path.join(root, 'c'));
    fs.renameSync(path.join(root, 'b'), path.join(root, 'a'));
    const fd = openDir(root);
    try {
      // Without the expectation the path alone decides: the other directory is listed.
      assert.deepEqual(
        subdirs(
          scanTree(fd, 'a', new TagCache(), false, (r) => r === 'a'),
          'a',
        ),
        ['a/secret'],
      );
      assert.throws(
        () =>
          scanTree(fd, 'a', new TagCache(), false, (r) => r === 'a', { dev: checked.dev, ino: checked.ino }),
        (e: unknown) => isCgviewError(e) && e.code === 'E_PERMISSION',
      );
    } finally {
      fd.close();
    }
  });
});
