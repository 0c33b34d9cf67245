// The transformer's records in mod revision order. etcdctl migrate puts each record into bbolt keyed
// by its mod revision and commits every 100 ms or 10,000 puts. Given in key order (as it walks the v2
// store), the revisions are scattered: every commit dirties pages all over the B+tree and rewrites
// them. Given in revision order, each commit only appends (migrate twice as fast; BENCHMARKS.md).
// So the transformer holds its records until migrate has sent every node, then gives them
// back sorted (stable: equal revisions keep their order).
//
// Memory stays bounded: records wait in one buffer of at most `budget` bytes; beyond that they go to
// a spill file in `dir`, which is then split by revision range into bucket files of about half the
// budget, each sorted in memory in turn. Besides the buffer, 8 bytes a key (the revisions, for the
// ranges; twice that while they are sorted). The files hold key values: mode 0600, each removed once
// read; a crash leaves them in the work area, which the next run empties first.
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** An entry: the revision (float64 LE), then the record (its 8-byte length, then its bytes). */
const REV = 8;
const entrySize = (buf: Buffer, at: number): number => REV + 8 + Number(buf.readBigUInt64LE(at + REV));

/** Chunks given back are about this big. */
const CHUNK = 1 << 20;

export const DEFAULT_BUDGET = 32 << 20;

/** A growable Float64Array. */
class Numbers {
  a = new Float64Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  view(): Float64Array {
    return this.a.subarray(0, this.n);
  }
}

export class RevisionOrder {
  private buf: Buffer;
  private used = 0;
  /** Where each entry in `buf` starts, and its revision. */
  private at = new Numbers();
  private revs = new Numbers();
  /** Every revision added, for the bucket ranges. */
  private all = new Numbers();
  private spill?: { file: string; fd: number; bytes: number };

  private readonly dir: string;
  private readonly budget: number;

  constructor(dir: string, budget = DEFAULT_BUDGET) {
    this.dir = dir;
    this.budget = budget;
    this.buf = Buffer.allocUnsafe(Math.min(1 << 20, budget));
  }

  get count(): number {
    return this.all.n;
  }

  add(revision: number, record: Buffer): void {
    const size = REV + record.length;
    if (this.used + size > this.buf.length) {
      if (this.used + size <= this.budget)
        this.grow(Math.min(this.budget, Math.max(2 * this.buf.length, this.used + size)));
      else {
        this.spillBuffer();
        if (size > this.buf.length) this.grow(size);
      }
    }
    this.at.push(this.used);
    this.revs.push(revision);
    this.all.push(revision);
    this.buf.writeDoubleLE(revision, this.used);
    record.copy(this.buf, this.used + REV);
    this.used += size;
  }

  /** The records (without revisions), in revision order, in chunks of about 1 MiB. */
  *sorted(): Generator<Buffer> {
    if (!this.spill) {
      yield* inOrder(this.buf, this.at.view(), this.revs.view());
      return;
    }
    this.spillBuffer();
    this.buf = Buffer.alloc(0);
    const { file, fd, bytes } = this.spill;
    closeSync(fd);
    const buckets = this.split(file, bytes);
    unlinkSync(file);
    // One buffer for every bucket in turn (not one each, for the collector to find later).
    const into = Buffer.allocUnsafe(Math.max(...buckets.map((b) => b.bytes)));
    for (const bucket of buckets) {
      const data = readInto(bucket.name, into.subarray(0, bucket.bytes));
      unlinkSync(bucket.name);
      const at = new Numbers();
      const revs = new Numbers();
      for (let pos = 0; pos < data.length; pos += entrySize(data, pos)) {
        at.push(pos);
        revs.push(data.readDoubleLE(pos));
      }
      yield* inOrder(data, at.view(), revs.view());
    }
  }

  private grow(size: number): void {
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }

  private spillBuffer(): void {
    if (!this.spill) {
      const file = path.join(this.dir, 'records.spill');
      this.spill = { file, fd: openSync(file, 'wx', 0o600), bytes: 0 };
    }
    writeAll(this.spill.fd, this.buf.subarray(0, this.used));
    this.spill.bytes += this.used;
    this.used = 0;
    this.at.n = 0;
    this.revs.n = 0;
  }

