// Reads the keys under the data prefix from a temporary etcd's v3 API, for a rollback to etcd2: each
// key with its value and absolute expiry (from its lease) spilled to a file, and a checksum. Refuses
// data that etcd2 cannot hold, before the target etcd runs: Kubernetes protobuf values, keys and
// values that are not UTF-8 text, and keys that are not a v2 path as they are (v2PathProblem).
import { ChecksumBuilder } from '../../checksum.ts';
import { UsageError } from '../../errors.ts';
import { prefixEnd, type V3 } from '../../etcd/client/v3.ts';
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
  const paths = new PathTree();
  for await (const page of v3.range(start, end)) {
    for (const kv of page) {
      const key = Buffer.from(kv.key, 'base64');
      const value = Buffer.from(kv.value ?? '', 'base64');
      checkStorable(key, value);
      paths.add(key);
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
    throw new UsageError(
      `the value of ${name()} is Kubernetes protobuf (it starts with "k8s\\0"), ` +
        'and etcd2 can hold only JSON: nothing was changed. ' +
        'To roll back, first make the apiserver store JSON ' +
        '(--storage-media-type=application/json, i.e. STORAGE_MEDIA_TYPE=application/json) ' +
        'and rewrite every object (e.g. kubectl get <each resource> -A -o json | kubectl replace -f -), ' +
        'or stay on etcd3 (TARGET_STORAGE=etcd3)',
    );
  }
  for (const [what, bytes] of [
    ['key', key],
    ['value', value],
  ] as const) {
    try {
      utf8.decode(bytes);
    } catch {
      throw new UsageError(
        `the ${what} of ${name()} is not UTF-8 text, ` +
          'and etcd2 can hold only text: nothing was changed; stay on etcd3 (TARGET_STORAGE=etcd3) or remove that key',
      );
    }
  }
}

/**
 * Why a key cannot be a v2 key as it is, or undefined: the v2 API cleans every path (Go's path.Clean:
 * `//`, a trailing `/`, `.` and `..` change it), and hides names starting with `_` from every listing
 * (the apiserver and the rollback's own read-back would not see it).
 */
export function v2PathProblem(key: string): string | undefined {
  const names = key.split('/').slice(1);
  if (!key.startsWith('/') || names.some((n) => n === '')) {
    return 'has an empty name in its path (// or a trailing /), which the v2 API would drop';
  }
  if (names.some((n) => n === '.' || n === '..')) return 'has a . or .. in its path, which the v2 API would resolve';
  if (names.some((n) => n.startsWith('_'))) {
    return 'has a name starting with _ in its path, which etcd2 hides from every listing';
  }
  return undefined;
}

/**
 * The keys read so far that are a prefix of the last one, in byte order: etcd gives keys sorted, so a
 * key that is also a directory (`/a` and `/a/b`) is found with only its chain of prefixes kept.
 */
class PathTree {
  private readonly chain: Buffer[] = [];

  add(key: Buffer): void {
    const name = () => JSON.stringify(key.toString('utf8'));
    const problem = v2PathProblem(key.toString('utf8'));
    if (problem) throw new UsageError(`the key ${name()} ${problem}: nothing was changed. ${WAY_OUT('that key')}`);
    while (this.chain.length && !startsWith(key, this.chain.at(-1)!)) this.chain.pop();
    const parent = this.chain.at(-1);
    if (parent && key[parent.length] === 0x2f) {
      const dir = JSON.stringify(parent.toString('utf8'));
      throw new UsageError(
        `the key ${dir} is also a directory in etcd2 (the key ${name()} is under it), and a v2 node ` +
          `cannot be both: nothing was changed. ${WAY_OUT('one of them')}`,
      );
    }
    this.chain.push(key);
  }
}

const WAY_OUT = (what: string): string =>
  `Rename or delete ${what} in etcd3 first, or stay on etcd3 (TARGET_STORAGE=etcd3)`;

const startsWith = (b: Buffer, p: Buffer): boolean => b.length > p.length && b.subarray(0, p.length).equals(p);
