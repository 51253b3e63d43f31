/**
 * The object store's ownership check loads user objects only from local
 * file systems whose owners and modes are the kernel's own (ext4, xfs,
 * btrfs, tmpfs, ...), decided by statfs f_type: an allow-list. Before, a
 * deny-list (FUSE, NFS, SMB, 9p, ...) let through every file system it did
 * not name, such as Lustre, GPFS or BeeGFS, which may report root as the
 * owner of a file a user wrote.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import { checkRootOnly, fsTypeName, storeUserView, trustedFs } from '../../src/views/objstore.js';
import { BPF_BUILD, onCleanup } from '../helpers.js';

// Written out here, not imported: the test states the values it expects.
const EXT4_SUPER_MAGIC = 0xef53;
const XFS_SUPER_MAGIC = 0x58465342;
const BTRFS_SUPER_MAGIC = 0x9123683e;
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const SQUASHFS_MAGIC = 0x73717368;
const F2FS_SUPER_MAGIC = 0xf2f52010;
const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
const ZFS_SUPER_MAGIC = 0x2fc12fc1;
const BCACHEFS_STATFS_MAGIC = 0xca451a4e;
const FUSE_SUPER_MAGIC = 0x65735546;
const NFS_SUPER_MAGIC = 0x6969;
const LUSTRE_SUPER_MAGIC = 0x0bd00bd0; // LL_SUPER_MAGIC, in no kernel header
const GPFS_SUPER_MAGIC = 0x47504653;
const BEEGFS_SUPER_MAGIC = 0x19830326;
const BPF_FS_MAGIC = 0xcafe4a11;
const SYSFS_MAGIC = 0x62656572;
const UNKNOWN_MAGIC = 0x1badf00d;

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

const refusal = (what: string, at: string, type: string) =>
  `${what}: ${at} is on a file system of type ${type}, not a local one whose owners and modes are the kernel's own`;

describe('object store: only local file systems are trusted', () => {
  it('trustedFs: the local file systems pass; FUSE, NFS, Lustre, GPFS, BeeGFS, bpffs and an unknown type do not', () => {
    for (const t of [
      EXT4_SUPER_MAGIC,
      XFS_SUPER_MAGIC,
      BTRFS_SUPER_MAGIC,
      TMPFS_MAGIC,
      RAMFS_MAGIC,
      SQUASHFS_MAGIC,
      F2FS_SUPER_MAGIC,
      OVERLAYFS_SUPER_MAGIC,
      ZFS_SUPER_MAGIC,
      BCACHEFS_STATFS_MAGIC,
    ])
      assert.equal(trustedFs(t), true, t.toString(16));
    for (const t of [
      FUSE_SUPER_MAGIC,
      NFS_SUPER_MAGIC,
      LUSTRE_SUPER_MAGIC,
      GPFS_SUPER_MAGIC,
      BEEGFS_SUPER_MAGIC,
      BPF_FS_MAGIC,
      UNKNOWN_MAGIC,
      0,
    ])
      assert.equal(trustedFs(t), false, t.toString(16));
    assert.equal(fsTypeName(FUSE_SUPER_MAGIC), '0x65735546 (FUSE)');
    assert.equal(fsTypeName(NFS_SUPER_MAGIC), '0x6969 (NFS)');
    assert.equal(fsTypeName(LUSTRE_SUPER_MAGIC), '0xbd00bd0');
    assert.equal(fsTypeName(EXT4_SUPER_MAGIC), '0xef53 (ext2/ext3/ext4)');
  });

  it('checkRootOnly refuses a path with any component on another file system (injected f_type)', () => {
    const obj = object();
    const dir = path.dirname(obj);
    // Where such a mount would be: the directory, only the file (a mount on it), or above.
    for (const [on, type, name] of [
      [dir, FUSE_SUPER_MAGIC, '0x65735546 (FUSE)'],
      [obj, NFS_SUPER_MAGIC, '0x6969 (NFS)'],
      [os.tmpdir(), LUSTRE_SUPER_MAGIC, '0xbd00bd0'],
      [dir, UNKNOWN_MAGIC, '0x1badf00d'],
    ] as const) {
      const seen: string[] = [];
      const fsType = (p: string) => {
        seen.push(p);
        return p === on ? type : EXT4_SUPER_MAGIC;
      };
      assert.throws(
        () => checkRootOnly(obj, 'view object', { fsType }),
        (e) =>
          isCgviewError(e, 'E_PERMISSION') &&
          e.message === refusal('view object', on, name) &&
          e.path === on &&
          /copy the object to a local file system \(ext4, xfs, btrfs, tmpfs, \.\.\.\)/.test(e.hint ?? ''),
        `${on} ${name}`,
      );
      assert.ok(seen.includes('/'), 'the check starts at /');
    }
    // Every component is asked about, and local file systems everywhere pass.
    const seen: string[] = [];
    const local = [XFS_SUPER_MAGIC, TMPFS_MAGIC, BTRFS_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, EXT4_SUPER_MAGIC];
    checkRootOnly(obj, 'view object', {
      fsType: (p) => {
        seen.push(p);
        return local[seen.length % local.length]!;
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

  it('the real statfs: objects on this host (tmp, and a tmpfs and a ramfs mounted here) are trusted and stored', () => {
    const obj = object();
    assert.ok(checkRootOnly(obj, 'view object').isFile());
    // File systems of our own: local, their owners are this kernel's.
    for (const [type, magic] of [
      ['tmpfs', TMPFS_MAGIC],
      ['ramfs', RAMFS_MAGIC],
    ] as const) {
      const mnt = tmpDir();
      const opts = type === 'tmpfs' ? 'mode=0755,size=4m' : 'mode=0755';
      execFileSync('mount', ['-t', type, '-o', opts, `cgvt-objfs-${type}`, mnt]);
      onCleanup(() => execFileSync('umount', ['-l', mnt]));
      assert.equal(fs.statfsSync(mnt).type, magic, type);
      const onIt = object(mnt);
      const spec = storeUserView(`${onIt}:info`, path.join(tmpDir(), 'objects'));
      assert.match(spec, /\/objects\/[0-9a-f]{64}\.bpf\.o:info$/, type);
    }
  });

  it('the real statfs: a path through a file system outside the list (sysfs here) is refused', () => {
    // sysfs has real owners, but it is no place for objects: whatever is not
    // listed is refused, which is what an allow-list means. /sys is checked
    // before anything under it.
    assert.equal(fs.statfsSync('/sys').type, SYSFS_MAGIC);
    assert.throws(
      () => checkRootOnly('/sys/fs/bpf', 'view object'),
      (e) => isCgviewError(e, 'E_PERMISSION') && e.message === refusal('view object', '/sys', '0x62656572'),
    );
  });
});
