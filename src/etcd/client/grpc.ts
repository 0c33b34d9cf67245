// The v3 API of a temporary etcd over gRPC (HTTP/2, protobuf): the same calls as the JSON gateway
// client (v3.ts) at a fraction of its cost, for the bulk work of a conversion (ranges over every
// key, batched transactions). Keys and values cross this interface base64-encoded, as in v3.ts.
import http2 from 'node:http2';
import { StepError } from '../../errors.ts';
import { decodeKeyValue, fields, ProtoReader, ProtoWriter, type DecodedKv } from './proto.ts';
import { httpsOptions } from '../tls/load.ts';
import type { ClientTls } from '../tls/config.ts';
import { ALL, V3Error, type KeyValue, type Op, type RawKeyValue, type V3Api } from './v3.ts';

const TIMEOUT_MS = 120_000;
/** Range pages: the first in keys, then sized to about PAGE_BYTES from the bytes per key seen. */
const FIRST_PAGE = 10_000;
const MAX_PAGE = 50_000;
const PAGE_BYTES = 8 << 20;
/** Keys decoded at a time from a page: the objects alive at once, whatever the page holds. */
const PIECE = 250;
/** No answer read here is near this long (range pages are ~8 MiB): a longer one is refused, not allocated. */
const MAX_ANSWER = 1 << 30;

export class V3Grpc implements V3Api {
  private readonly session: http2.ClientHttp2Session;
  private failure: Error | undefined;
  /** Range requests made so far (pages, not the pieces they are handed out in). */
  ranges = 0;

  constructor(endpoint: string, tls?: ClientTls) {
    if (endpoint.startsWith('https:') && !tls)
      throw new Error(`${endpoint} is https, but no client TLS material was given`);
    this.session = http2.connect(endpoint, tls ? httpsOptions(tls) : {});
    this.session.on('error', (e) => {
      this.failure = e;
    });
  }

  close(): void {
    this.session.close();
  }

