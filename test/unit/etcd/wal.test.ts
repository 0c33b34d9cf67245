import { describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../../src/etcd/proto.ts';
import { lastIndexIn } from '../../../src/etcd/wal.ts';

/** A WAL record as etcd frames it: length (with padding to 8 bytes, flagged in the top byte), walpb.Record. */
function frame(type: number, data: Buffer): Buffer {
  const rec = new ProtoWriter().int(1, type).int(2, 12345).bytes(3, data).finish();
  const pad = (8 - (rec.length % 8)) % 8;
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(rec.length) | (pad ? (BigInt(0x80 | pad) << 56n) : 0n));
  return Buffer.concat([head, rec, Buffer.alloc(pad)]);
}
const entry = (index: number) => frame(2, new ProtoWriter().int(2, 1).int(3, index).bytes(4, Buffer.from('x'.repeat(index % 5))).finish());

describe('lastIndexIn', () => {
  it('finds the highest entry index, past padded records and other record types, up to the preallocated zeros or a torn record', () => {
    const wal = Buffer.concat([frame(4, Buffer.alloc(0)), frame(1, Buffer.from('meta')), entry(7), entry(8), frame(3, Buffer.from('state')), entry(9)]);
    expect(lastIndexIn(Buffer.concat([wal, Buffer.alloc(64)]))).toBe(9);
    expect(lastIndexIn(Buffer.concat([wal, entry(10).subarray(0, 12)]))).toBe(9);
    expect(lastIndexIn(Buffer.alloc(64))).toBe(0);
  });
});
