import { describe, expect, it } from 'vitest';
import { ChecksumBuilder, checksumMismatch, formatChecksum } from '../../src/checksum.ts';

const sum = (entries: Array<[string, string, boolean]>) => {
  const b = new ChecksumBuilder();
  for (const [k, v, t] of entries) b.add(k, v, t);
  return b.digest();
};

describe('checksum', () => {
  const data: Array<[string, string, boolean]> = [
    ['/registry/a', '1', false],
    ['/registry/b', '2', true],
    ['/registry/c', '', false],
  ];
  it('does not depend on the order keys come in', () => {
    expect(sum(data)).toEqual(sum([...data].reverse()));
  });
  it('changes with any value, key, or TTL flag', () => {
    const a = sum(data);
    expect(
      checksumMismatch(
        a,
        sum([
          ['/registry/a', '1', false],
          ['/registry/b', '3', true],
          ['/registry/c', '', false],
        ]),
      ),
    ).toBe('keys or values differ');
    expect(
      checksumMismatch(
        a,
        sum([
          ['/registry/a', '1', true],
          ['/registry/b', '2', false],
          ['/registry/c', '', false],
        ]),
      ),
    ).toBe('keys with a TTL 1 -> 1 (different keys)');
    expect(checksumMismatch(a, sum(data.slice(1)))).toMatch(/key count 3 -> 2/);
    // key/value boundary is part of the digest: ("ab","c") is not ("a","bc")
    expect(sum([['ab', 'c', false]]).kv).not.toBe(sum([['a', 'bc', false]]).kv);
    expect(checksumMismatch(a, sum(data))).toBeUndefined();
  });
  it('prints counts and hashes, never values', () => {
    const line = formatChecksum(sum([['/registry/secret', 'hunter2', false]]));
    expect(line).toMatch(/^keys=1 ttl-keys=0 kv=[0-9a-f]{16} ttl=0{16}$/);
    expect(line).not.toContain('hunter2');
  });
});

describe('checksum remove', () => {
  it('taking a key out gives the checksum of the data without it', async () => {
    const { kvDigest } = await import('../../src/checksum.ts');
    const b = new ChecksumBuilder();
    b.add('/a', '1', false);
    b.add('/b', '2', true);
    b.addDigest('/c', kvDigest('/c', '3'), true);
    b.remove('/b', kvDigest('/b', '2'), true);
    const only = new ChecksumBuilder();
    only.add('/a', '1', false);
    only.add('/c', '3', true);
    expect(b.digest()).toEqual(only.digest());
  });
});

describe('kvDigest', () => {
  it('is sha256(4-byte big-endian len(key) || key || value) cut to 64 bits, as in pending TTL files', async () => {
    const { createHash } = await import('node:crypto');
    const { kvDigest } = await import('../../src/checksum.ts');
    for (const [k, v] of [
      ['/registry/pods/a', '{"x":1}'],
      ['', ''],
      ['/k', ''],
      ['/\u00e9', 'v'.repeat(70_000)],
    ] as const) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(Buffer.byteLength(k));
      const want = createHash('sha256').update(len).update(k).update(v).digest().readBigUInt64BE(0);
      expect(kvDigest(k, v)).toBe(want);
      expect(kvDigest(Buffer.from(k), Buffer.from(v))).toBe(want);
    }
  });
});
