// The checks of an etcd2 -> etcd3 conversion: after `etcdctl migrate` (which drops every TTL), the
// db must hold exactly the keys and values converted, none on a lease; the TTLs wait in the pending
// file for the attach-ttls step at the end of the chain (see pending.ts, leases.ts), which deletes
// the keys due by then and checks every other key again (from the db, or through etcd). Helpers for
// that step too.
import { ChecksumBuilder, formatChecksum, type Checksum } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import type { Op, V3Api } from '../../etcd/client/v3.ts';
import { compareMinor, type Version } from '../../version.ts';
import { batches, forEachConcurrent } from './pool.ts';
import { expired, type TtlLine } from './ttl.ts';
import { readDbKeyspace, type DbKeyspace } from './v3db.ts';
import { count } from '../../log.ts';

/** Operations per transaction (etcd's --max-txn-ops default is 128), and transactions in flight. */
export const TXN_OPS = 128;
export const IN_FLIGHT = 8;
/**
 * The most key and value bytes (as base64, so about 4/3 of the real ones) in one transaction. etcd
 * refuses a request larger than its --max-request-bytes (1.5 MiB unless set) as "request is too
 * large": a thousand 1.5 KB Kubernetes events are already more. A quarter of that default leaves
 * room for the framing and for an etcd run with a smaller limit.
 */
export const TXN_BYTES = 384 * 1024;
/** Larger transactions where etcd lets us say so (--max-txn-ops is there from 3.3). */
const BIG_TXN_OPS = 1000;

/** The etcd flags and the operations per transaction for etcd `v`. */
export function txnLimits(v: Version): { flags: string[]; ops: number } {
  return compareMinor(v, { major: 3, minor: 3, patch: 0 }) >= 0
    ? { flags: [`--max-txn-ops=${BIG_TXN_OPS}`], ops: BIG_TXN_OPS }
    : { flags: [], ops: TXN_OPS };
}

/**
 * After `etcdctl migrate`, offline: the db it wrote must hold exactly the keys and values the
 * transformer gave it (the v2 store less the keys already due), none on a lease (the TTLs wait for
 * the attach step), no deletion.
 */
export function checkMigratedDb(dbFile: string, converted: Checksum): DbKeyspace {
  const db = readDbKeyspace(dbFile);
  const got = db.sum.digest();
  if (got.keys !== converted.keys || got.kv !== converted.kv || db.leased || db.tombstones) {
    throw new StepError(
      'etcdctl migrate did not write the v2 store faithfully: ' +
        `v2 ${formatChecksum(converted)}, v3 ${formatChecksum(got)}` +
        `${db.leased ? `, ${count(db.leased, 'key')} on a lease` : ''}` +
        `${db.tombstones ? `, ${count(db.tombstones, 'deletion')}` : ''}; the live data was not changed`,
    );
  }
  return db;
}

/** Deletes every key due at or before `cutoff`, in batched transactions; tells `gone` of each. */
export async function deleteExpired(
  v3: V3Api,
  lines: AsyncIterable<TtlLine>,
  cutoff: number,
  opsPerTxn: number,
  gone: (line: TtlLine) => void,
): Promise<void> {
  async function* due(): AsyncGenerator<Op> {
    for await (const line of lines) {
      if (expired(line[0], cutoff)) {
        gone(line);
        yield { request_delete_range: { key: line[1] } };
      }
    }
  }
  const bytes = (op: Op) => ('request_delete_range' in op ? op.request_delete_range.key.length : 0);
  await forEachConcurrent(batches(due(), opsPerTxn, { bytes: TXN_BYTES, of: bytes }), IN_FLIGHT, (ops) => v3.txn(ops));
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
