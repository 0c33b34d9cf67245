// The v3 API of a temporary etcd through its JSON gateway (see gatewayPrefix): paged ranges, leases,
// transactions. Keys and values travel base64-encoded; 64-bit numbers travel as strings.
import { StepError } from '../../errors.ts';
import type { Version } from '../../version.ts';
import { gatewayPrefix } from './probe.ts';
import type { HttpClient } from './http.ts';
import { parseJson } from './json.ts';

export interface KeyValue {
  /** base64 */
  key: string;
  /** base64; absent when empty or when asked for keys only */
  value?: string;
  /** lease ID (decimal string); absent when the key has none */
  lease?: string;
}

/** A key as read for a checksum: raw bytes, and whether it is on a lease. */
export interface RawKeyValue {
  key: Buffer;
  value: Buffer;
  leased: boolean;
}

/** A put that moves a key onto a lease: with its value (base64), or keeping the one it has (ignore_value). */
export type PutOp = { key: string; lease: string; value: string } | { key: string; lease: string; ignore_value: true };

export type Op = { request_put: PutOp } | { request_delete_range: { key: string } };

/** The calls a conversion makes; two transports: the JSON gateway (V3) and gRPC (grpc.ts). */
export interface V3Api {
  count(key?: string, rangeEnd?: string): Promise<number>;
  /** The store's current revision (the header of an answer). */
  revision(): Promise<number>;
  range(key?: string, rangeEnd?: string, o?: { keysOnly?: boolean; pageSize?: number }): AsyncGenerator<KeyValue[]>;
  /** Every key and value, page by page, as raw bytes. */
  rawRange(): AsyncGenerator<RawKeyValue[]>;
  grant(ttl: number): Promise<string>;
  timeToLive(id: string): Promise<number>;
  /** Revokes the lease when no key is on it (revoking deletes its keys): whether it did. */
  revokeIfEmpty(id: string): Promise<boolean>;
  txn(ops: readonly Op[]): Promise<void>;
}

export class V3 implements V3Api {
  private readonly c: HttpClient;
  private readonly prefix: string;
  constructor(c: HttpClient, v: Version) {
    this.c = c;
    this.prefix = gatewayPrefix(v);
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    const r = await this.c.text('POST', `${this.prefix}${path}`, JSON.stringify(body));
    if (r.status !== 200) throw new V3Error(path, r.status, r.body);
    return parseJson<T>(r.body, `the answer of ${path}`);
  }

  /** How many keys lie in [key, rangeEnd) (base64; "AA==" as both means every key). */
  async count(key = ALL, rangeEnd = ALL): Promise<number> {
    const r = await this.call<{ count?: string }>('/kv/range', { key, range_end: rangeEnd, count_only: true });
    return Number(r.count ?? 0);
  }

  async revision(): Promise<number> {
    const r = await this.call<{ header?: { revision?: string } }>('/kv/range', { key: ALL, count_only: true });
    return Number(r.header?.revision ?? 0);
  }

  /** Every key in [key, rangeEnd), page by page in key order. */
  async *range(
    key = ALL,
    rangeEnd = ALL,
    o: { keysOnly?: boolean; pageSize?: number } = {},
  ): AsyncGenerator<KeyValue[]> {
    let from = key;
    for (;;) {
      const r = await this.call<{ kvs?: KeyValue[]; more?: boolean }>('/kv/range', {
        key: from,
        range_end: rangeEnd,
        limit: o.pageSize ?? 1000,
        keys_only: o.keysOnly ?? false,
      });
      const kvs = r.kvs ?? [];
      if (kvs.length) yield kvs;
      if (!r.more || !kvs.length) return;
      // The next page starts just after the last key: the key followed by a zero byte.
      from = Buffer.concat([Buffer.from(kvs.at(-1)!.key, 'base64'), Buffer.alloc(1)]).toString('base64');
    }
  }

  async *rawRange(): AsyncGenerator<RawKeyValue[]> {
    for await (const page of this.range())
      yield page.map((kv) => ({
        key: Buffer.from(kv.key, 'base64'),
        value: Buffer.from(kv.value ?? '', 'base64'),
        leased: kv.lease !== undefined,
      }));
  }

  /** A new lease of `ttl` seconds; its ID. */
  async grant(ttl: number): Promise<string> {
    return (await this.call<{ ID: string }>('/lease/grant', { TTL: ttl })).ID;
  }

  /** A lease's remaining seconds (whole seconds, rounded down), or -1 when it has expired. */
  async timeToLive(id: string): Promise<number> {
    return Number((await this.call<{ TTL?: string }>('/kv/lease/timetolive', { ID: id })).TTL ?? -1);
  }

  async revokeIfEmpty(id: string): Promise<boolean> {
    const r = await this.call<{ keys?: string[] }>('/kv/lease/timetolive', { ID: id, keys: true });
    if (r.keys?.length) return false;
    await this.call('/kv/lease/revoke', { ID: id });
    return true;
  }

  /** Runs the operations in one transaction (all or none). */
  async txn(ops: readonly Op[]): Promise<void> {
    await this.call('/kv/txn', { success: ops });
  }
}

/** The whole keyspace, as range bounds: from the zero byte to the end. */
export const ALL = 'AA==';

/** The end of a prefix range: the prefix with its last byte raised by one (base64 in, base64 out). */
export function prefixEnd(prefix: Buffer): string {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1).toString('base64');
    }
  }
  return ALL;
}

export class V3Error extends StepError {
  readonly status: number;
  readonly body: string;
  constructor(path: string, status: number, body: string) {
    let msg = body.slice(0, 200);
    try {
      msg = (JSON.parse(body) as { error?: string; message?: string }).message ?? msg;
    } catch {
      /* keep the raw text */
    }
    super(
      `the v3 API answered ${path} ` +
        `with ${path.startsWith('/etcdserverpb.') ? 'gRPC status' : 'HTTP'} ${status}: ${msg}`,
    );
    this.status = status;
    this.body = body;
  }
  get leaseNotFound(): boolean {
    return this.body.includes('requested lease not found');
  }
  get keyNotFound(): boolean {
    return this.body.includes('key not found');
  }
}
