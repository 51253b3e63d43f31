/**
 * A real FUSE mount: the kind of file system any user can mount (with
 * fusermount, under sticky /tmp too) and that says whatever it likes about
 * owners. This one, served by the test itself over /dev/fuse, says its
 * directory and the object in it are root's, 0755 and 0644, and serves the
 * bytes of info.bpf.o: the owner/mode checks alone would accept it. The
 * daemon must refuse it for the file system it is on.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv } from '../daemon.js';
import { BPF_BUILD, onCleanup } from '../helpers.js';

const OP = { LOOKUP: 1, FORGET: 2, GETATTR: 3, OPEN: 14, READ: 15, STATFS: 17, RELEASE: 18 } as const;
const OP_FLUSH = 25;
const OP_INIT = 26;
const OP_INTERRUPT = 36;
const OP_BATCH_FORGET = 42;
const ENOENT = 2;
const ENOSYS = 38;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/**
 * A minimal FUSE server (protocol 7.31 layouts, x86_64): a root directory
 * (node 1) holding `name` (node 2) with `data`, both "root's". Serves on the
 * event loop, so the test process must not itself touch the mount.
 */
class TinyFuse {
  readonly fd: number;
  #stopped = false;
  constructor(
    readonly name: string,
    readonly data: Buffer,
  ) {
    this.fd = fs.openSync('/dev/fuse', 'r+');
  }

  static attr(b: Buffer, off: number, node: number, mode: number, size: number): void {
    b.writeBigUInt64LE(BigInt(node), off); // ino
    b.writeBigUInt64LE(BigInt(size), off + 8);
    b.writeUInt32LE(mode, off + 60);
    b.writeUInt32LE(1, off + 64); // nlink
    b.writeUInt32LE(0, off + 68); // uid: root, it says
    b.writeUInt32LE(0, off + 72); // gid
    b.writeUInt32LE(4096, off + 80); // blksize
  }

  #nodeAttr(b: Buffer, off: number, node: number): void {
    if (node === 1) TinyFuse.attr(b, off, 1, S_IFDIR | 0o755, 0);
    else TinyFuse.attr(b, off, 2, S_IFREG | 0o644, this.data.length);
  }

  #reply(unique: bigint, error: number, body: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + body.length, 0);
    h.writeInt32LE(-error, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      fs.writeSync(this.fd, Buffer.concat([h, body]));
    } catch {
      /* the request was interrupted, or the mount is gone */
    }
  }

  /** The answer to one request: [errno, body], or null for none (FORGET and the like). */
  #answer(req: Buffer): [number, Buffer?] | null {
    const opcode = req.readUInt32LE(4);
    const node = Number(req.readBigUInt64LE(16));
    const body = req.subarray(40);
    switch (opcode) {
      case OP_INIT: {
        const out = Buffer.alloc(64);
        out.writeUInt32LE(7, 0);
        out.writeUInt32LE(31, 4);
        out.writeUInt32LE(body.readUInt32LE(8), 8); // max_readahead as asked
        out.writeUInt32LE(1 << 17, 20); // max_write
        out.writeUInt16LE(32, 28); // max_pages
        return [0, out];
      }
      case OP.LOOKUP: {
        const name = body.subarray(0, body.indexOf(0)).toString('latin1');
        if (node !== 1 || name !== this.name) return [ENOENT];
        const out = Buffer.alloc(128);
        out.writeBigUInt64LE(2n, 0); // nodeid
        this.#nodeAttr(out, 40, 2);
        return [0, out];
      }
      case OP.GETATTR: {
        const out = Buffer.alloc(104);
        this.#nodeAttr(out, 16, node);
        return [0, out];
      }
      case OP.STATFS: {
        const out = Buffer.alloc(80);
        out.writeUInt32LE(4096, 40); // bsize
        out.writeUInt32LE(255, 44); // namelen
        out.writeUInt32LE(4096, 48); // frsize
        return [0, out];
      }
      case OP.OPEN:
        return [0, Buffer.alloc(16)];
      case OP.READ: {
        const offset = Number(body.readBigUInt64LE(8));
        const size = body.readUInt32LE(16);
        return [0, this.data.subarray(offset, offset + size)];
      }
      case OP.RELEASE:
      case OP_FLUSH:
        return [0];
      case OP.FORGET:
      case OP_BATCH_FORGET:
      case OP_INTERRUPT:
        return null; // no answer expected
      default:
        return [ENOSYS];
    }
  }

  serve(): void {
    const buf = Buffer.alloc(1 << 20);
    const next = () =>
      fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
        if (this.#stopped || err) return; // ENODEV once unmounted
        const req = Buffer.from(buf.subarray(0, n));
        const a = this.#answer(req);
        if (a) this.#reply(req.readBigUInt64LE(8), a[0], a[1]);
        next();
      });
    next();
  }

  stop(): void {
    this.#stopped = true;
  }
}

function mount(fuseFd: number, dir: string): Promise<void> {
  const opts = 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other';
  const child = spawn('mount', ['-t', 'fuse', '-o', opts, 'cgvt-fuse', dir], {
    stdio: ['ignore', 'ignore', 'pipe', fuseFd],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mount: ${code}: ${err}`)))),
  );
}

describe('object store on a real FUSE mount', () => {
  it('the daemon refuses an object there, though the mount says it is root-owned', async () => {
    const env = daemonEnv();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgvt-fuse-'));
    onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const mnt = path.join(tmp, 'mnt');
    fs.mkdirSync(mnt, { mode: 0o755 });
    const server = new TinyFuse('x.bpf.o', fs.readFileSync(path.join(BPF_BUILD, 'info.bpf.o')));
    onCleanup(() => fs.closeSync(server.fd));
    // mount(8) passes the options to mount(2); fd 3 is the server's /dev/fuse, given to it.
    await mount(server.fd, mnt);
    // Registered before the daemon: it runs after the daemon is gone (cleanups go newest
    // first), so nobody is inside the mount and the server's pending read ends (ENODEV).
    onCleanup(() => {
      server.stop();
      execFileSync('umount', ['-l', mnt]);
    });
    // Only now: /dev/fuse answers EPERM to a read before the mount.
    server.serve();
    const d = await Daemon.start(env);
    const r = await d.cli(['pin', `${mnt}/x.bpf.o:info`, env.bpffs, '--cgroup', env.cgroupRoot]);
    assert.equal(r.code, 1, `accepted an object on FUSE: ${r.stdout}${r.stderr}`);
    assert.match(
      r.stderr,
      /mnt is on a file system of type 0x65735546 \(FUSE\), not a local one whose owners and modes are the kernel's own/,
    );
    assert.deepEqual((await d.status()).roots, []);
    await d.stop();
  });
});
