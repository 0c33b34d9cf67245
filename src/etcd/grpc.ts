// The v3 API of a temporary etcd over gRPC (HTTP/2, protobuf): the same calls as the JSON gateway
// client (v3.ts) at a fraction of its cost, for the bulk work of a conversion (ranges over every
// key, batched transactions). Keys and values cross this interface base64-encoded, as in v3.ts.
import http2 from 'node:http2';
import { StepError } from '../errors.ts';
import { decodeKeyValue, fields, ProtoReader, ProtoWriter, type DecodedKv } from './proto.ts';
import { httpsOptions } from './tls-load.ts';
import type { ClientTls } from './tls.ts';
import { ALL, V3Error, type KeyValue, type Op, type RawKeyValue, type V3Api } from './v3.ts';

const TIMEOUT_MS = 120_000;
/** Range pages: the first in keys, then sized to about PAGE_BYTES from the bytes per key seen. */
const FIRST_PAGE = 10_000;
const MAX_PAGE = 50_000;
const PAGE_BYTES = 8 << 20;

export class V3Grpc implements V3Api {
  private readonly session: http2.ClientHttp2Session;
  private failure: Error | undefined;

  constructor(endpoint: string, tls?: ClientTls) {
    if (endpoint.startsWith('https:') && !tls) throw new Error(`${endpoint} is https, but no client TLS material was given`);
    this.session = http2.connect(endpoint, tls ? httpsOptions(tls) : {});
    this.session.on('error', (e) => { this.failure = e; });
  }

  close(): void {
    this.session.close();
  }

