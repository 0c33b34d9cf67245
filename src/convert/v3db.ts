// The v3 keyspace that `etcdctl migrate` wrote, read offline from the db file: bbolt's "key" bucket
// holds one record per revision (key: the 8-byte main revision, "_", the 8-byte sub revision, and a
// "t" when it marks a deletion; value: an mvccpb.KeyValue). Right after migrate each v2 key is one
// record, so the records are the keyspace. One pass over the file, no etcd: a range through etcd
// 3.3 walks its whole index from the page start for every page (etcd issue 11057), 21 s for the
// 1,000,000 keys that this reads in a few seconds.
import { ChecksumBuilder } from '../checksum.ts';
import { StepError } from '../errors.ts';
import { decodeKeyValue } from '../etcd/proto.ts';
import { Bbolt } from '../inspect/bbolt.ts';

export interface DbKeyspace {
  /** Every live record's key and value (none counted as a TTL key). */
  sum: ChecksumBuilder;
  /** Records on a lease, and deletion marks: none right after a migrate. */
  leased: number;
  tombstones: number;
}

/** `keep`: which keys count (every key when not given). */
export function readDbKeyspace(dbFile: string, keep: (key: Buffer) => boolean = () => true): DbKeyspace {
  const out: DbKeyspace = { sum: new ChecksumBuilder(), leased: 0, tombstones: 0 };
  let db: Bbolt;
  try {
    db = new Bbolt(dbFile);
  } catch (e) {
    throw new StepError(`cannot read the db that etcdctl migrate wrote (${dbFile}): ${(e as Error).message}`);
  }
  try {
    db.forEach(['key'], (rev, value) => {
      if (rev.length === 18 && rev[17] === 0x74) {
        out.tombstones++;
        return;
      }
      const kv = decodeKeyValue(value);
      if (kv.leased) out.leased++;
      if (keep(kv.key)) out.sum.add(kv.key, kv.value, false);
    });
  } catch (e) {
    throw new StepError(`the db that etcdctl migrate wrote (${dbFile}) is unreadable: ${(e as Error).message}; the live data was not changed`);
  } finally {
    db.close();
  }
  return out;
}
