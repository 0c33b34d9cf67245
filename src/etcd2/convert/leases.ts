// The attach-ttls step's work, on the data as it is at the end of the chain: each key of the
// pending TTL file gets a lease for what will be left of its TTL when etcd next starts, one lease
// per whole second, attached in batched transactions; keys whose expiry has passed go. Checked
// against the checksum the conversion recorded: nothing lost, nothing changed, no TTL lost.
//
// A rerun after a crash repeats it all: a key attached before gets a new lease (the old one, left
// empty, runs out by itself), a key deleted before is deleted again (a no-op).
import { ChecksumBuilder, checksumMismatch, formatChecksum, kvDigest, type Checksum } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import { V3Error, type Op, type V3Api } from '../../etcd/client/v3.ts';
import { deleteExpired, IN_FLIGHT, sumKeyspace, TXN_BYTES, TXN_OPS } from './check.ts';
import type { PendingTtls } from './pending.ts';
import type { Progress } from '../../progress.ts';
import type { DbKeyspace } from './v3db.ts';
import { PackedLines } from './packed.ts';
import { forEachConcurrent } from './pool.ts';
import { expired, leaseTtl, ttlAtGrant, type TtlLine } from './ttl.ts';

/**
 * A key on a lease that an interrupted earlier attempt granted may be gone before its expiry: that
 * lease ended up to 1.5 s early (TTLs are rounded down to whole seconds, and by the seconds between
 * plan and grant), and by the attach time it allowed for and `extendMs` more. A missing key due
 * within this long counts as expired; any other is a loss.
 */
const EARLY_MS = 5000;
/** A key is deleted at most this long before its expiry (issue 3: every TTL within 2 s). */
const MOST_EARLY_MS = 2000;

export interface AttachOptions {
  /** Operations per transaction. */
  opsPerTxn?: number;
  /**
   * What the next etcd to serve the data adds to every lease when it becomes leader (its election
   * timeout: etcd's lessor.Promote): each lease is granted that much shorter.
   */
  extendMs?: number;
  /**
   * The smallest TTL (s) the next etcd keeps: at its start etcd raises every lease below 1.5 times
   * its election timeout, in whole seconds, to that.
   */
  minTtl?: number;
  /**
   * How much later than expected the next etcd may become leader: its randomized election wait, up to one
   * election timeout.
   */
  electionWaitMs?: number;
  /**
   * The keyspace read offline from the db before this etcd started, and how long that took. When it
   * is exactly what the conversion left (every key once, no deletion mark) and etcd's revision is
   * the db's highest (its WAL added nothing), it stands for reading every key back through etcd.
   */
  offline?: { db: DbKeyspace; ms: number };
  /** Told of each key put, in both passes (a timed one, then the attach): 2 per key with a TTL. */
  progress?: Progress;
}

export interface Attached {
  /** The v3 keyspace at the end: keys, values, which keys have a lease. */
  after: Checksum;
  /** What the conversion left, less the keys that expired since. */
  expected: Checksum;
  expired: number;
  leases: number;
  /** When the leases were granted, and when the last key had its lease (ms since the epoch). */
  grantedAt: number;
  attachedAt: number;
  /** How long the attach was expected to take (the pass without leases); the TTLs allow for it. */
  predictedMs: number;
  /** Keys deleted because they were due within `dueWithinMs`: nearer their expiry than any lease could end them. */
  dueSoon: number;
  dueWithinMs: number;
  /** How long reading and summing every key and value took (ms), and where they were read. */
  sumMs: number;
  sumFrom: 'db' | 'etcd';
}

