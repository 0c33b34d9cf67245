// The offline read of etcd's db (src/convert/v3db.ts over src/inspect/bbolt.ts): every record of
// bbolt's "key" bucket, from a db that etcd itself wrote, with branch pages (thousands of keys),
// overflow pages (large values), a deletion mark and a key on a lease.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChecksumBuilder } from '../../src/checksum.ts';
import { V3Grpc } from '../../src/etcd/grpc.ts';
import { readDbKeyspace } from '../../src/convert/v3db.ts';
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

it('says which file it cannot read, in one line', async () => {
  const dir = await tmpDir();
  expect(() => readDbKeyspace(path.join(dir, 'nope'))).toThrow(/cannot read the db that etcdctl migrate wrote \(.*nope\): ENOENT/);
});
