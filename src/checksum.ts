// A logical checksum of a keyspace: key count, a hash over keys and values, and how many keys
// carry a TTL (and a hash of which). Order-independent (a sum of per-key digests), so a v2 walk
// and a v3 range give the same figure for the same data, in O(1) memory.
import crypto from 'node:crypto';

export interface Checksum {
  keys: number;
  ttlKeys: number;
  /** 64-bit sum of the per-key digests of (key, value), hex. */
  kv: string;
  /** 64-bit sum of the digests of the keys that carry a TTL, hex. */
  ttl: string;
}

const MASK = (1n << 64n) - 1n;

export class ChecksumBuilder {
  private keys = 0;
  private ttlKeys = 0;
  private kv = 0n;
  private ttl = 0n;

  /** A builder that starts from a checksum taken before (to take keys out of it, for example). */
  static of(c: Checksum): ChecksumBuilder {
    const b = new ChecksumBuilder();
    b.keys = c.keys;
    b.ttlKeys = c.ttlKeys;
    b.kv = BigInt(`0x${c.kv}`);
    b.ttl = BigInt(`0x${c.ttl}`);
    return b;
  }

  add(key: Uint8Array | string, value: Uint8Array | string, hasTtl: boolean): void {
    this.addDigest(key, kvDigest(key, value), hasTtl);
  }

  /** Adds a key whose (key, value) digest was computed before (see kvDigest). */
  addDigest(key: Uint8Array | string, kv: bigint, hasTtl: boolean): void {
    this.change(key, kv, hasTtl, 1);
  }

  /** Takes out a key added before: one that expired meanwhile, for example. */
  remove(key: Uint8Array | string, kv: bigint, hasTtl: boolean): void {
    this.change(key, kv, hasTtl, -1);
  }

  private change(key: Uint8Array | string, kv: bigint, hasTtl: boolean, sign: 1 | -1): void {
    this.keys += sign;
    this.kv = (this.kv + BigInt(sign) * kv) & MASK;
    if (hasTtl) {
      this.ttlKeys += sign;
      const k = typeof key === 'string' ? Buffer.from(key) : key;
      this.ttl = (this.ttl + BigInt(sign) * crypto.hash('sha256', k, 'buffer').readBigUInt64BE(0)) & MASK;
    }
  }

  digest(): Checksum {
    return { keys: this.keys, ttlKeys: this.ttlKeys, kv: hex(this.kv), ttl: hex(this.ttl) };
  }
}

/** What one key adds to the kv sum: the first 64 bits of sha256(len(key) || key || value). */
export function kvDigest(key: Uint8Array | string, value: Uint8Array | string): bigint {
  const k = typeof key === 'string' ? Buffer.from(key) : key;
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  // One buffer and the one-shot hash: half the cost of a Hash object per key (BENCHMARKS.md).
  const b = Buffer.allocUnsafe(4 + k.length + v.length);
  b.writeUInt32BE(k.length, 0);
  b.set(k, 4);
  b.set(v, 4 + k.length);
  return crypto.hash('sha256', b, 'buffer').readBigUInt64BE(0);
}

const hex = (n: bigint): string => n.toString(16).padStart(16, '0');

export const formatChecksum = (c: Checksum): string => `keys=${c.keys} ttl-keys=${c.ttlKeys} kv=${c.kv} ttl=${c.ttl}`;

export const sameChecksum = (a: Checksum, b: Checksum): boolean =>
  a.keys === b.keys && a.ttlKeys === b.ttlKeys && a.kv === b.kv && a.ttl === b.ttl;

/** Names what differs, for the error that aborts a step. */
export function checksumMismatch(before: Checksum, after: Checksum): string | undefined {
  if (sameChecksum(before, after)) return undefined;
  const diffs: string[] = [];
  if (before.keys !== after.keys) diffs.push(`key count ${before.keys} -> ${after.keys}`);
  if (before.kv !== after.kv) diffs.push('keys or values differ');
  if (before.ttlKeys !== after.ttlKeys || before.ttl !== after.ttl)
    diffs.push(
      `keys with a TTL ${before.ttlKeys} -> ${after.ttlKeys}` +
        `${before.ttlKeys === after.ttlKeys ? ' (different keys)' : ''}`,
    );
  return diffs.join(', ');
}
