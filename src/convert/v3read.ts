// Reads the keys under the data prefix from a temporary etcd's v3 API, for a rollback to etcd2: each
// key with its value and absolute expiry (from its lease) spilled to a file, and a checksum. Refuses
// data that etcd2 cannot hold: Kubernetes protobuf values, and values that are not UTF-8 text.
import { ChecksumBuilder } from '../checksum.ts';
import { UsageError } from '../errors.ts';
import { prefixEnd, type V3 } from '../etcd/v3.ts';
import type { SpillWriter } from './spill.ts';

/** The magic bytes that start every value the apiserver stores as protobuf. */
export const K8S_PROTOBUF_MAGIC = Buffer.from('k8s\0', 'latin1');

export interface V3Contents {
  /** The keys under the prefix that are carried over, with which of them have a TTL. */
  sum: ChecksumBuilder;
  /** Keys outside the prefix: not carried over. */
  outside: number;
  /** Keys whose lease had already run out: not carried over. */
  expired: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function readV3Prefix(v3: V3, prefix: string, out: SpillWriter): Promise<V3Contents> {
  const p = Buffer.from(prefix);
  const start = p.toString('base64');
  const end = prefixEnd(p);
  const outside = (await v3.count()) - (await v3.count(start, end));
  const sum = new ChecksumBuilder();
  const leaseEnds = new Map<string, number | undefined>();
  let expired = 0;
  for await (const page of v3.range(start, end)) {
    for (const kv of page) {
      const key = Buffer.from(kv.key, 'base64');
      const value = Buffer.from(kv.value ?? '', 'base64');
      checkStorable(key, value);
      let ends = 0;
      if (kv.lease) {
        if (!leaseEnds.has(kv.lease)) {
          // Whole seconds, rounded down: the lease ends between ttl and ttl+1 s from now.
          const ttl = await v3.timeToLive(kv.lease);
          leaseEnds.set(kv.lease, ttl > 0 ? Date.now() + ttl * 1000 + 500 : undefined);
        }
        const e = leaseEnds.get(kv.lease);
        if (e === undefined) {
          expired++;
          continue;
        }
        ends = e;
      }
      sum.add(key, value, ends > 0);
      await out.write([ends, kv.key, kv.value ?? '']);
    }
  }
  return { sum, outside, expired };
}

/** etcd2 serves keys and values as JSON strings: protobuf and other binary values cannot go there. */
function checkStorable(key: Buffer, value: Buffer): void {
  const name = () => JSON.stringify(key.toString('utf8'));
  if (value.subarray(0, K8S_PROTOBUF_MAGIC.length).equals(K8S_PROTOBUF_MAGIC)) {
    throw new UsageError(`the value of ${name()} is Kubernetes protobuf (it starts with "k8s\\0"), and etcd2 can hold only JSON: nothing was changed. To roll back, first make the apiserver store JSON (--storage-media-type=application/json, i.e. STORAGE_MEDIA_TYPE=application/json) and rewrite every object (e.g. kubectl get <each resource> -A -o json | kubectl replace -f -), or stay on etcd3 (TARGET_STORAGE=etcd3)`);
  }
  for (const [what, bytes] of [['key', key], ['value', value]] as const) {
    try {
      utf8.decode(bytes);
    } catch {
      throw new UsageError(`the ${what} of ${name()} is not UTF-8 text, and etcd2 can hold only text: nothing was changed; stay on etcd3 (TARGET_STORAGE=etcd3) or remove that key`);
    }
  }
}
