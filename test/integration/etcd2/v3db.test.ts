// The offline read of etcd's db (src/etcd2/convert/v3db.ts over src/etcd/disk/bbolt.ts): every record of
// bbolt's "key" bucket, from a db that etcd itself wrote, with branch pages (thousands of keys),
// overflow pages (large values), a deletion mark and a key on a lease; the check of migrate's db;
// the count of live keys that tells whether an etcd2 member's v3 store is empty.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChecksumBuilder, kvDigest } from '../../../src/checksum.ts';
import { V3Grpc } from '../../../src/etcd/client/grpc.ts';
import { liveKeyCount, readDbKeyspace, sameKeyBucket } from '../../../src/etcd2/convert/v3db.ts';
import { restoreSnapshot } from '../../../src/etcd/process/snapshot.ts';
import { parseVersion } from '../../../src/version.ts';
import { promises as fs } from 'node:fs';
import { BIN_DIR } from '../../helpers/env.ts';
import { checkMigratedDb } from '../../../src/etcd2/convert/check.ts';
import { requireBinaries } from '../../helpers/env.ts';
import { startEtcd } from '../../helpers/etcd.ts';
import { onCleanup, tmpDir } from '../../helpers/tmp.ts';

beforeAll(requireBinaries);

describe.each(['3.3.25', '3.5.30'])('the db of etcd %s, read offline', (version) => {
  it('gives every record: each put once, the deletion marks and leases counted', async () => {
    const dir = await tmpDir();
    const m = await startEtcd(version, dir);
    const g = new V3Grpc(m.endpoint);
    onCleanup(async () => g.close());
    const gw = version.startsWith('3.3') ? '/v3beta' : '/v3';
    const put = (key: Buffer, value: Buffer, lease?: string) =>
      fetch(`${m.endpoint}${gw}/kv/put`, {
        method: 'POST',
        body: JSON.stringify({
          key: key.toString('base64'),
          value: value.toString('base64'),
          ...(lease ? { lease } : {}),
        }),
      }).then((r) => expect(r.status).toBe(200));
    const want = new ChecksumBuilder();
    const keys: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < 3000; i++)
      keys.push([Buffer.from(`/registry/pods/ns-${i % 7}/pod-${i}`), Buffer.from(`{"i":${i}}`)]);
    // Values larger than a page (bbolt overflow pages), a binary key, an empty value.
    for (let i = 0; i < 5; i++) keys.push([Buffer.from(`/big/${i}`), Buffer.alloc(100_000 + i, i + 1)]);
    keys.push([Buffer.from([0xff, 0x00, 0x7f]), Buffer.alloc(0)]);
    for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map(([k, v]) => put(k, v)));
    for (const [k, v] of keys) want.add(k, v, false);
    const lease = await g.grant(600);
    await put(Buffer.from('/leased'), Buffer.from('x'), lease);
    want.add('/leased', 'x', false);
    await g.txn([{ request_delete_range: { key: Buffer.from('/registry/pods/ns-0/pod-0').toString('base64') } }]);
    const revision = await g.revision();
    await m.stop();

    const db = readDbKeyspace(path.join(dir, 'member', 'snap', 'db'));
    // The deleted key's put is still a record (no compaction), beside its deletion mark.
    expect(db.tombstones).toBe(1);
    expect(db.leased).toBe(1);
    expect(db.sum.digest()).toEqual(want.digest());
    // The deletion is the newest record: the db's highest revision is etcd's revision.
    expect(db.maxRevision).toBe(revision);
  });
});

describe('checkMigratedDb', () => {
  it('takes exactly the keys and values the transformer gave migrate, none on a lease', async () => {
    const dir = await tmpDir();
    const m = await startEtcd('3.3.25', dir);
    const keys = Array.from(
      { length: 50 },
      (_, i) => [Buffer.from(`/registry/events/e${i}`), Buffer.from(`v${i}`)] as const,
    );
    // In the db: every key but e0 (lost).
    for (const [k, v] of keys.slice(1)) {
      const r = await fetch(`${m.endpoint}/v3beta/kv/put`, {
        method: 'POST',
        body: JSON.stringify({ key: k.toString('base64'), value: v.toString('base64') }),
      });
      expect(r.status).toBe(200);
    }
    await m.stop();
    const db = path.join(dir, 'member', 'snap', 'db');
    const sumOf = (from: number, ttlKeys: number) => {
      const all = new ChecksumBuilder();
      keys.slice(from).forEach(([k, v], i) => all.addDigest(k, kvDigest(k, v), i < ttlKeys));
      return all.digest();
    };
    // e0 missing: a loss, refused.
    expect(() => checkMigratedDb(db, sumOf(0, 3))).toThrow(
      /etcdctl migrate did not write the v2 store faithfully: v2 keys=50 .*, v3 keys=49 /,
    );
    // The 49 keys; which of them carry a TTL does not matter to the db (migrate drops TTLs).
    expect(checkMigratedDb(db, sumOf(1, 3)).sum.digest().keys).toBe(49);
    // A changed value is refused.
    const changed = new ChecksumBuilder();
    keys.slice(1).forEach(([k, v], i) => changed.add(k, i === 7 ? 'other' : v, false));
    expect(() => checkMigratedDb(db, changed.digest())).toThrow(/did not write the v2 store faithfully/);
  });
});

