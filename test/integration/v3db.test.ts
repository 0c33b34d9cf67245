// The offline read of etcd's db (src/convert/v3db.ts over src/inspect/bbolt.ts): every record of
// bbolt's "key" bucket, from a db that etcd itself wrote, with branch pages (thousands of keys),
// overflow pages (large values), a deletion mark and a key on a lease.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChecksumBuilder, kvDigest } from '../../src/checksum.ts';
import { V3Grpc } from '../../src/etcd/grpc.ts';
import { readDbKeyspace } from '../../src/convert/v3db.ts';
import { checkMigratedDb } from '../../src/convert/check.ts';
import { SpillWriter } from '../../src/convert/spill.ts';
import type { V2Contents } from '../../src/convert/v2read.ts';
import { requireBinaries } from '../helpers/env.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { onCleanup, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

describe.each(['3.3.25', '3.5.30'])('the db of etcd %s, read offline', (version) => {
  it('gives every record: each put once, the deletion marks and leases counted', async () => {
    const dir = await tmpDir();
    const m = await startEtcd(version, dir);
    const g = new V3Grpc(m.endpoint);
    onCleanup(async () => g.close());
    const gw = version.startsWith('3.3') ? '/v3beta' : '/v3';
    const put = (key: Buffer, value: Buffer, lease?: string) => fetch(`${m.endpoint}${gw}/kv/put`, { method: 'POST', body: JSON.stringify({ key: key.toString('base64'), value: value.toString('base64'), ...(lease ? { lease } : {}) }) }).then((r) => expect(r.status).toBe(200));
    const want = new ChecksumBuilder();
    const keys: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < 3000; i++) keys.push([Buffer.from(`/registry/pods/ns-${i % 7}/pod-${i}`), Buffer.from(`{"i":${i}}`)]);
    // Values larger than a page (bbolt overflow pages), a binary key, an empty value.
    for (let i = 0; i < 5; i++) keys.push([Buffer.from(`/big/${i}`), Buffer.alloc(100_000 + i, i + 1)]);
    keys.push([Buffer.from([0xff, 0x00, 0x7f]), Buffer.alloc(0)]);
    for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map(([k, v]) => put(k, v)));
    for (const [k, v] of keys) want.add(k, v, false);
    const lease = await g.grant(600);
    await put(Buffer.from('/leased'), Buffer.from('x'), lease);
    want.add('/leased', 'x', false);
    await g.txn([{ request_delete_range: { key: Buffer.from('/registry/pods/ns-0/pod-0').toString('base64') } }]);
    await m.stop();

    const db = readDbKeyspace(path.join(dir, 'member', 'snap', 'db'));
    // The deleted key's put is still a record (no compaction), beside its deletion mark.
    expect(db.tombstones).toBe(1);
    expect(db.leased).toBe(1);
    expect(db.sum.digest()).toEqual(want.digest());
  });
});

describe('checkMigratedDb', () => {
  it('leaves out keys already due (an etcd may have expired them after they were read) and nothing else', async () => {
    const dir = await tmpDir();
    const m = await startEtcd('3.3.25', dir);
    const keys = Array.from({ length: 50 }, (_, i) => [Buffer.from(`/registry/events/e${i}`), Buffer.from(`v${i}`)] as const);
    // In the db: every key but e0 and e1 (as if expired and deleted after the v2 read) and e2 (lost).
    for (const [k, v] of keys.slice(3)) {
      const r = await fetch(`${m.endpoint}/v3beta/kv/put`, { method: 'POST', body: JSON.stringify({ key: k.toString('base64'), value: v.toString('base64') }) });
      expect(r.status).toBe(200);
    }
    await m.stop();
    const db = path.join(dir, 'member', 'snap', 'db');
    // What the v2 read saw: all 50 keys; e0, e1 due a minute ago, e2 and e3 due in an hour.
    const v2 = (): V2Contents => {
      const all = new ChecksumBuilder();
      for (const [k, v] of keys) all.addDigest(k, kvDigest(k, v), k.toString().endsWith('/e0') || k.toString().endsWith('/e1') || k.toString().endsWith('/e2') || k.toString().endsWith('/e3'));
      return { all, dirs: 1 };
    };
    const spillOf = async (dueNow: number[]) => {
      const file = path.join(dir, `spill-${dueNow.join('-')}.tsv`);
      const spill = new SpillWriter(file);
      for (const i of [0, 1, 2, 3]) await spill.write([dueNow.includes(i) ? Date.now() - 60_000 : Date.now() + 3_600_000, keys[i]![0].toString('base64'), kvDigest(keys[i]![0], keys[i]![1]).toString(16)]);
      await spill.close();
      return file;
    };
    // e2 is missing and not due: a loss, refused.
    await expect(checkMigratedDb(db, v2(), await spillOf([0, 1]))).rejects.toThrow(/etcdctl migrate did not convert the v2 store faithfully: v2 keys=48 .*, v3 keys=47 .*without the 2 keys due by now/);
    // e2 due too: all three are left out, the other 47 must be there and are.
    const got = await checkMigratedDb(db, v2(), await spillOf([0, 1, 2]));
    expect(got.keys).toBe(47);
    // A due key that is still there (not yet expired by etcd) is left out the same way.
    expect((await checkMigratedDb(db, v2(), await spillOf([0, 1, 2, 3]))).keys).toBe(46);
  });
});

it('says which file it cannot read, in one line', async () => {
  const dir = await tmpDir();
  expect(() => readDbKeyspace(path.join(dir, 'nope'))).toThrow(/cannot read the db that etcdctl migrate wrote \(.*nope\): ENOENT/);
});
