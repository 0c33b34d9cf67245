// The v3 keyspace that `etcdctl migrate` wrote, read offline from the db file: bbolt's "key" bucket
// holds one record per revision (key: the 8-byte main revision, "_", the 8-byte sub revision, and a
// "t" when it marks a deletion; value: an mvccpb.KeyValue). Right after migrate each v2 key is one
// record, so the records are the keyspace. Before it, the same read tells whether v3 holds keys;
// at the attach step, whether the keyspace is still as the conversion left it.
// One pass over the file, no etcd: a range through etcd 3.3 walks its whole index from the page
// start for every page (etcd issue 11057): many times slower than this read (BENCHMARKS.md).
import { existsSync, promises as fs } from 'node:fs';
import { ChecksumBuilder } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import { decodeKeyValue } from '../../etcd/client/proto.ts';
import { Bbolt } from '../../etcd/disk/bbolt.ts';

export interface DbKeyspace {
  /** Every live record's key and value (none counted as a TTL key). */
  sum: ChecksumBuilder;
  /** Records on a lease, and deletion marks: none right after a migrate. */
  leased: number;
  tombstones: number;
  /**
   * The highest main revision of a record (0 for none): the store's revision when etcd next starts, unless its WAL
   * holds more.
   */
  maxRevision: number;
}

/**
 * A db's keyspace as a step of this run read it, and the file's identity then (device, inode, size,
 * modification time): a later step of the run may take it for a read of the same file, unchanged.
 */
export interface CheckedDb {
  keyspace: DbKeyspace;
  identity: string;
}

export async function dbIdentity(file: string): Promise<string | undefined> {
  const st = await fs.stat(file, { bigint: true }).catch(() => undefined);
  return st && `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

/**
 * Whether the key bucket of two db files is the same pages, byte for byte: `snapshot restore` copies
 * the db and changes other buckets (members, the consistent index), so the restored db holds exactly
 * the records checked in the copy. False when either cannot be read.
 */
export function sameKeyBucket(a: string, b: string): boolean {
  let x: Bbolt | undefined;
  let y: Bbolt | undefined;
  try {
    x = new Bbolt(a);
    y = new Bbolt(b);
    return x.sameBucket(y, ['key']);
  } catch {
    return false;
  } finally {
    x?.close();
    y?.close();
  }
}

const isDeletion = (rev: Buffer): boolean => rev.length === 18 && rev[17] === 0x74;

export function readDbKeyspace(dbFile: string): DbKeyspace {
  const out: DbKeyspace = { sum: new ChecksumBuilder(), leased: 0, tombstones: 0, maxRevision: 0 };
  forEachRecord(dbFile, 'the db that etcdctl migrate wrote', (rev, value) => {
    // Records come in revision order: the last one's main revision is the highest.
    out.maxRevision = Number(rev.readBigUInt64BE(0));
    if (isDeletion(rev)) {
      out.tombstones++;
      return;
    }
    const kv = decodeKeyValue(value);
    if (kv.leased) out.leased++;
    out.sum.add(kv.key, kv.value, false);
  });
  return out;
}

/**
 * How many keys the v3 store of a stopped member holds (keys whose newest record is not a deletion);
 * 0 when there is no db yet. Memory grows with the keys found: an etcd2 member's v3 store is empty.
 */
export function liveKeyCount(dbFile: string): number {
  if (!existsSync(dbFile)) return 0;
  const live = new Map<string, boolean>();
  forEachRecord(dbFile, 'the db of the etcd2 data', (rev, value) => {
    live.set(decodeKeyValue(value).key.toString('latin1'), !isDeletion(rev));
  });
  let n = 0;
  for (const l of live.values()) if (l) n++;
  return n;
}

/** Every record of the key bucket, in revision order; an unreadable db is a StepError naming `what`. */
function forEachRecord(dbFile: string, what: string, fn: (rev: Buffer, value: Buffer) => void): void {
  let db: Bbolt;
  try {
    db = new Bbolt(dbFile);
  } catch (e) {
    throw new StepError(`cannot read ${what} (${dbFile}): ${(e as Error).message}; the live data was not changed`);
  }
  try {
    db.forEach(['key'], fn);
  } catch (e) {
    throw new StepError(`${what} (${dbFile}) is unreadable: ${(e as Error).message}; the live data was not changed`);
  } finally {
    db.close();
  }
}
