// TTL lines packed into typed arrays and one buffer: a handful of objects however many lines, their
// bytes off the JavaScript heap. The attach step's batches are built and wait in this form while
// their transactions are in flight: per-key objects that outlive V8's young-generation collections
// make V8 grow that generation, and node's RSS with it, the more keys pass through (BENCHMARKS.md;
// bench/mem-trace.mjs and node --trace-gc-nvp show it).
import type { TtlLine } from './ttl.ts';

export class PackedLines {
  length = 0;
  private readonly exps: Float64Array;
  private readonly kvs: BigUint64Array;
  /** The base64 keys one after another (latin1), key i ending at ends[i]. */
  private keys: Buffer;
  private readonly ends: Uint32Array;
  /** The same for the values (base64), and whether line i has one (a v1 pending file's have none). */
  private values: Buffer;
  private readonly valueEnds: Uint32Array;
  private readonly hasValue: Uint8Array;

  /** Room for `capacity` lines. */
  constructor(capacity: number) {
    this.exps = new Float64Array(capacity);
    this.kvs = new BigUint64Array(capacity);
    this.ends = new Uint32Array(capacity);
    this.keys = Buffer.allocUnsafe(capacity * 64);
    this.valueEnds = new Uint32Array(capacity);
    this.hasValue = new Uint8Array(capacity);
    this.values = Buffer.allocUnsafe(capacity * 64);
  }

  get full(): boolean {
    return this.length === this.ends.length;
  }

  push([exp, key, kv, value]: TtlLine): void {
    if (this.full) throw new Error('a full PackedLines');
    const i = this.length++;
    const at = i ? this.ends[i - 1]! : 0;
    this.keys = roomFor(this.keys, at, key.length);
    this.exps[i] = exp;
    this.kvs[i] = kv;
    this.ends[i] = at + this.keys.write(key, at, 'latin1');
    const vat = i ? this.valueEnds[i - 1]! : 0;
    this.hasValue[i] = value === undefined ? 0 : 1;
    this.values = roomFor(this.values, vat, value?.length ?? 0);
    this.valueEnds[i] = vat + (value ? this.values.write(value, vat, 'latin1') : 0);
  }

  /** Line i, as it was pushed. */
  line(i: number): TtlLine {
    const key = this.keys.toString('latin1', i ? this.ends[i - 1]! : 0, this.ends[i]!);
    if (!this.hasValue[i]) return [this.exps[i]!, key, this.kvs[i]!];
    return [
      this.exps[i]!,
      key,
      this.kvs[i]!,
      this.values.toString('latin1', i ? this.valueEnds[i - 1]! : 0, this.valueEnds[i]!),
    ];
  }
}

/** `buf`, or a bigger copy of its first `used` bytes, with room for `more`. */
function roomFor(buf: Buffer, used: number, more: number): Buffer {
  if (used + more <= buf.length) return buf;
  const bigger = Buffer.allocUnsafe(Math.max(2 * buf.length, used + more));
  buf.copy(bigger, 0, 0, used);
  return bigger;
}