  /**
   * Splits the spill file into files by revision range, about half the budget each; their names and sizes, lowest
   * range first.
   */
  private split(file: string, bytes: number): Array<{ name: string; bytes: number }> {
    const k = Math.max(1, Math.ceil(bytes / (this.budget / 2)));
    const sorted = Float64Array.from(this.all.view()).sort();
    // Bucket j holds the revisions in [bounds[j-1], bounds[j]): equal revisions share one.
    const bounds = Array.from({ length: k - 1 }, (_, j) => sorted[Math.floor(((j + 1) * sorted.length) / k)]!);
    const names = Array.from({ length: k }, (_, j) => path.join(this.dir, `records.${j}`));
    const outs = names.map((name) => ({
      fd: openSync(name, 'wx', 0o600),
      buf: Buffer.allocUnsafe(256 << 10),
      used: 0,
      bytes: 0,
    }));
    const bucketOf = (rev: number) => {
      let lo = 0;
      let hi = bounds.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rev < bounds[mid]!) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    const put = (out: (typeof outs)[number], entry: Buffer) => {
      out.bytes += entry.length;
      if (out.used + entry.length > out.buf.length) {
        writeAll(out.fd, out.buf.subarray(0, out.used));
        out.used = 0;
      }
      if (entry.length > out.buf.length) writeAll(out.fd, entry);
      else out.used += entry.copy(out.buf, out.used);
    };
    const fd = openSync(file, 'r');
    try {
      let block = Buffer.allocUnsafe(CHUNK);
      let have = 0;
      for (;;) {
        const n = readSync(fd, block, have, block.length - have, null);
        have += n;
        let pos = 0;
        while (pos + REV + 8 <= have && pos + entrySize(block, pos) <= have) {
          const size = entrySize(block, pos);
          put(outs[bucketOf(block.readDoubleLE(pos))]!, block.subarray(pos, pos + size));
          pos += size;
        }
        if (n === 0) {
          if (pos !== have) throw new Error(`the record spill file ${file} ends in the middle of a record`);
          break;
        }
        // Keep the partial entry; make room for a whole one.
        block.copy(block, 0, pos, have);
        have -= pos;
        const need = have >= REV + 8 ? entrySize(block, 0) : 0;
        if (need > block.length) {
          const bigger = Buffer.allocUnsafe(need);
          block.copy(bigger, 0, 0, have);
          block = bigger;
        }
      }
    } finally {
      closeSync(fd);
    }
    for (const out of outs) {
      writeAll(out.fd, out.buf.subarray(0, out.used));
      closeSync(out.fd);
    }
    return names.map((name, j) => ({ name, bytes: outs[j]!.bytes }));
  }
}

/** The records of the entries in `buf`, in revision order (stable), in chunks. */
function* inOrder(buf: Buffer, at: Float64Array, revs: Float64Array): Generator<Buffer> {
  const order = Uint32Array.from({ length: at.length }, (_, i) => i);
  let ordered = true;
  for (let i = 1; i < revs.length && ordered; i++) ordered = revs[i - 1]! <= revs[i]!;
  if (!ordered) order.sort((a, b) => revs[a]! - revs[b]! || a - b);
  let out = Buffer.allocUnsafe(CHUNK);
  let used = 0;
  for (const i of order) {
    const start = at[i]! + REV;
    const end = at[i]! + entrySize(buf, at[i]!);
    if (used + end - start > out.length && used > 0) {
      yield out.subarray(0, used);
      out = Buffer.allocUnsafe(Math.max(CHUNK, end - start));
      used = 0;
    }
    if (end - start > out.length) out = Buffer.allocUnsafe(end - start);
    used += buf.copy(out, used, start, end);
  }
  if (used > 0) yield out.subarray(0, used);
}

/** Reads the whole file (exactly `into.length` bytes) into `into`. */
function readInto(file: string, into: Buffer): Buffer {
  const fd = openSync(file, 'r');
  try {
    for (let off = 0; off < into.length;) {
      const n = readSync(fd, into, off, into.length - off, off);
      if (n === 0) throw new Error(`the record bucket file ${file} is shorter than written`);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return into;
}

function writeAll(fd: number, b: Buffer): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
}
