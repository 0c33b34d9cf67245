// etcd's snapshot file format (src/etcd/disk/snapfile.ts): CRC-32C, the two nested messages, and the
// cluster version written into the v2 store.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  crc32c,
  crc32cUpdate,
  decodeSnapFile,
  encodeSnapFile,
  withClusterVersion,
} from '../../../../src/etcd/disk/snapfile.ts';

/** A v2 store as `snapshot restore` leaves it: /0/members with one member, /1 empty. */
const store = (extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      Root: {
        Path: '/',
        CreatedIndex: 0,
        ModifiedIndex: 0,
        ExpireTime: '0001-01-01T00:00:00Z',
        Value: '',
        Children: {
          0: {
            Path: '/0',
            CreatedIndex: 0,
            ModifiedIndex: 0,
            ExpireTime: '0001-01-01T00:00:00Z',
            Value: '',
            Children: {
              members: {
                Path: '/0/members',
                CreatedIndex: 1,
                ModifiedIndex: 1,
                ExpireTime: '0001-01-01T00:00:00Z',
                Value: '',
                Children: {},
              },
              ...extra,
            },
          },
          1: {
            Path: '/1',
            CreatedIndex: 0,
            ModifiedIndex: 0,
            ExpireTime: '0001-01-01T00:00:00Z',
            Value: '',
            Children: {},
          },
        },
      },
      CurrentIndex: 1,
      CurrentVersion: 2,
    }),
  );

describe('snapshot files', () => {
  it('CRC-32C is the Castagnoli CRC (check value of "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('CRC-32C eight bytes a step agrees with the byte-wise definition, at every length and start', () => {
    const table = Array.from({ length: 256 }, (_, n) => {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      return c >>> 0;
    });
    const bytewise = (crc: number, b: Uint8Array) => {
      let c = (crc ^ 0xffffffff) >>> 0;
      for (const x of b) c = (table[(c ^ x) & 0xff]! ^ (c >>> 8)) >>> 0;
      return (c ^ 0xffffffff) >>> 0;
    };
    for (let n = 0; n < 300; n++) {
      const b = crypto.randomBytes(n);
      const start = crypto.randomInt(0, 2 ** 32);
      expect(crc32cUpdate(start, b)).toBe(bytewise(start, b));
    }
  });

  it('encodes and decodes the two messages, and refuses a wrong CRC or an unknown field', () => {
    const f = { store: store(), metadata: Buffer.from([0x0a, 0x02, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01]) };
    const bytes = encodeSnapFile(f);
    expect(decodeSnapFile(bytes)).toEqual(f);
    const broken = Buffer.from(bytes);
    broken[broken.length - 1]! ^= 1;
    expect(() => decodeSnapFile(broken)).toThrow(/crc does not match/);
    expect(() => decodeSnapFile(Buffer.concat([bytes, Buffer.from([0x18, 0x01])]))).toThrow(/unexpected field 3/);
    expect(() => decodeSnapFile(bytes.subarray(0, bytes.length - 3))).toThrow();
  });

  it('sets /0/version in a store that has none, at the current index; leaves others alone', () => {
    const out = JSON.parse(withClusterVersion(store(), '3.3.0')!.toString());
    expect(out.Root.Children['0'].Children.version).toEqual({
      Path: '/0/version',
      CreatedIndex: 1,
      ModifiedIndex: 1,
      ExpireTime: '0001-01-01T00:00:00Z',
      Value: '3.3.0',
      Children: null,
    });
    expect(out.Root.Children['0'].Children.members).toEqual(
      JSON.parse(store().toString()).Root.Children['0'].Children.members,
    );
    expect(withClusterVersion(store({ version: { Path: '/0/version', Value: '3.2.0' } }), '3.3.0')).toBeUndefined();
    expect(withClusterVersion(Buffer.from('{"Root":{"Path":"/","Children":{}}}'), '3.3.0')).toBeUndefined();
  });
});