describe('sameKeyBucket', () => {
  it('holds for its snapshot-restored db (page for page), not once etcd wrote a key, nor for other data', async () => {
    const dir = await tmpDir();
    let m = await startEtcd('3.3.25', path.join(dir, 'a'));
    const put = (endpoint: string, k: string, v: string) =>
      fetch(`${endpoint}/v3beta/kv/put`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') }),
      }).then((r) => expect(r.status).toBe(200));
    // Thousands of keys (branch pages) and a value bigger than a page (overflow pages).
    for (let i = 0; i < 4000; i += 200)
      await Promise.all(
        Array.from({ length: 200 }, (_, j) => put(m.endpoint, `/registry/pods/p-${i + j}`, `{"i":${i + j}}`)),
      );
    await put(m.endpoint, '/big', 'x'.repeat(20_000));
    await m.stop();
    const db = path.join(dir, 'a', 'member', 'snap', 'db');
    const peer = 'http://127.0.0.1:1';
    await restoreSnapshot({
      binDir: BIN_DIR,
      version: parseVersion('3.3.25'),
      file: db,
      dataDir: path.join(dir, 'restored'),
      token: 't',
      env: {},
      skipHashCheck: true,
      member: {
        name: 'm1',
        initialCluster: `m1=${peer}`,
        listenPeerUrls: peer,
        initialAdvertisePeerUrls: peer,
        port: 1,
        extraArgs: [],
      },
    });
    const restored = path.join(dir, 'restored', 'member', 'snap', 'db');
    // The restore changed other buckets (the file differs), not the key bucket.
    expect((await fs.readFile(restored)).equals(await fs.readFile(db))).toBe(false);
    expect(sameKeyBucket(db, restored)).toBe(true);
    expect(sameKeyBucket(restored, restored)).toBe(true);
    // One byte of one value changed in a copy, deep in the tree (a leaf page under branch pages).
    const bytes = await fs.readFile(db);
    const at = bytes.indexOf('{"i":2345}');
    expect(at).toBeGreaterThan(0);
    bytes[at + 8] = 0x36;
    await fs.writeFile(path.join(dir, 'flipped'), bytes);
    expect(sameKeyBucket(db, path.join(dir, 'flipped'))).toBe(false);

    // A copy that etcd then ran on and wrote one key to.
    await fs.cp(path.join(dir, 'a'), path.join(dir, 'b'), { recursive: true });
    m = await startEtcd('3.3.25', path.join(dir, 'b'));
    await put(m.endpoint, '/registry/pods/p-7', 'changed');
    await m.stop();
    expect(sameKeyBucket(db, path.join(dir, 'b', 'member', 'snap', 'db'))).toBe(false);

    // Other data; a file that is not a db; no file.
    m = await startEtcd('3.3.25', path.join(dir, 'c'));
    await put(m.endpoint, '/registry/pods/p-0', '{"i":0}');
    await m.stop();
    expect(sameKeyBucket(db, path.join(dir, 'c', 'member', 'snap', 'db'))).toBe(false);
    await fs.writeFile(path.join(dir, 'junk'), Buffer.alloc(8192, 7));
    expect(sameKeyBucket(db, path.join(dir, 'junk'))).toBe(false);
    expect(sameKeyBucket(db, path.join(dir, 'none'))).toBe(false);
  }, 60_000);
});

describe('liveKeyCount', () => {
  it('counts the keys whose newest record is not a deletion; 0 without a db', async () => {
    const dir = await tmpDir();
    expect(liveKeyCount(path.join(dir, 'member', 'snap', 'db'))).toBe(0);
    const m = await startEtcd('3.3.25', dir);
    const op = (path_: string, body: object) =>
      fetch(`${m.endpoint}/v3beta/kv/${path_}`, { method: 'POST', body: JSON.stringify(body) }).then((r) =>
        expect(r.status).toBe(200),
      );
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    for (const k of ['a', 'b', 'c']) await op('put', { key: b64(k), value: b64('1') });
    await op('put', { key: b64('a'), value: b64('2') });
    await op('deleterange', { key: b64('b') });
    await op('put', { key: b64('c'), value: b64('3') });
    await op('deleterange', { key: b64('c') });
    await op('put', { key: b64('c'), value: b64('4') });
    await m.stop();
    expect(liveKeyCount(path.join(dir, 'member', 'snap', 'db'))).toBe(2);
  });
});

it('says which file it cannot read, in one line', async () => {
  const dir = await tmpDir();
  expect(() => readDbKeyspace(path.join(dir, 'nope'))).toThrow(
    /cannot read the db that etcdctl migrate wrote \(.*nope\): ENOENT/,
  );
});

it('refuses a db that ends inside a page (a truncated file): never reads the missing bytes as zeros', async () => {
  const dir = await tmpDir();
  const m = await startEtcd('3.3.25', dir);
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const big = Buffer.alloc(100_000, 'Q');
  for (const [k, v] of [
    ['/a', 'v'],
    ['/big', big],
    ['/z', 'v'],
  ] as const) {
    const r = await fetch(`${m.endpoint}/v3beta/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b64(k), value: b64(v) }),
    });
    expect(r.status).toBe(200);
  }
  await m.stop();
  const db = path.join(dir, 'member', 'snap', 'db');
  expect(readDbKeyspace(db).sum.digest().keys).toBe(3);
  // Cut off in the middle of the big value (its overflow pages): the rest of the value is missing.
  const at = (await fs.readFile(db)).indexOf(big);
  expect(at).toBeGreaterThan(0);
  await fs.truncate(db, at + 50_000);
  expect(() => readDbKeyspace(db)).toThrow(/ends inside a page .*: truncated/);
});
