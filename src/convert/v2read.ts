// Reads the whole v2 store of a temporary etcd: a checksum of every key and value, the keys with a
// TTL (with their absolute expiry) spilled to a file, the expiry seconds in use, the directories.
import { ChecksumBuilder, kvDigest } from '../checksum.ts';
import type { HttpClient } from '../etcd/http.ts';
import { expiresAt, walk } from '../etcd/v2.ts';
import type { SpillWriter } from './spill.ts';

export interface V2Contents {
  /** Every key and value, and which keys carry a TTL. */
  all: ChecksumBuilder;
  dirs: number;
}

/** A spilled TTL key: expiry (ms), key (base64), (key, value) digest (hex). */
export type TtlLine = [expiresMs: number, keyB64: string, kv: bigint];

export const parseTtlLine = (f: string[]): TtlLine => [Number(f[0]), f[1]!, BigInt(`0x${f[2]}`)];

export async function readV2Store(c: HttpClient, ttlKeys: SpillWriter): Promise<V2Contents> {
  const all = new ChecksumBuilder();
  let dirs = 0;
  for await (const n of walk(c)) {
    if (n.dir) {
      dirs++;
      continue;
    }
    const key = Buffer.from(n.key);
    const kv = kvDigest(key, n.value ?? '');
    const exp = expiresAt(n);
    all.addDigest(key, kv, exp !== undefined);
    if (exp !== undefined) await ttlKeys.write([exp, key.toString('base64'), kv.toString(16)]);
  }
  return { all, dirs };
}