  /**
   * One unary call: the answer's message, or a V3Error carrying etcd's grpc-message. With `reuse`,
   * the message is read into it when it fits (a view of it is returned): a range scan holds one
   * page buffer, not one per page until V8 collects them.
   */
  private call(method: string, msg: ProtoWriter, reuse?: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const body = msg.view();
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    return new Promise((resolve, reject) => {
      const req = this.session.request({
        ':method': 'POST',
        ':path': method,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.setTimeout(TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
      const answer = new Answer(reuse);
      let status: string | undefined;
      let message = '';
      const meta = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
      };
      req.on('response', meta);
      req.on('trailers', meta);
      req.on('data', (c: Buffer) => answer.add(c));
      req.on('error', (e) => reject(this.failure ?? e));
      req.on('close', () => {
        if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          reject(
            new StepError(
              `${method} on the temporary etcd: no answer in ${TIMEOUT_MS / 1000} s ` +
                `or the stream was reset (code ${req.rstCode})`,
            ),
          );
        } else if (status !== '0') {
          reject(new V3Error(method, Number(status ?? -1), message || `gRPC status ${status ?? 'missing'}`));
        } else {
          const reply = answer.message();
          if (!reply)
            reject(
              new StepError(`${method} on the temporary etcd: a malformed gRPC answer (${answer.received} bytes)`),
            );
          else resolve(reply);
        }
      });
      req.end(frame);
    });
  }

  async count(key = ALL, rangeEnd = ALL): Promise<number> {
    const r = await this.call(
      '/etcdserverpb.KV/Range',
      rangeRequest(Buffer.from(key, 'base64'), Buffer.from(rangeEnd, 'base64')).int(9, true),
    );
    for (const f of fields(r)) if (f.n === 4) return f.int;
    return 0;
  }

  async revision(): Promise<number> {
    const r = await this.call('/etcdserverpb.KV/Range', rangeRequest(Buffer.alloc(1), Buffer.alloc(0)).int(9, true));
    for (const f of fields(r)) if (f.n === 1 && f.bytes) for (const h of fields(f.bytes)) if (h.n === 3) return h.int;
    return 0;
  }

  async *range(
    key = ALL,
    rangeEnd = ALL,
    o: { keysOnly?: boolean; pageSize?: number } = {},
  ): AsyncGenerator<KeyValue[]> {
    for await (const page of this.pages(key, rangeEnd, o))
      yield page.map((kv) => ({
        key: kv.key.toString('base64'),
        ...(kv.value.length ? { value: kv.value.toString('base64') } : {}),
        ...(kv.lease ? { lease: kv.lease.toString() } : {}),
      }));
  }

  async *rawRange(): AsyncGenerator<RawKeyValue[]> {
    yield* this.pages(ALL, ALL, {});
  }

  /**
   * The keys of [key, rangeEnd), page by page in key order. Without a page size, pages hold about
   * PAGE_BYTES: etcd 3.3 walks its index from the page start to the range end for every page (etcd
   * issue 11057), so fewer, larger pages cost it less, while
   * the bytes in memory stay bounded whatever the value sizes. The next page is asked for as soon as
   * a page arrives (a quick scan finds its last key), so etcd reads it while this one is decoded and
   * handed out: two page buffers, taken in turn (the keys handed out are views into one: valid until
   * the next piece is asked for).
   */
  private async *pages(
    key: string,
    rangeEnd: string,
    o: { keysOnly?: boolean; pageSize?: number },
  ): AsyncGenerator<DecodedKv[]> {
    const end = Buffer.from(rangeEnd, 'base64');
    let limit = o.pageSize ?? FIRST_PAGE;
    const bufs: Array<Buffer | undefined> = [undefined, undefined];
    let turn = 0;
    const fetch = (from: Buffer): Promise<Buffer> => {
      const i = turn;
      turn ^= 1;
      const answer = this.call(
        '/etcdserverpb.KV/Range',
        rangeRequest(from, end)
          .int(3, limit)
          .int(8, o.keysOnly ?? false),
        bufs[i],
      ).then((r) => {
        if (!bufs[i] || r.length > bufs[i].length) bufs[i] = r;
        this.ranges++;
        return r;
      });
      // Awaited below, unless the caller stops reading first: then its failure is nobody's.
      answer.catch(() => {});
      return answer;
    };
    let next: Promise<Buffer> | undefined = fetch(Buffer.from(key, 'base64'));
    while (next) {
      const r = await next;
      const { keys, last, more } = scanRange(r);
      next = undefined;
      if (more && last) {
        if (!o.pageSize) limit = Math.max(FIRST_PAGE, Math.min(MAX_PAGE, Math.floor(PAGE_BYTES / (r.length / keys))));
        // The next page starts just after the last key: the key followed by a zero byte.
        next = fetch(Buffer.concat([last, Buffer.alloc(1)]));
      }
      // Decoded PIECE keys at a time, as they are taken: a page of 50,000 keys is never 50,000 objects.
      const page = new RangeReader(r);
      for (let kvs = page.next(PIECE); kvs.length; kvs = page.next(PIECE)) yield kvs;
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

  async revokeIfEmpty(id: string): Promise<boolean> {
    const r = await this.call('/etcdserverpb.Lease/LeaseTimeToLive', new ProtoWriter().int(1, BigInt(id)).int(2, true));
    for (const f of fields(r)) if (f.n === 5) return false;
    await this.call('/etcdserverpb.Lease/LeaseRevoke', new ProtoWriter().int(1, BigInt(id)));
    return true;
  }

  /** Not async: nothing holds `ops` while the answer is awaited (they were encoded at once). */
  txn(ops: readonly Op[]): Promise<void> {
    return this.call('/etcdserverpb.KV/Txn', encodeTxn(ops)).then(() => undefined);
  }
}

/**
 * A TxnRequest of `ops` as its success branch (field 2). One writer per nesting level, reused for
 * every op, and each lease ID encoded once: no allocation per op (BENCHMARKS.md).
 */
export function encodeTxn(ops: readonly Op[]): ProtoWriter {
  const t = new ProtoWriter(ops.length * 96);
  const op = new ProtoWriter();
  const inner = new ProtoWriter();
  const leases = new Map<string, Buffer>();
  for (const o of ops) {
    inner.reset();
    if ('request_put' in o) {
      const p = o.request_put;
      let lease = leases.get(p.lease);
      if (!lease) leases.set(p.lease, (lease = new ProtoWriter().int(3, BigInt(p.lease)).finish()));
      // PutRequest: key 1, value 2, lease 3, ignore_value 5.
      op.reset().message(
        2,
        'value' in p
          ? inner.base64(1, p.key).base64(2, p.value).raw(lease)
          : inner.base64(1, p.key).raw(lease).int(5, p.ignore_value),
      );
    } else {
      op.reset().message(3, inner.base64(1, o.request_delete_range.key));
    }
    t.message(2, op);
  }
  return t;
}

/**
 * One gRPC answer (a 5-byte prefix: compressed flag, message length; then the message), gathered
 * straight into one buffer of the announced length as the DATA frames come: a range page is held
 * once, not as frames and then their concatenation.
 */
class Answer {
  private head = Buffer.alloc(5);
  private buf: Buffer | undefined;
  private readonly reuse: Buffer | undefined;
  received = 0;

  constructor(reuse?: Buffer) {
    this.reuse = reuse;
  }

  add(c: Buffer): void {
    let at = 0;
    if (this.received < 5) {
      at = Math.min(5 - this.received, c.length);
      c.copy(this.head, this.received, 0, at);
      this.received += at;
      if (this.received < 5) return;
      const len = this.head.readUInt32BE(1);
      if (len > MAX_ANSWER) this.buf = undefined;
      else this.buf = this.reuse && len <= this.reuse.length ? this.reuse.subarray(0, len) : Buffer.allocUnsafe(len);
    }
    const rest = c.length - at;
    if (this.buf && this.received - 5 + rest <= this.buf.length) c.copy(this.buf, this.received - 5, at);
    else this.buf = undefined;
    this.received += rest;
  }

  /** The message, when the answer was one whole uncompressed message. */
  message(): Buffer | undefined {
    return this.buf && this.head[0] === 0 && this.received === 5 + this.buf.length ? this.buf : undefined;
  }
}

/** A RangeRequest for [key, rangeEnd) (key = 1, range_end = 2); the caller adds limit and flags. */
function rangeRequest(key: Buffer, rangeEnd: Buffer): ProtoWriter {
  return new ProtoWriter().bytes(1, key).bytes(2, rangeEnd);
}

/**
 * A RangeResponse (kvs = 2, more = 3), read in one pass without an object per field, the keys a
 * few at a time (`next`): what is alive at once is the answer's bytes and one piece of keys.
 */
export class RangeReader {
  private readonly r: ProtoReader;
  /** Whether etcd has more keys after this page; known once `next` has returned no keys. */
  more = false;

  constructor(buf: Buffer) {
    this.r = new ProtoReader(buf);
  }

  /** Up to `n` more keys (views into the answer); none at the end. */
  next(n: number): DecodedKv[] {
    const r = this.r;
    const kvs: DecodedKv[] = [];
    try {
      while (!r.done && kvs.length < n) {
        const tag = r.varint();
        if (tag === ((2 << 3) | 2)) kvs.push(decodeKeyValue(r.bytes()));
        else if (tag === 3 << 3) this.more = r.varint() !== 0;
        else r.skip(tag % 8);
      }
    } catch (e) {
      throw new StepError(`an unreadable gRPC range answer from the temporary etcd: ${(e as Error).message}`);
    }
    return kvs;
  }
}

/** A range answer at a glance: how many keys, the last key (a copy), whether etcd has more. */
export function scanRange(buf: Buffer): { keys: number; last?: Buffer; more: boolean } {
  const r = new ProtoReader(buf);
  let keys = 0;
  let last: Buffer | undefined;
  let more = false;
  try {
    while (!r.done) {
      const tag = r.varint();
      if (tag === ((2 << 3) | 2)) {
        last = r.bytes();
        keys++;
      } else if (tag === 3 << 3) more = r.varint() !== 0;
      else r.skip(tag % 8);
    }
  } catch (e) {
    throw new StepError(`an unreadable gRPC range answer from the temporary etcd: ${(e as Error).message}`);
  }
  return { keys, last: last && Buffer.from(decodeKeyValue(last).key), more };
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
