import { describe, expect, it } from 'vitest';
import { ChecksumBuilder, kvDigest } from '../../../../src/checksum.ts';
import { kvRecord, V2ToV3Transform } from '../../../../src/etcd2/convert/transform.ts';
import { fields } from '../../../../src/etcd/client/proto.ts';
import type { V2Node } from '../../../../src/etcd2/v2nodes.ts';

/** A record as migrate reads it: the 8-byte length, then the KeyValue's fields by number. */
function decode(record: Buffer): Map<number, Buffer | number> {
  expect(Number(record.readBigUInt64LE(0))).toBe(record.length - 8);
  return new Map([...fields(record.subarray(8))].map((f) => [f.n, f.bytes ?? f.int]));
}

const NOW = Date.parse('2026-11-26T12:00:00Z');

describe('V2ToV3Transform', () => {
  it("gives each key etcd's default transformer's record: key, value, revisions from the v2 indexes, version 1", () => {
    const t = new V2ToV3Transform();
    const { record, ttl } = t.node(
      { key: '/registry/pods/ns/p', value: '{"ü":1}', createdIndex: 7, modifiedIndex: 42 },
      NOW,
    );
    expect(ttl).toBeUndefined();
    const kv = decode(record!);
    expect(kv.get(1)).toEqual(Buffer.from('/registry/pods/ns/p'));
    expect(kv.get(2)).toBe(7);
    expect(kv.get(3)).toBe(42);
    expect(kv.get(4)).toBe(1);
    expect(kv.get(5)).toEqual(Buffer.from('{"ü":1}'));
    expect(kv.has(6)).toBe(false);
    // An empty value is no field at all (proto3), as Go writes it.
    expect(decode(t.node({ key: '/e', value: '', createdIndex: 8, modifiedIndex: 8 }, NOW).record!).has(5)).toBe(false);
  });

  it('spills TTL keys (absolute expiry, key, digest, value), leaves out keys already due, counts dirs but root', () => {
    const t = new V2ToV3Transform();
    const nodes: V2Node[] = [
      { key: '/', dir: true, createdIndex: 1, modifiedIndex: 1 },
      { key: '/registry', dir: true, createdIndex: 2, modifiedIndex: 2 },
      {
        key: '/registry/events/e1',
        value: 'a',
        expiration: '2026-11-26T13:00:00.123456789Z',
        ttl: 3600,
        createdIndex: 3,
        modifiedIndex: 3,
      },
      {
        key: '/registry/events/e0',
        value: 'b',
        expiration: '2026-11-26T12:00:00Z',
        ttl: 0,
        createdIndex: 4,
        modifiedIndex: 4,
      },
      { key: '/registry/k', value: 'c', createdIndex: 5, modifiedIndex: 6 },
    ];
    const out = nodes.map((n) => t.node(n, NOW));
    expect(out.map((o) => o.record !== undefined)).toEqual([false, false, true, false, true]);
    expect(out[2]!.ttl).toEqual([
      Date.parse('2026-11-26T13:00:00.123Z'),
      Buffer.from('/registry/events/e1').toString('base64'),
      kvDigest('/registry/events/e1', 'a'),
      Buffer.from('a').toString('base64'),
    ]);
    const want = new ChecksumBuilder();
    want.add('/registry/events/e1', 'a', true);
    want.add('/registry/k', 'c', false);
    expect(t.summary()).toEqual({ converted: want.digest(), dirs: 1, expired: 1 });
  });

  it("gives a key the earliest expiry of its own and its ancestors', leaves out keys under a dir already due", () => {
    const t = new V2ToV3Transform();
    const at = (iso: string) => ({ expiration: iso, ttl: 1 });
    const nodes: V2Node[] = [
      { key: '/', dir: true, createdIndex: 1, modifiedIndex: 1 },
      { key: '/d', dir: true, ...at('2026-11-26T13:00:00Z'), createdIndex: 2, modifiedIndex: 2 },
      { key: '/d/plain', value: 'a', createdIndex: 3, modifiedIndex: 3 },
      { key: '/d/longer', value: 'b', ...at('2026-11-26T14:00:00Z'), createdIndex: 4, modifiedIndex: 4 },
      { key: '/d/shorter', value: 'c', ...at('2026-11-26T12:30:00Z'), createdIndex: 5, modifiedIndex: 5 },
      { key: '/d/sub', dir: true, createdIndex: 6, modifiedIndex: 6 },
      { key: '/d/sub/deep', value: 'd', createdIndex: 7, modifiedIndex: 7 },
      { key: '/dx', value: 'not under /d', createdIndex: 8, modifiedIndex: 8 },
      { key: '/gone', dir: true, ...at('2026-11-26T11:59:59Z'), createdIndex: 9, modifiedIndex: 9 },
      { key: '/gone/k', value: 'e', createdIndex: 10, modifiedIndex: 10 },
      { key: '/gone/sub', dir: true, createdIndex: 11, modifiedIndex: 11 },
      { key: '/gone/sub/k', value: 'f', ...at('2026-11-26T15:00:00Z'), createdIndex: 12, modifiedIndex: 12 },
    ];
    const out = nodes.map((n) => t.node(n, NOW));
    const expiry = (i: number) => out[i]!.ttl?.[0];
    expect(expiry(2)).toBe(Date.parse('2026-11-26T13:00:00Z'));
    expect(expiry(3)).toBe(Date.parse('2026-11-26T13:00:00Z'));
    expect(expiry(4)).toBe(Date.parse('2026-11-26T12:30:00Z'));
    expect(expiry(6)).toBe(Date.parse('2026-11-26T13:00:00Z'));
    expect(out[7]!.record).toBeDefined();
    expect(out[7]!.ttl).toBeUndefined();
    expect(out[9]!.record).toBeUndefined();
    expect(out[11]!.record).toBeUndefined();
    expect(t.summary().expired).toBe(2);
    expect(t.summary().converted.keys).toBe(5);
    expect(t.summary().converted.ttlKeys).toBe(4);
  });

  it('refuses a key without usable indexes', () => {
    expect(() => new V2ToV3Transform().node({ key: '/k', value: 'v', createdIndex: 0, modifiedIndex: 3 }, NOW)).toThrow(
      /unusable indexes/,
    );
    expect(() =>
      new V2ToV3Transform().node({ key: '/k', value: 'v', createdIndex: 1, modifiedIndex: 2 ** 60 }, NOW),
    ).toThrow(/unusable indexes/);
  });

  it('frames any size', () => {
    const big = Buffer.alloc(300_000, 7);
    const kv = decode(kvRecord(Buffer.from('/k'), big, 1, 2));
    expect((kv.get(5) as Buffer).equals(big)).toBe(true);
  });
});