  /** One unary call: the answer's message, or a V3Error carrying etcd's grpc-message. */
  private call(method: string, msg: ProtoWriter): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const body = msg.finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
      req.setTimeout(TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = '';
      const meta = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
      };
      req.on('response', meta);
      req.on('trailers', meta);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', (e) => reject(this.failure ?? e));
      req.on('close', () => {
        if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          reject(new StepError(`${method} on the temporary etcd: no answer in ${TIMEOUT_MS / 1000} s or the stream was reset (code ${req.rstCode})`));
        } else if (status !== '0') {
          reject(new V3Error(method, Number(status ?? -1), message || `gRPC status ${status ?? 'missing'}`));
        } else {
          const all = Buffer.concat(chunks);
          if (all.length < 5 || all.readUInt32BE(1) !== all.length - 5) reject(new StepError(`${method} on the temporary etcd: a malformed gRPC answer (${all.length} bytes)`));
          else resolve(all.subarray(5));
        }
      });
      req.end(frame);
    });
  }

  async count(key = ALL, rangeEnd = ALL): Promise<number> {
    const r = await this.call('/etcdserverpb.KV/Range', rangeRequest(Buffer.from(key, 'base64'), Buffer.from(rangeEnd, 'base64')).int(9, true));
    for (const f of fields(r)) if (f.n === 4) return f.int;
    return 0;
  }

  async* range(key = ALL, rangeEnd = ALL, o: { keysOnly?: boolean; pageSize?: number } = {}): AsyncGenerator<KeyValue[]> {
    for await (const page of this.pages(key, rangeEnd, o)) yield page.map((kv) => ({ key: kv.key.toString('base64'), ...(kv.value.length ? { value: kv.value.toString('base64') } : {}), ...(kv.lease ? { lease: kv.lease.toString() } : {}) }));
  }

  async* rawRange(): AsyncGenerator<RawKeyValue[]> {
    yield* this.pages(ALL, ALL, {});
  }

  /**
   * The keys of [key, rangeEnd), page by page in key order. Without a page size, pages hold about
   * PAGE_BYTES: etcd 3.3 walks its index from the page start to the range end for every page (etcd
   * issue 11057), so fewer, larger pages cost it less (1M small keys: ~40 pages, not 100), while
   * the bytes in memory stay bounded whatever the value sizes.
   */
  private async* pages(key: string, rangeEnd: string, o: { keysOnly?: boolean; pageSize?: number }): AsyncGenerator<DecodedKv[]> {
    let from = Buffer.from(key, 'base64');
    const end = Buffer.from(rangeEnd, 'base64');
    let limit = o.pageSize ?? FIRST_PAGE;
    for (;;) {
      const r = await this.call('/etcdserverpb.KV/Range', rangeRequest(from, end).int(3, limit).int(8, o.keysOnly ?? false));
      const { kvs, more } = decodeRange(r);
      if (kvs.length) yield kvs;
      if (!more || !kvs.length) return;
      if (!o.pageSize) limit = Math.max(FIRST_PAGE, Math.min(MAX_PAGE, Math.floor(PAGE_BYTES / (r.length / kvs.length))));
      // The next page starts just after the last key: the key followed by a zero byte.
      from = Buffer.concat([kvs.at(-1)!.key, Buffer.alloc(1)]);
    }
  }

  async grant(ttl: number): Promise<string> {
    const r = await this.call('/etcdserverpb.Lease/LeaseGrant', new ProtoWriter().int(1, ttl));
    let id = 0n;
    let error = '';
    for (const f of fields(r)) {
      if (f.n === 2) id = f.big();
      else if (f.n === 4 && f.bytes) error = f.bytes.toString();
    }
    if (error || id === 0n) throw new StepError(`etcd granted no lease of ${ttl} s${error ? `: ${error}` : ''}`);
    return id.toString();
  }

  async timeToLive(id: string): Promise<number> {
    const r = await this.call('/etcdserverpb.Lease/LeaseTimeToLive', new ProtoWriter().int(1, BigInt(id)));
    for (const f of fields(r)) if (f.n === 3) return Number(f.big());
    return 0;
  }

  async txn(ops: readonly Op[]): Promise<void> {
    const t = new ProtoWriter();
    for (const op of ops) {
      const o = new ProtoWriter();
      if ('request_put' in op) {
        const p = op.request_put;
        o.message(2, new ProtoWriter().bytes(1, Buffer.from(p.key, 'base64')).int(3, BigInt(p.lease)).int(5, p.ignore_value));
      } else {
        o.message(3, new ProtoWriter().bytes(1, Buffer.from(op.request_delete_range.key, 'base64')));
      }
      t.message(2, o);
    }
    await this.call('/etcdserverpb.KV/Txn', t);
  }
}

/** A RangeRequest for [key, rangeEnd) (key = 1, range_end = 2); the caller adds limit and flags. */
function rangeRequest(key: Buffer, rangeEnd: Buffer): ProtoWriter {
  return new ProtoWriter().bytes(1, key).bytes(2, rangeEnd);
}

interface RangePage {
  kvs: DecodedKv[];
  more: boolean;
}

/**
 * A RangeResponse (kvs = 2, more = 3), decoded in one pass without an object per field: a page of
 * tens of thousands of keys stays a few MiB of heap.
 */
export function decodeRange(buf: Buffer): RangePage {
  const r = new ProtoReader(buf);
  const kvs: DecodedKv[] = [];
  let more = false;
  try {
    while (!r.done) {
      const tag = r.varint();
      if (tag === ((2 << 3) | 2)) kvs.push(decodeKeyValue(r.bytes()));
      else if (tag === (3 << 3)) more = r.varint() !== 0;
      else r.skip(tag % 8);
    }
  } catch (e) {
    throw new StepError(`an unreadable gRPC range answer from the temporary etcd: ${(e as Error).message}`);
  }
  return { kvs, more };
}

/** Runs `fn` with a gRPC client for `endpoint`, closing its connection afterwards. */
export async function withGrpc<T>(endpoint: string, fn: (g: V3Grpc) => Promise<T>, tls?: ClientTls): Promise<T> {
  const g = new V3Grpc(endpoint, tls);
  try {
    return await fn(g);
  } finally {
    g.close();
  }
}
