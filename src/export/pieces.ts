/**
 * Bodies made of kept pieces (docs/metrics.md "Scrape cost"): the formats
 * cut a body into pieces (a family's header, blocks of consecutive series),
 * keep the pieces whose series did not change from one scrape to the next,
 * and join them. The gzip body is one gzip stream made of each piece's own
 * raw deflate output (ended with a sync flush, so that the outputs join into
 * one valid deflate stream), a final empty block, and the CRC-32 of the
 * whole combined from the pieces' CRCs: a kept piece is never compressed
 * again.
 */
import zlib from 'node:zlib';

export interface Piece {
  buf: Buffer;
  /** Raw deflate of `buf` at `level`, sync-flushed (no final block); made on first use. */
  z?: Buffer;
  level?: number;
  crc?: number;
}

/** The pieces as one body. */
export function joinPieces(pieces: readonly Piece[]): Buffer {
  let n = 0;
  for (const p of pieces) n += p.buf.length;
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (const p of pieces) at += p.buf.copy(out, at);
  return out;
}

// --- CRC-32 of a concatenation (zlib's crc32_combine, with the operators kept per length) ---

/** v × mat over GF(2): mat[i] is the image of bit i. */
function times(mat: Readonly<Uint32Array<ArrayBufferLike>>, v: number): number {
  let sum = 0;
  for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

/** a ∘ b: apply b, then a. */
function compose(
  a: Uint32Array<ArrayBufferLike>,
  b: Uint32Array<ArrayBufferLike>,
): Uint32Array<ArrayBufferLike> {
  const r = new Uint32Array(32);
  for (let i = 0; i < 32; i++) r[i] = times(a, b[i]!);
  return r;
}

/** POW[k]: the CRC register after 2^k zero bytes. */
const POW: Uint32Array<ArrayBufferLike>[] = (() => {
  let op: Uint32Array<ArrayBufferLike> = new Uint32Array(32); // one zero bit
  op[0] = 0xedb88320;
  for (let i = 1; i < 32; i++) op[i] = (1 << (i - 1)) >>> 0;
  for (let i = 0; i < 3; i++) op = compose(op, op); // 8 bits
  const out: Uint32Array<ArrayBufferLike>[] = [op];
  for (let k = 1; k < 40; k++) out.push(compose(out[k - 1]!, out[k - 1]!));
  return out;
})();

const shifts = new Map<number, Uint32Array<ArrayBufferLike>>();
/** The operator appending `len` zero bytes to a CRC register (kept per length: kept pieces keep theirs). */
function shiftOf(len: number): Uint32Array<ArrayBufferLike> {
  let op = shifts.get(len);
  if (op) return op;
  let r: Uint32Array<ArrayBufferLike> | null = null;
  for (let k = 0, l = len; l > 0; k++, l = Math.floor(l / 2))
    if (l % 2) r = r ? compose(POW[k]!, r) : POW[k]!;
  op = r ?? new Uint32Array(32).map((_, i) => (1 << i) >>> 0);
  if (shifts.size >= 8192) shifts.clear();
  shifts.set(len, op);
  return op;
}

/** CRC-32 of A‖B from crc(A), crc(B) and |B|. */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  if (lenB === 0) return crcA;
  return (times(shiftOf(lenB), crcA) ^ crcB) >>> 0;
}

const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
/** A final fixed-Huffman block holding only its end code. */
const FINAL = Buffer.from([3, 0]);

/** The pieces as one gzip stream (RFC 1952, one member), each piece compressed once and kept. */
export function gzipPieces(pieces: readonly Piece[], level = 1): Buffer {
  const parts: Buffer[] = [HEADER];
  let crc = 0;
  let size = 0;
  for (const p of pieces) {
    if (p.buf.length === 0) continue;
    if (p.z === undefined || p.level !== level) {
      p.z = zlib.deflateRawSync(p.buf, { level, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      p.level = level;
    }
    p.crc ??= zlib.crc32(p.buf);
    crc = crc32Combine(crc, p.crc, p.buf.length);
    size += p.buf.length;
    parts.push(p.z);
  }
  const tail = Buffer.allocUnsafe(8);
  tail.writeUInt32LE(crc, 0);
  tail.writeUInt32LE(size % 4294967296, 4);
  parts.push(FINAL, tail);
  return Buffer.concat(parts);
}
