// After `etcdctl migrate` (which drops every TTL): the keys that had a TTL get a lease again, one
// lease per whole second of TTL left, attached in batched transactions; keys whose expiry has passed go.
// Each stage is checked against what the v2 store held: nothing lost, nothing changed, no TTL lost.
import { ChecksumBuilder, checksumMismatch, formatChecksum, type Checksum } from '../checksum.ts';
import { StepError } from '../errors.ts';
import { V3, V3Error, type Op } from '../etcd/v3.ts';
import { batches, forEachConcurrent } from './pool.ts';
import { readSpill } from './spill.ts';
import { expired, leaseTtl, ttlAtGrant } from './ttl.ts';
import { parseTtlLine, type TtlLine, type V2Contents } from './v2read.ts';

/** Operations per transaction (etcd's --max-txn-ops default is 128), and transactions in flight. */
export const TXN_OPS = 128;
const IN_FLIGHT = 8;

export interface Reattached {
  /** The v3 keyspace at the end: keys, values, which keys have a lease. */
  after: Checksum;
  /** What the v2 store held, less the keys that expired during the conversion. */
  expected: Checksum;
  expired: number;
  leases: number;
  /** When the leases were granted (ms since the epoch). */
  grantedAt: number;
}

export async function reattachTtls(v3: V3, ttlFile: string, v2: V2Contents, opsPerTxn = TXN_OPS): Promise<Reattached> {
  const lines = () => mapAsync(readSpill(ttlFile), parseTtlLine);
  /** What v3 must hold: the v2 store, less every key that expires on the way. */
  const want = v2.all;
  let gone = 0;
  const drop = (key: string, kv: bigint) => {
    gone++;
    want.remove(Buffer.from(key, 'base64'), kv, true);
  };

  // 1. Keys whose expiry has passed (before or during the read) must not survive.
  const cutoff = Date.now();
  async function* dueKeys(): AsyncGenerator<Op> {
    for await (const [exp, key, kv] of lines()) {
      if (expired(exp, cutoff)) {
        drop(key, kv);
        yield { request_delete_range: { key } };
      }
    }
  }
  await forEachConcurrent(batches(dueKeys(), opsPerTxn), IN_FLIGHT, (ops) => v3.txn(ops));

  // 2. What migrate wrote: every key and value of the v2 store (less the expired), and no lease.
  const converted = new ChecksumBuilder();
  let leased = 0;
  for await (const page of v3.range()) {
    for (const kv of page) {
      if (kv.lease) leased++;
      converted.add(Buffer.from(kv.key, 'base64'), Buffer.from(kv.value ?? '', 'base64'), false);
    }
  }
  const w = want.digest();
  const got = converted.digest();
  if (got.keys !== w.keys || got.kv !== w.kv || leased) {
    throw new StepError(`etcdctl migrate did not convert the v2 store faithfully: v2 (less expired keys) ${formatChecksum(w)}, v3 ${formatChecksum(got)}${leased ? `, ${leased} keys already on a lease` : ''}; the live data was not changed`);
  }

  // 3. One lease per whole second of TTL left, all granted now.
  const planned = Date.now();
  const ttls = new Set<number>();
  for await (const [exp] of lines()) if (!expired(exp, cutoff)) ttls.add(leaseTtl(exp, planned));
  const leases = new Map<number, string>();
  await forEachConcurrent([...ttls], IN_FLIGHT * 2, async (ttl) => {
    leases.set(ttl, await v3.grant(ttlAtGrant(ttl, planned, Date.now())));
  });

  // 4. Attach, a transaction per batch; a key whose lease ran out meanwhile is deleted instead.
  // Nothing slow comes after this: a lease lives on for as long as etcd is down after its grant
  // (a restart gives it its full TTL again), so the step ends as soon as the last key is attached.
  const withLease = new ChecksumBuilder();
  async function* attachOps(): AsyncGenerator<[Op, TtlLine]> {
    for await (const line of lines()) {
      if (!expired(line[0], cutoff)) yield [{ request_put: { key: line[1], lease: leases.get(leaseTtl(line[0], planned))!, ignore_value: true } }, line];
    }
  }
  await forEachConcurrent(batches(attachOps(), opsPerTxn), IN_FLIGHT, async (batch) => {
    let ok = batch.map(() => true);
    try {
      await v3.txn(batch.map(([op]) => op));
    } catch (e) {
      if (!(e instanceof V3Error && e.leaseNotFound)) throw e;
      ok = [];
      for (const [op, [, key]] of batch) ok.push(await attachOne(v3, op, key));
    }
    batch.forEach(([, [, key, kv]], i) => {
      const k = Buffer.from(key, 'base64');
      if (ok[i]) withLease.add(k, '', true);
      else {
        drop(key, kv);
        converted.remove(k, kv, false);
      }
    });
  });

  // 5. The keys with a lease are the v2 keys with a TTL (less the expired), each put with its lease
  // confirmed by etcd; keys and values are those checked in 2. (a put with ignore_value keeps the value).
  const l = withLease.digest();
  const after: Checksum = { ...converted.digest(), ttlKeys: l.ttlKeys, ttl: l.ttl };
  const expected = want.digest();
  const mismatch = checksumMismatch(expected, after);
  if (mismatch) throw new StepError(`after re-attaching TTLs the v3 keyspace does not match the v2 store: ${mismatch}; the live data was not changed`);
  return { after, expected, expired: gone, leases: leases.size, grantedAt: planned };
}

/** One key alone: true once it has its lease, false when the lease has run out (the key has expired and is deleted). */
async function attachOne(v3: V3, op: Op, key: string): Promise<boolean> {
  try {
    await v3.txn([op]);
    return true;
  } catch (e) {
    if (!(e instanceof V3Error && e.leaseNotFound)) throw e;
    await v3.txn([{ request_delete_range: { key } }]);
    return false;
  }
}

async function* mapAsync<A, B>(it: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const a of it) yield f(a);
}
