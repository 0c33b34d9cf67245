// What `etcdctl migrate --transformer` asks of its transformer, and what ours does besides. migrate
// rebuilds the v2 store from the snapshot and the WAL (etcd's own replay code), writes every node
// (directories too) as a JSON object to the transformer's stdin, and writes every record the
// transformer sends back into the v3 store: an 8-byte little-endian length, then an mvccpb.KeyValue.
// The records are those of etcd's default transformer (key, value, create revision = v2
// createdIndex, mod revision = v2 modifiedIndex, version 1), so revisions keep the v2 indexes, but:
// - a key whose expiry has passed is not converted: migrate's store still holds it (etcd deletes
//   expired keys only when its leader says so), a running etcd would not;
// - a key's expiry is the earliest of its own and its ancestor directories': in v2 a directory's
//   expiry deletes its whole subtree (migrate sends every directory before what it holds);
// - each converted key is counted into a checksum, and a key with a TTL becomes a line of the TTL
//   spill file (absolute expiry, key, digest, value) for the attach-ttls step: migrate drops TTLs.
// Pure: a node in, the record and the TTL line out.
import { ChecksumBuilder, kvDigest, type Checksum } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import { ProtoWriter } from '../../etcd/client/proto.ts';
import { expiresAt } from '../v2api.ts';
import type { V2Node } from '../v2nodes.ts';
import { expired, type TtlLine } from './ttl.ts';

/** What the transformer leaves for the step when migrate is done with it. */
export interface TransformSummary {
  /** The keys it gave migrate: their checksum, keys with a TTL counted as TTL keys. */
  converted: Checksum;
  /** Directories (the root not counted): v3 has none, they are not kept. */
  dirs: number;
  /** Keys already due when read: not converted. */
  expired: number;
}

/** The record of one key for migrate's stdin: the 8-byte little-endian length, then the KeyValue. */
export function kvRecord(key: Buffer, value: Buffer, createRevision: number, modRevision: number): Buffer {
  // kv.proto: key 1, create_revision 2, mod_revision 3, version 4, value 5 (lease 6 stays 0).
  const kv = new ProtoWriter()
    .bytes(1, key)
    .int(2, createRevision)
    .int(3, modRevision)
    .int(4, 1)
    .bytes(5, value)
    .finish();
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(kv.length));
  return Buffer.concat([head, kv]);
}

export class V2ToV3Transform {
  private readonly sum = new ChecksumBuilder();
  private dirs = 0;
  private expired = 0;
  /** The directories that expire (by their own TTL or an ancestor's), with that expiry. */
  private readonly dirExpiry = new Map<string, number>();
  /** False: only count (the read of the v2 store itself needs no record nor TTL line). */
  private readonly output: boolean;

  constructor(o: { output?: boolean } = {}) {
    this.output = o.output ?? true;
  }

  /**
   * One node as migrate wrote it: whether it is a key that is converted, the record to send back
   * (none for a directory or a key already due), and the key's TTL line.
   */
  node(n: V2Node, nowMs: number): { converted?: true; record?: Buffer; ttl?: TtlLine } {
    if (n.dir) {
      if (n.key !== '/') this.dirs++;
      const exp = this.expiryOf(n);
      if (exp !== undefined) this.dirExpiry.set(n.key, exp);
      return {};
    }
    if (
      !Number.isSafeInteger(n.createdIndex) ||
      !Number.isSafeInteger(n.modifiedIndex) ||
      n.createdIndex <= 0 ||
      n.modifiedIndex <= 0
    ) {
      throw new StepError(
        `etcdctl migrate gave the v2 key ${JSON.stringify(n.key)} ` +
          `unusable indexes (created ${n.createdIndex}, modified ${n.modifiedIndex})`,
      );
    }
    const exp = this.expiryOf(n);
    if (exp !== undefined && expired(exp, nowMs)) {
      this.expired++;
      return {};
    }
    const key = Buffer.from(n.key);
    const value = Buffer.from(n.value ?? '');
    const kv = kvDigest(key, value);
    this.sum.addDigest(key, kv, exp !== undefined);
    if (!this.output) return { converted: true };
    const record = kvRecord(key, value, n.createdIndex, n.modifiedIndex);
    if (exp === undefined) return { converted: true, record };
    return { converted: true, record, ttl: [exp, key.toString('base64'), kv, value.toString('base64')] };
  }

  /** The earliest of the node's own expiry and its nearest expiring ancestor's (which holds its own ancestors'). */
  private expiryOf(n: V2Node): number | undefined {
    const own = expiresAt(n);
    if (this.dirExpiry.size === 0) return own;
    for (let i = n.key.lastIndexOf('/'); i > 0; i = n.key.lastIndexOf('/', i - 1)) {
      const dir = this.dirExpiry.get(n.key.slice(0, i));
      if (dir !== undefined) return own === undefined ? dir : Math.min(own, dir);
    }
    return own;
  }

  summary(): TransformSummary {
    return { converted: this.sum.digest(), dirs: this.dirs, expired: this.expired };
  }
}
