// How the gRPC client gathers an answer (src/etcd/client/grpc.ts): its 5-byte prefix and its message may
// come cut anywhere across DATA frames; an answer shorter or longer than it announces is refused.
// A local HTTP/2 server plays etcd, so the frames can be cut at will.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { V3Grpc } from '../../../../src/etcd/client/grpc.ts';
import { ProtoWriter } from '../../../../src/etcd/client/proto.ts';
import { onCleanup } from '../../../helpers/tmp.ts';

/** A server answering every call with `pieces` as separate DATA frames, then grpc-status 0. */
async function server(pieces: Buffer[]): Promise<string> {
  const s = http2.createServer();
  s.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.on('data', () => {});
    stream.on('end', async () => {
      for (const p of pieces) {
        stream.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      stream.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => s.close(() => r())));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const prefix = (len: number) => Buffer.from([0, len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]);

async function count(pieces: Buffer[]): Promise<number> {
  const g = new V3Grpc(await server(pieces));
  onCleanup(async () => g.close());
  return g.count();
}

describe('gRPC answers', () => {
  // A RangeResponse with a long header (field 1) and count (field 4) = 123,456.
  const msg = new ProtoWriter()
    .message(1, new ProtoWriter().bytes(9, Buffer.alloc(40_000, 7)))
    .int(4, 123_456)
    .finish();
  const whole = Buffer.concat([prefix(msg.length), msg]);

  it('reads an answer whose prefix and message are cut across frames', async () => {
    expect(await count([whole])).toBe(123_456);
    expect(
      await count([
        whole.subarray(0, 2),
        whole.subarray(2, 3),
        whole.subarray(3, 9),
        whole.subarray(9, 20_000),
        whole.subarray(20_000),
      ]),
    ).toBe(123_456);
  });

  it('refuses an answer shorter or longer than its prefix says', async () => {
    await expect(count([whole.subarray(0, whole.length - 1)])).rejects.toThrow(
      `a malformed gRPC answer (${whole.length - 1} bytes)`,
    );
    await expect(count([whole, Buffer.from([1])])).rejects.toThrow(
      `a malformed gRPC answer (${whole.length + 1} bytes)`,
    );
    await expect(count([whole.subarray(0, 3)])).rejects.toThrow('a malformed gRPC answer (3 bytes)');
  });
});

describe('scanRange', () => {
  it('finds the key count, a copy of the last key and whether etcd has more, without decoding every key', async () => {
    const { scanRange } = await import('../../../../src/etcd/client/grpc.ts');
    const kv = (key: string, value: string) =>
      new ProtoWriter().bytes(1, Buffer.from(key)).int(2, 5).int(3, 6).int(4, 1).bytes(5, Buffer.from(value)).finish();
    const answer = (more: boolean, ...kvs: Buffer[]) => {
      const w = new ProtoWriter().bytes(1, new ProtoWriter().int(1, 7).finish());
      for (const k of kvs) w.bytes(2, k);
      return w.int(3, more).int(4, 99).finish();
    };
    const page = answer(true, kv('/a', 'x'), kv('/b', 'y'), kv('/registry/z', 'v'));
    const s = scanRange(page);
    expect(s).toMatchObject({ keys: 3, more: true });
    expect(s.last?.toString()).toBe('/registry/z');
    page.fill(0);
    expect(s.last?.toString()).toBe('/registry/z');
    expect(scanRange(answer(false, kv('/only', '')))).toMatchObject({ keys: 1, more: false });
    expect(scanRange(answer(false))).toEqual({ keys: 0, last: undefined, more: false });
  });
});
