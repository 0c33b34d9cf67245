// After `etcdctl migrate` (which drops every TTL): keys whose expiry has passed go, and the v3
// keyspace must then hold exactly the v2 store's keys and values, none on a lease. The TTLs wait in
// the pending file for the attach-ttls step at the end of the chain (see pending.ts, leases.ts).
import { ChecksumBuilder, formatChecksum, type Checksum } from '../checksum.ts';
import { StepError } from '../errors.ts';
import type { Op, V3Api } from '../etcd/v3.ts';
import { compareMinor, type Version } from '../version.ts';
import { batches, forEachConcurrent } from './pool.ts';
import { readSpill } from './spill.ts';
import { expired, parseTtlLine, type TtlLine } from './ttl.ts';
import { readDbKeyspace } from './v3db.ts';

/** Operations per transaction (etcd's --max-txn-ops default is 128), and transactions in flight. */
export const TXN_OPS = 128;
export const IN_FLIGHT = 8;
/** Larger transactions where etcd lets us say so (--max-txn-ops is there from 3.3). */
const BIG_TXN_OPS = 1000;

/** The etcd flags and the operations per transaction for etcd `v`. */
export function txnLimits(v: Version): { flags: string[]; ops: number } {
  return compareMinor(v, { major: 3, minor: 3, patch: 0 }) >= 0 ? { flags: [`--max-txn-ops=${BIG_TXN_OPS}`], ops: BIG_TXN_OPS } : { flags: [], ops: TXN_OPS };
}

export interface Converted {
  /** The v3 keyspace as checked (less the expired keys); the keys with a TTL count as TTL keys. */
  expected: Checksum;
  expired: number;
  /** Keys due at or before this moment (ms since the epoch) were deleted. */
  cutoff: number;
  /** How long the deletes took, and the count after them (ms). */
  deleteMs: number;
  countMs: number;
}

/**
 * After `etcdctl migrate`, offline: the db it wrote must hold exactly the keys and values the
 * transformer gave it (the v2 store less the keys already due), none on a lease (the TTLs wait for
 * the attach step), no deletion.
 */
export function checkMigratedDb(dbFile: string, converted: Checksum): Checksum {
  const db = readDbKeyspace(dbFile);
  const got = db.sum.digest();
  if (got.keys !== converted.keys || got.kv !== converted.kv || db.leased || db.tombstones) {
    throw new StepError(`etcdctl migrate did not write the v2 store faithfully: v2 ${formatChecksum(converted)}, v3 ${formatChecksum(got)}${db.leased ? `, ${db.leased} keys on a lease` : ''}${db.tombstones ? `, ${db.tombstones} deletions` : ''}; the live data was not changed`);
  }
  return got;
}

/**
 * On etcd serving the converted data: the keys whose expiry has passed go; then etcd must count
 * exactly the keys left (the values were checked in the db before, by checkMigratedDb).
 */
export async function deleteExpiredAndCount(v3: V3Api, ttlFile: string, converted: Checksum, opsPerTxn = TXN_OPS): Promise<Converted> {
  const want = ChecksumBuilder.of(converted);
  let gone = 0;
  const cutoff = Date.now();
  await deleteExpired(v3, ttlLines(ttlFile), cutoff, opsPerTxn, ([, key, kv]) => {
    gone++;
    want.remove(Buffer.from(key, 'base64'), kv, true);
  });
  const deleted = Date.now();
  const w = want.digest();
  const count = await v3.count();
  if (count !== w.keys) throw new StepError(`after deleting ${gone} expired keys etcd counts ${count} keys, not the ${w.keys} the v2 store left; the live data was not changed`);
  return { expected: w, expired: gone, cutoff, deleteMs: deleted - cutoff, countMs: Date.now() - deleted };
}

/** The keys of a spill file of the v2 read (ttl-keys.tsv) that have not expired at `cutoff`. */
export async function* unexpired(ttlFile: string, cutoff: number): AsyncGenerator<TtlLine> {
  for await (const line of ttlLines(ttlFile)) if (!expired(line[0], cutoff)) yield line;
}

async function* ttlLines(ttlFile: string): AsyncGenerator<TtlLine> {
  for await (const f of readSpill(ttlFile)) yield parseTtlLine(f);
}

/** Deletes every key due at or before `cutoff`, in batched transactions; tells `gone` of each. */
export async function deleteExpired(v3: V3Api, lines: AsyncIterable<TtlLine>, cutoff: number, opsPerTxn: number, gone: (line: TtlLine) => void): Promise<void> {
  async function* due(): AsyncGenerator<Op> {
    for await (const line of lines) {
      if (expired(line[0], cutoff)) {
        gone(line);
        yield { request_delete_range: { key: line[1] } };
      }
    }
  }
  await forEachConcurrent(batches(due(), opsPerTxn), IN_FLIGHT, (ops) => v3.txn(ops));
}

/** Every key and value (none counted as a TTL key), and how many keys are on a lease. */
export async function sumKeyspace(v3: V3Api): Promise<{ sum: ChecksumBuilder; leased: number }> {
  const sum = new ChecksumBuilder();
  let leased = 0;
  for await (const page of v3.rawRange()) {
    for (const kv of page) {
      if (kv.leased) leased++;
      sum.add(kv.key, kv.value, false);
    }
  }
  return { sum, leased };
}