export async function attachTtls(v3: V3Api, pending: PendingTtls, o: AttachOptions = {}): Promise<Attached> {
  const opsPerTxn = o.opsPerTxn ?? TXN_OPS;
  const extendMs = o.extendMs ?? 0;
  const minTtlMs = (o.minTtl ?? 1) * 1000;
  const early = EARLY_MS + extendMs;
  const want = new Expected(pending.expected);

  // 1. Whether the db read before etcd started stands for every key and value.
  const fromDb = await offlineSum(v3, pending.expected, o.offline);

  // 2. Keys whose expiry has passed (since the conversion, or while etcd was down) must not survive.
  const cutoff = Date.now();
  await deleteExpired(v3, pending.lines(), cutoff, opsPerTxn, (line) => {
    want.drop(line);
    fromDb?.remove(Buffer.from(line[1], 'base64'), line[2], false);
  });

  // 3. Every key and value as the conversion left them: from the db (less the keys just deleted),
  // or read back through etcd (keys may be on a lease of an earlier attempt).
  const summing = Date.now();
  const converted = fromDb ?? (await sumKeyspace(v3)).sum;
  const sumMs = fromDb ? o.offline!.ms : Date.now() - summing;
  await checkAsConverted(v3, pending, want, converted, cutoff, early);

  const pass: PutPass = {
    v3,
    pending,
    opsPerTxn,
    early,
    want,
    converted,
    isLive: (line) => !expired(line[0], cutoff) && !want.missing.has(line[1]),
    progress: o.progress,
  };
  // 4. The same puts onto one lease that outlives every key, timed: what the TTLs allow for.
  const { holder, predictedMs } = await timedPass(pass);

  // 5. No lease ends sooner than the next etcd's minimum TTL after it becomes leader, plus what it
  // adds then: `offset` from now, and up to a random election wait later. A key due before that is
  // either deleted now (early by what it has left) or kept until then (late): it is deleted when
  // that is nearer its expiry in the worst case, never more than 2 s early, and counted.
  const offset = predictedMs + extendMs;
  const dueWithinMs = Math.min(MOST_EARLY_MS, Math.round((offset + minTtlMs + (o.electionWaitMs ?? 0)) / 2));
  const dueSoon = await deleteDueSoon(pass, dueWithinMs);

  // 6. One lease per whole second of TTL left at the predicted end, less what the next etcd adds.
  const planned = Date.now();
  const ttlOf = (exp: number) => leaseTtl(exp, planned + offset);
  const leases = await grantLeases(pass, ttlOf, planned);

  // 7. Attach. Nothing slow comes after this: the step ends as soon as the last key has its lease.
  // Only which keys are on a lease counts here (keys and values were checked in 3.): no kv digest.
  const withLease = new ChecksumBuilder();
  await putAll(
    pass,
    (line) => leases.get(ttlOf(line[0]))!,
    (line) => withLease.addDigest(Buffer.from(line[1], 'base64'), 0n, true),
  );
  const attachedAt = Date.now();
  // The timed pass's lease holds no key now: revoked (only if so: revoking deletes a lease's keys).
  if (holder !== '0') await v3.revokeIfEmpty(holder);

  // 8. The keyspace at the end against what the conversion left, less the keys that went.
  const { after, expected } = checkAttached(want, converted, withLease);
  return {
    after,
    expected,
    expired: want.gone - dueSoon,
    leases: leases.size,
    grantedAt: planned,
    attachedAt,
    predictedMs,
    dueSoon,
    dueWithinMs,
    sumMs,
    sumFrom: fromDb ? 'db' : 'etcd',
  };
}

/** What the keyspace must hold: the conversion's checksum less the keys that went, and which went missing. */
class Expected {
  readonly want: ChecksumBuilder;
  readonly missing = new Set<string>();
  gone = 0;

  constructor(converted: Checksum) {
    this.want = ChecksumBuilder.of(converted);
  }

  drop([, key, kv]: TtlLine): void {
    this.gone++;
    this.want.remove(Buffer.from(key, 'base64'), kv, true);
  }

  digest(): Checksum {
    return this.want.digest();
  }
}

/** What a pass of puts over the pending keys needs, and the tallies it updates when a key is gone. */
interface PutPass {
  v3: V3Api;
  pending: PendingTtls;
  opsPerTxn: number;
  /** How long before its expiry a missing key counts as expired (see EARLY_MS). */
  early: number;
  want: Expected;
  /** The keys and values as converted, less the keys that went. */
  converted: ChecksumBuilder;
  /** Neither expired at the cutoff nor found missing. */
  isLive: (line: TtlLine) => boolean;
  progress?: Progress;
}

/** A key that went during the attach: missing, no longer expected, no longer in the keyspace. */
function lose(p: PutPass, line: TtlLine): void {
  p.want.missing.add(line[1]);
  p.want.drop(line);
  p.converted.remove(Buffer.from(line[1], 'base64'), line[2], false);
}

/**
 * 1. The db read before etcd started, when it stands for every key and value: it is exactly what
 * the conversion left, and etcd serves nothing more (its revision is the db's highest; asked
 * before the deletions, which raise it).
 */
async function offlineSum(
  v3: V3Api,
  expected: Checksum,
  offline: AttachOptions['offline'],
): Promise<ChecksumBuilder | undefined> {
  if (!offline || offline.db.tombstones) return undefined;
  const sum = offline.db.sum.digest();
  if (sum.keys !== expected.keys || sum.kv !== expected.kv) return undefined;
  return (await v3.revision()) === offline.db.maxRevision ? offline.db.sum : undefined;
}

/**
 * 3. The keyspace must be what the conversion left: a key that is not there is gone as due (near
 * its expiry, a lease of an earlier attempt took it) or the data was changed outside the migration.
 */
