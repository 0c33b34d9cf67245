import { describe, expect, it } from 'vitest';
import { fields, ProtoWriter } from '../../../../src/etcd/client/proto.ts';

describe('protobuf writer and reader', () => {
  it.each([1, 127, 128, 300, 2 ** 31, 2 ** 53 - 1])('round-trips the varint %d', (n) => {
    const [f] = [...fields(new ProtoWriter().int(3, n).finish())];
    expect(f).toMatchObject({ n: 3, int: n });
    expect(f!.big()).toBe(BigInt(n));
  });

  it('round-trips 64-bit lease IDs and negative int64 exactly (10-byte varints)', () => {
    for (const v of [0x7fffffffffffffffn, 4871947128329010815n, -1n]) {
      const buf = new ProtoWriter().int(6, v).finish();
      const [f] = [...fields(buf)];
      expect(f!.big()).toBe(v);
    }
    expect(new ProtoWriter().int(6, -1n).finish()).toHaveLength(11);
  });

  it('leaves out zero and empty fields (proto3), but writes an empty nested message', () => {
    expect(new ProtoWriter().int(1, 0).int(2, false).bytes(3, Buffer.alloc(0)).finish()).toHaveLength(0);
    expect([...new ProtoWriter().message(2, new ProtoWriter()).finish()]).toEqual([0x12, 0x00]);
  });

  it('encodes a put as etcd does: a nested RequestOp with key, lease and ignore_value', () => {
    const put = new ProtoWriter().bytes(1, Buffer.from('k')).int(3, 5).int(5, true);
    const op = new ProtoWriter().message(2, put).finish();
    // RequestOp{request_put(2): PutRequest{key(1)="k", lease(3)=5, ignore_value(5)=true}}
    expect([...op]).toEqual([0x12, 0x07, 0x0a, 0x01, 0x6b, 0x18, 0x05, 0x28, 0x01]);
    const [outer] = [...fields(op)];
    expect([...fields(outer!.bytes!)].map((f) => [f.n, f.bytes?.toString() ?? f.int])).toEqual([
      [1, 'k'],
      [3, 5],
      [5, 1],
    ]);
  });

  it('skips fixed-width fields and refuses truncated input', () => {
    const withFixed = Buffer.concat([Buffer.from([0x09]), Buffer.alloc(8), new ProtoWriter().int(2, 7).finish()]);
    expect([...fields(withFixed)].map((f) => f.n)).toEqual([2]);
    const whole = new ProtoWriter().bytes(1, Buffer.from('abcdef')).finish();
    expect(() => [...fields(whole.subarray(0, 4))]).toThrow(/truncated/);
    expect(() => [...fields(Buffer.from([0x08, 0x80]))]).toThrow(/truncated/);
  });
});

describe("encodeTxn (the gRPC client's transaction request)", () => {
  it('writes as a per-field writer: puts with lease and ignore_value, deletes, binary keys, many leases', async () => {
    const { encodeTxn } = await import('../../../../src/etcd/client/grpc.ts');
    const keys = [
      Buffer.from('/a'),
      Buffer.from([0x00, 0xff, 0x10]),
      Buffer.alloc(300, 0x61),
      Buffer.from('/registry/events/x'),
    ];
    const leases = ['7587887654321098765', '12', '0'];
    const ops = keys.flatMap((k, i) => [
      { request_put: { key: k.toString('base64'), lease: leases[i % 3]!, ignore_value: true as const } },
      { request_delete_range: { key: k.toString('base64') } },
    ]);
    const want = new ProtoWriter();
    for (const [i, k] of keys.entries()) {
      want.message(
        2,
        new ProtoWriter().message(
          2,
          new ProtoWriter()
            .bytes(1, k)
            .int(3, BigInt(leases[i % 3]!))
            .int(5, true),
        ),
      );
      want.message(2, new ProtoWriter().message(3, new ProtoWriter().bytes(1, k)));
    }
    expect(encodeTxn(ops).finish().equals(want.finish())).toBe(true);
    // The long key's length takes a two-byte varint: the writer grew past its first capacity.
    expect(encodeTxn(ops).size).toBe(want.size);
  });

  it('writes a put with its value (field 2), not ignore_value; an empty value is left out, as in proto3', async () => {
    const { encodeTxn } = await import('../../../../src/etcd/client/grpc.ts');
    const value = Buffer.from([0x00, 0x7b, 0xff, 0x22]);
    const ops = [
      { request_put: { key: Buffer.from('/k').toString('base64'), lease: '7', value: value.toString('base64') } },
      { request_put: { key: Buffer.from('/e').toString('base64'), lease: '7', value: '' } },
    ];
    const want = new ProtoWriter()
      .message(
        2,
        new ProtoWriter().message(2, new ProtoWriter().bytes(1, Buffer.from('/k')).bytes(2, value).int(3, 7n)),
      )
      .message(2, new ProtoWriter().message(2, new ProtoWriter().bytes(1, Buffer.from('/e')).int(3, 7n)));
    expect(encodeTxn(ops).finish().equals(want.finish())).toBe(true);
  });
});

describe("RangeReader (the gRPC client's one-pass RangeResponse reader)", () => {
  it('reads KeyValues (key, value, lease) and the more flag, skipping other fields, a few keys at a time', async () => {
    const { RangeReader } = await import('../../../../src/etcd/client/grpc.ts');
    const kv = (key: string, value: string, lease: bigint) =>
      new ProtoWriter()
        .bytes(1, Buffer.from(key))
        .int(2, 7)
        .int(3, 300)
        .int(4, 2)
        .bytes(5, Buffer.from(value))
        .int(6, lease);
    const header = new ProtoWriter().int(1, 123456789).int(2, 42).int(3, 99).int(4, 5);
    const r = new ProtoWriter()
      .message(1, header)
      .message(2, kv('/a', 'x'.repeat(200), 0n))
      .message(2, kv('/b', '', 0x7fffffffffffff01n))
      .int(3, true)
      .int(4, 1_000_000)
      .finish();
    const page = new RangeReader(r);
    const first = page.next(1);
    expect(first.map((k) => [k.key.toString(), k.value.length, k.lease, k.leased])).toEqual([['/a', 200, 0n, false]]);
    expect(page.next(5).map((k) => [k.key.toString(), k.value.length, k.lease, k.leased])).toEqual([
      ['/b', 0, 0x7fffffffffffff01n, true],
    ]);
    expect(page.more).toBe(true);
    expect(page.next(5)).toEqual([]);
    expect(first[0]!.value.toString()).toBe('x'.repeat(200));
    expect(() => new RangeReader(r.subarray(0, r.length - 3)).next(5)).toThrow(
      /unreadable gRPC range answer.*truncated/,
    );
  });
});
