/**
 * A growable ring of sparse history records, one per (sample, column) that
 * carries something: (seq, column id, value) in three typed arrays, 16 bytes
 * a record. Records are appended in seq order, so a range is found by binary
 * search and the oldest leave from the head.
 */

export const RECORD_BYTES = 16;

export class RecordRing {
  private seqs: Uint32Array;
  private cols: Uint32Array;
  private vals: Float64Array;
  private head = 0;
  private n = 0;

  constructor(capacity = 16) {
    this.seqs = new Uint32Array(capacity);
    this.cols = new Uint32Array(capacity);
    this.vals = new Float64Array(capacity);
  }

  get length(): number {
    return this.n;
  }
  get capacity(): number {
    return this.seqs.length;
  }
  /** Bytes held by the typed arrays. */
  get bytes(): number {
    return this.capacity * RECORD_BYTES;
  }

  push(seq: number, col: number, val: number): void {
    // 1.5x: at most a third of a full ring is slack (an hour of a busy cgroup is some 16,000 records).
    if (this.n === this.capacity) this.resize(Math.max(16, Math.ceil(this.capacity * 1.5)));
    const i = (this.head + this.n) % this.capacity;
    this.seqs[i] = seq;
    this.cols[i] = col;
    this.vals[i] = val;
    this.n++;
  }

  seqAt(k: number): number {
    return this.seqs[(this.head + k) % this.capacity]!;
  }
  colAt(k: number): number {
    return this.cols[(this.head + k) % this.capacity]!;
  }
  valAt(k: number): number {
    return this.vals[(this.head + k) % this.capacity]!;
  }

  /** Seq of the oldest record, or undefined when empty. */
  firstSeq(): number | undefined {
    return this.n ? this.seqAt(0) : undefined;
  }

  /** Index of the first record with seq >= s (length when none). */
  lowerBound(s: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqAt(mid) < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops the records older than seq s; calls onDrop for each (gauges keep their last value). */
  dropBefore(s: number, onDrop?: (col: number, val: number) => void): number {
    let k = 0;
    while (k < this.n && this.seqAt(k) < s) {
      if (onDrop) onDrop(this.colAt(k), this.valAt(k));
      k++;
    }
    this.head = (this.head + k) % this.capacity;
    this.n -= k;
    // Give memory back when a quarter or less is used.
    if (this.capacity > 64 && this.n * 4 <= this.capacity) this.resize(Math.max(16, this.n * 2));
    return k;
  }

  /** Keeps at most the newest `keep` records, whole samples only; returns the seq data now starts at. */
  trimTo(keep: number, onDrop?: (col: number, val: number) => void): number | undefined {
    if (this.n <= keep) return this.firstSeq();
    // Never split one sample's records: cut at the next seq boundary (keeps at most `keep`).
    let cut = this.n - keep;
    while (cut < this.n && this.seqAt(cut) === this.seqAt(cut - 1)) cut++;
    const from = cut === this.n ? this.seqAt(this.n - 1) + 1 : this.seqAt(cut);
    this.dropBefore(from, onDrop);
    this.resize(Math.max(16, Math.ceil(this.n * 1.25)));
    return from;
  }

  private resize(cap: number): void {
    if (cap < this.n) cap = this.n;
    const seqs = new Uint32Array(cap);
    const cols = new Uint32Array(cap);
    const vals = new Float64Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) % this.capacity;
      seqs[k] = this.seqs[i]!;
      cols[k] = this.cols[i]!;
      vals[k] = this.vals[i]!;
    }
    this.seqs = seqs;
    this.cols = cols;
    this.vals = vals;
    this.head = 0;
  }
}
