// etcd2 data with TTLs, and how far the leases after a conversion are from the v2 expiries.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { dumpKeys, startEtcd, type KeyValue } from './etcd.ts';
import { writeV2, type DataKey } from './k8sdata.ts';
import { leaseExpiries } from './lease-ends.ts';

export { leaseExpiries };

/**
 * Writes `keys` through the v2 API of etcd 3.3.25 into `dir` (version.txt 3.3.25/etcd2); returns each TTL key's expiry
 * (ms).
 */
export async function makeV2Data(dir: string, keys: readonly DataKey[], name: string): Promise<Map<string, number>> {
  const m = await startEtcd('3.3.25', dir, { name });
  const expiries = await writeV2(m.endpoint, keys);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
  return expiries;
}

export interface TtlCheck {
  /** Every key after the conversion, served by etcd 3.5.30. */
  after: KeyValue[];
  /** Keys with a TTL in v2 that have no lease, and keys without one that have a lease. */
  wrongLease: string[];
  /** For each key with a TTL: when its lease ends less when v2 said it expires, in seconds. */
  errors: number[];
}

/**
 * Reads every key and lease of a running etcd 3.5.30 and compares them with the v2 data set. With
 * `judgeFrom`, `errors` leaves out the keys due before it (see the etcd2 torture test).
 */
export async function checkTtls(
  endpoint: string,
  keys: readonly DataKey[],
  expiries: ReadonlyMap<string, number>,
  judgeFrom = 0,
): Promise<TtlCheck> {
  const after = await dumpKeys('3.5.30', endpoint);
  const byKey = new Map(after.map((k) => [k.key, k]));
  const wrongLease = keys
    .filter((k) => byKey.has(k.key) && (byKey.get(k.key)!.lease !== '0') !== (k.ttl !== undefined))
    .map((k) => k.key);
  const ends = await leaseExpiries(endpoint, new Set(after.filter((k) => k.lease !== '0').map((k) => k.lease)));
  const errors = keys
    .filter(
      (k) => k.ttl && byKey.get(k.key)?.lease && byKey.get(k.key)!.lease !== '0' && expiries.get(k.key)! >= judgeFrom,
    )
    .map((k) => (ends.get(byKey.get(k.key)!.lease)! - expiries.get(k.key)!) / 1000);
  return { after, wrongLease, errors };
}

export const range = (errors: readonly number[]): string =>
  `${Math.min(...errors).toFixed(2)} to ${Math.max(...errors).toFixed(2)} s`;
