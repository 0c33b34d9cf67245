// TTL lines packed into typed arrays and one buffer: a handful of objects however many lines, their
// bytes off the JavaScript heap. The attach step's batches are built and wait in this form while
// their transactions are in flight: per-key objects that outlive V8's young-generation collections
// make V8 grow that generation, and node's RSS with it, the more keys pass through (a million keys:
// by ~60 MiB; bench/mem-trace.mjs and node --trace-gc-nvp show it).
import type { TtlLine } from './ttl.ts';

export class PackedLines {
  length = 0;
  private readonly exps: Float64Array;
  private readonly kvs: BigUint64Array;
  /** The base64 keys one after another (latin1), key i ending at ends[i]. */
  private keys: Buffer;
  private readonly ends: Uint32Array;

  /** Room for `capacity` lines. */
  constructor(capacity: number) {
    this.exps = new Float64Array(capacity);
    this.kvs = new BigUint64Array(capacity);
    this.ends = new Uint32Array(capacity);
    this.keys = Buffer.allocUnsafe(capacity * 64);
  }

  get full(): boolean {
    return this.length === this.ends.length;
  }

  push([exp, key, kv]: TtlLine): void {
    if (this.full) throw new Error('a full PackedLines');
    const i = this.length++;
    const at = i ? this.ends[i - 1]! : 0;
    if (at + key.length > this.keys.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.keys.length, at + key.length));
      this.keys.copy(bigger, 0, 0, at);
      this.keys = bigger;
    }
    this.exps[i] = exp;
    this.kvs[i] = kv;
    this.ends[i] = at + this.keys.write(key, at, 'latin1');
  }

  /** Line i, as it was pushed. */
  line(i: number): TtlLine {
    return [this.exps[i]!, this.keys.toString('latin1', i ? this.ends[i - 1]! : 0, this.ends[i]!), this.kvs[i]!];
  }
}