async function checkAsConverted(
  v3: V3Api,
  pending: PendingTtls,
  want: Expected,
  converted: ChecksumBuilder,
  cutoff: number,
  early: number,
): Promise<void> {
  const same = () => {
    const w = want.digest();
    const got = converted.digest();
    return got.keys === w.keys && got.kv === w.kv;
  };
  if (same()) return;
  for await (const line of pending.lines()) {
    if (!expired(line[0], cutoff) && line[0] - Date.now() < early && !(await exists(v3, line[1]))) {
      want.missing.add(line[1]);
      want.drop(line);
    }
  }
  if (!same()) {
    throw new StepError(
      'the keyspace is not as the etcd2 -> etcd3 conversion left it: ' +
        `expected ${formatChecksum(want.digest())}, found ${formatChecksum(converted.digest())} ` +
        '(did an etcd run on this data dir outside the migration?); ' +
        'restore the backup taken before the conversion and rerun, ' +
        'or delete the pending TTL file to keep the data without its TTLs',
    );
  }
}

/**
 * Puts every live key again, a transaction per batch: with the value the conversion recorded
 * (checked against its digest in 4., before the first put; etcd then need not read the value:
 * about a third less of its CPU per put), or keeping the value it has (ignore_value; a pending file
 * of an earlier build). A key that a lease of an earlier attempt removed meanwhile is put back by a
 * put with its value (on its new lease); a put with ignore_value finds it gone, and it is dropped
 * from the expected checksum.
 */
function putAll(p: PutPass, leaseOf: (line: TtlLine) => string, done?: (line: TtlLine) => void): Promise<void> {
  const put = (line: TtlLine): Op => ({
    request_put: sendsValue(line)
      ? { key: line[1], lease: leaseOf(line), value: line[3]! }
      : { key: line[1], lease: leaseOf(line), ignore_value: true },
  });
  return forEachConcurrent(liveBatches(p), IN_FLIGHT, async (batch) => {
    let ok: boolean[] | undefined;
    try {
      await p.v3.txn(Array.from({ length: batch.length }, (_, i) => put(batch.line(i))));
    } catch (e) {
      if (!(e instanceof V3Error && (e.leaseNotFound || e.keyNotFound))) throw e;
      ok = [];
      for (let i = 0; i < batch.length; i++) ok.push(await attachOne(p.v3, put(batch.line(i)), batch.line(i), p.early));
    }
    p.progress?.add(batch.length);
    for (let i = 0; i < batch.length; i++) {
      if (!ok || ok[i]) {
        done?.(batch.line(i));
        continue;
      }
      lose(p, batch.line(i));
    }
  });
}

/**
 * Batches straight from the file's blocks (no await and no generator step per key), packed as they
 * are built and while their transaction is in flight (see packed.ts); cut by count and by bytes
 * (TXN_BYTES).
 */
async function* liveBatches(p: PutPass): AsyncGenerator<PackedLines> {
  let batch = new PackedLines(p.opsPerTxn);
  let bytes = 0;
  for await (const block of p.pending.blocks()) {
    for (const line of block) {
      if (!p.isLive(line)) continue;
      const b = putBytes(line);
      if (batch.full || (batch.length && bytes + b > TXN_BYTES)) {
        yield batch;
        batch = new PackedLines(p.opsPerTxn);
        bytes = 0;
      }
      batch.push(line);
      bytes += b;
    }
  }
  if (batch.length) yield batch;
}

/**
 * 4. The same puts onto one lease that outlives every key (a minute past the last expiry), timed.
 * A lease lives from the start of the next etcd on, so what its TTL must allow for is when this
 * step ends, not when it is granted: the attach after the grant takes about as long as this pass
 * (same keys, batches, etcd, and a lease to attach each to; BENCHMARKS.md), and the TTLs are that
 * much shorter. It also takes every key off a lease an interrupted earlier attempt gave it; a key
 * left on this one by a crash expires late, never early. Once the attach has moved every key, it is
 * revoked. First, the last expiry, and every value to put checked against its digest (both passes
 * then put the same).
 */
async function timedPass(p: PutPass): Promise<{ holder: string; predictedMs: number }> {
  let lastExpiry = 0;
  for await (const block of p.pending.blocks()) {
    for (const line of block) {
      if (!p.isLive(line)) continue;
      lastExpiry = Math.max(lastExpiry, line[0]);
      checkValue(line);
    }
  }
  const holder = lastExpiry ? await p.v3.grant(Math.max(60, Math.ceil((lastExpiry - Date.now()) / 1000) + 60)) : '0';
  const t0 = Date.now();
  // With the attach's bookkeeping too (the digest of each key put), so that it takes as long: without
  // it this pass took less than the attach (BENCHMARKS.md), and every key would have expired that late.
  const onHolder = new ChecksumBuilder();
  await putAll(
    p,
    () => holder,
    (line) => onHolder.addDigest(Buffer.from(line[1], 'base64'), 0n, true),
  );
  return { holder, predictedMs: Date.now() - t0 };
}

