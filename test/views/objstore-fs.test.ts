/**
 * The object store's ownership check refuses file systems whose owners and
 * modes cannot be trusted (a user's FUSE mount, NFS without root squash,
 * SMB, 9p, ...), decided by statfs f_type: such a file system may report
 * root as the owner of a file a user wrote. Before, only the reported
 * owner and mode were looked at.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import {
  BPF_FS_MAGIC,
  CIFS_SUPER_MAGIC,
  FUSE_SUPER_MAGIC,
  NFS_SUPER_MAGIC,
  SMB2_SUPER_MAGIC,
  V9FS_MAGIC,
} from '../../src/kernel/abi.js';
import { checkRootOnly, storeUserView, untrustedFs } from '../../src/views/objstore.js';
import { BPF_BUILD, onCleanup } from '../helpers.js';

const TMPFS_MAGIC = 0x01021994;
const EXT4_SUPER_MAGIC = 0xef53;
const XFS_SUPER_MAGIC = 0x58465342;
const BTRFS_SUPER_MAGIC = 0x9123683e;
const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-objfs-'));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A copy of info.bpf.o, root's and 0644, in a fresh root-owned directory. */
function object(dir = tmpDir()): string {
  const p = path.join(dir, 'v.bpf.o');
  fs.copyFileSync(path.join(BPF_BUILD, 'info.bpf.o'), p);
  fs.chmodSync(p, 0o644);
  return p;
}

describe('object store: file systems that cannot be trusted', () => {
  it('untrustedFs: FUSE, NFS, SMB/CIFS, 9p and the like are refused; local ones are not', () => {
    for (const [t, name] of [
      [FUSE_SUPER_MAGIC, 'FUSE'],
      [NFS_SUPER_MAGIC, 'NFS'],
      [CIFS_SUPER_MAGIC, 'CIFS'],
      [SMB2_SUPER_MAGIC, 'SMB2'],
      [V9FS_MAGIC, '9p'],
    ] as const)
      assert.equal(untrustedFs(t), name);
    for (const t of [
      TMPFS_MAGIC,
      EXT4_SUPER_MAGIC,
      XFS_SUPER_MAGIC,
      BTRFS_SUPER_MAGIC,
      OVERLAYFS_SUPER_MAGIC,
      BPF_FS_MAGIC,
    ])
      assert.equal(untrustedFs(t), undefined, t.toString(16));
  });

  it('checkRootOnly refuses a path with any component on such a file system (injected f_type)', () => {
    const obj = object();
    const dir = path.dirname(obj);
    // Where a user's FUSE mount would be: the directory, or only the file (a mount on it).
    for (const on of [dir, obj, '/tmp']) {
      const seen: string[] = [];
      const fsType = (p: string) => {
        seen.push(p);
        return p === on ? FUSE_SUPER_MAGIC : EXT4_SUPER_MAGIC;
      };
      assert.throws(
        () => checkRootOnly(obj, 'view object', { fsType }),
        (e) =>
          isCgviewError(e, 'E_PERMISSION') &&
          e.message ===
            `view object: ${on} is on a FUSE file system, whose owners and modes cannot be trusted` &&
          /local file system/.test(e.hint ?? ''),
        on,
      );
      assert.ok(seen.includes('/'), 'the check starts at /');
    }
    // Every component is asked about, and a local file system everywhere passes.
    const seen: string[] = [];
    checkRootOnly(obj, 'view object', {
      fsType: (p) => {
        seen.push(p);
        return EXT4_SUPER_MAGIC;
      },
    });
    assert.deepEqual(seen, [
      '/',
      ...obj
        .split('/')
        .slice(1)
        .map((_, i, a) => `/${a.slice(0, i + 1).join('/')}`),
    ]);
  });

  it('the real statfs: objects on this host (tmp, and a tmpfs mounted here) are trusted and stored', () => {
    const obj = object();
    assert.ok(checkRootOnly(obj, 'view object').isFile());
    // A tmpfs of our own: a local file system, its owners are this kernel's.
    const mnt = tmpDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=4m', 'cgvt-objfs', mnt]);
    onCleanup(() => execFileSync('umount', ['-l', mnt]));
    assert.equal(fs.statfsSync(mnt).type, TMPFS_MAGIC);
    const onTmpfs = object(mnt);
    const spec = storeUserView(`${onTmpfs}:info`, path.join(tmpDir(), 'objects'));
    assert.match(spec, /\/objects\/[0-9a-f]{64}\.bpf\.o:info$/);
  });
});