/** 5. Deletes the live keys due within `dueWithinMs` from now; returns how many. */
async function deleteDueSoon(p: PutPass, dueWithinMs: number): Promise<number> {
  let dueSoon = 0;
  async function* liveLines(): AsyncGenerator<TtlLine> {
    for await (const line of p.pending.lines()) if (p.isLive(line)) yield line;
  }
  await deleteExpired(p.v3, liveLines(), Date.now() + dueWithinMs, p.opsPerTxn, (line) => {
    dueSoon++;
    lose(p, line);
  });
  return dueSoon;
}

/** 6. One lease per TTL (whole seconds) the live keys need, granted at once; by TTL. */
async function grantLeases(p: PutPass, ttlOf: (exp: number) => number, planned: number): Promise<Map<number, string>> {
  const ttls = new Set<number>();
  for await (const block of p.pending.blocks()) for (const line of block) if (p.isLive(line)) ttls.add(ttlOf(line[0]));
  const leases = new Map<number, string>();
  await forEachConcurrent([...ttls], IN_FLIGHT * 2, async (ttl) => {
    leases.set(ttl, await p.v3.grant(ttlAtGrant(ttl, planned, Date.now())));
  });
  return leases;
}

/**
 * 8. The keys with a lease are the pending keys (less the expired), each put with its lease
 * confirmed by etcd; keys and values are those checked in 3. (a put writes the value whose digest
 * the conversion recorded, or keeps the value with ignore_value).
 */
function checkAttached(
  want: Expected,
  converted: ChecksumBuilder,
  withLease: ChecksumBuilder,
): { after: Checksum; expected: Checksum } {
  const l = withLease.digest();
  const after: Checksum = { ...converted.digest(), ttlKeys: l.ttlKeys, ttl: l.ttl };
  const expected = want.digest();
  const mismatch = checksumMismatch(expected, after);
  if (mismatch)
    throw new StepError(
      `after attaching the TTLs the v3 keyspace does not match what the conversion left: ${mismatch}`,
    );
  return { after, expected };
}

/**
 * Whether a put sends the line's value: not a value too big to share a transaction (TXN_BYTES), which
 * alone could pass etcd's request limit; etcd keeps the one it has (ignore_value), checked in 3.
 */
const sendsValue = (line: TtlLine): boolean => line[3] !== undefined && line[3].length <= TXN_BYTES / 2;

/** What a put of the line adds to its transaction (base64 bytes). */
const putBytes = (line: TtlLine): number => line[1].length + (sendsValue(line) ? line[3]!.length : 0);

/**
 * A line's value (if it has one) must have the (key, value) digest the conversion recorded: a damaged
 * pending file must not write a wrong value. (A key's value never appears in a message.)
 */
function checkValue([, key, kv, value]: TtlLine): void {
  if (value !== undefined && kvDigest(Buffer.from(key, 'base64'), Buffer.from(value, 'base64')) !== kv) {
    throw new StepError(
      'the pending TTL file is damaged: ' +
        `the value of the key ${JSON.stringify(Buffer.from(key, 'base64').toString())} ` +
        'does not match the digest the conversion recorded; no value of it was written. ' +
        'Restore the backup taken before the etcd2 -> etcd3 conversion and rerun',
    );
  }
}

/**
 * One key alone: true once it has its lease; false when it is gone as due (its new lease ran out, so
 * it is deleted; or a lease of an earlier attempt took it just before its expiry).
 */
async function attachOne(v3: V3Api, op: Op, [exp, key]: TtlLine, early: number): Promise<boolean> {
  try {
    await v3.txn([op]);
    return true;
  } catch (e) {
    if (e instanceof V3Error && e.leaseNotFound) {
      await v3.txn([{ request_delete_range: { key } }]);
      return false;
    }
    if (e instanceof V3Error && e.keyNotFound && exp - Date.now() < early) return false;
    if (e instanceof V3Error && e.keyNotFound)
      throw new StepError(
        `a key with ${Math.round((exp - Date.now()) / 1000)} s of TTL left ` +
          'is gone from the keyspace before its lease was attached ' +
          '(did an etcd run on this data dir outside the migration?)',
      );
    throw e;
  }
}

async function exists(v3: V3Api, key: string): Promise<boolean> {
  // [key, key + "\0"): the key alone.
  return (await v3.count(key, Buffer.concat([Buffer.from(key, 'base64'), Buffer.alloc(1)]).toString('base64'))) > 0;
}
