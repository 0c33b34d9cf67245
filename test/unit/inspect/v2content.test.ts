// The pure parts of src/inspect/v2content.ts: what an entry's data is (raw v2 Request, nested v2,
// v3, neither), 3.6's allowed v2 requests, and 3.6's rule for custom content in a v2 store.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSnapFile } from '../../../src/etcd/disk/snapfile.ts';
import { allowedOn36, classifyEntryData, customSnapshotPaths, readV2Content } from '../../../src/inspect/v2content.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { bf, first, vf } from '../../helpers/walfile.ts';

/** A pb.Request as gogoproto writes it (proto2, non-nullable: every field but 8 and 17, zeros too). */
const gogoRequest = (method: string, p: string, time = 0) =>
  Buffer.concat([
    vf(1, 12345),
    bf(2, method),
    bf(3, p),
    bf(4, ''),
    vf(5, 0),
    bf(6, ''),
    vf(7, 0),
    ...[9, 10, 11, 12, 13, 14].map((f) => vf(f, 0)),
    vf(15, time),
    vf(16, 0),
  ]);

// Entries etcd 3.5.30 wrote at its first start: its publish, the cluster version, a v3 put.
const hex = (...parts: string[]) => Buffer.from(parts.join(''), 'hex');
const PUBLISH = hex(
  '0881b8d194d1c7e8863912035055541a262f302f6d656d626572732f626461653962626331316464333930642f',
  '6174747269627574657322347b226e616d65223a226d222c22636c69656e7455524c73223a5b22687474703a2f2f',
  '3132372e302e302e313a3233373931225d7d2800320038004800500058006000680070007800800100',
);
const VERSION = hex(
  '0882b8d194d1c7e8863912035055541a0a2f302f76657273696f6e2205332e352e30',
  '2800320038004800500058006000680070007800800100',
);
const V3_PUT = Buffer.from('22080a026b3112027631a2060a0883b8d194d1c7e88639', 'hex');

describe('classifyEntryData', () => {
  it('reads the raw v2 requests etcd 3.5.30 wrote, and its v3 put as v3', () => {
    const publish = { kind: 'v2', form: 'raw', method: 'PUT', path: '/0/members/bdae9bbc11dd390d/attributes' };
    expect(classifyEntryData(PUBLISH)).toEqual(publish);
    expect(classifyEntryData(VERSION)).toEqual({ kind: 'v2', form: 'raw', method: 'PUT', path: '/0/version' });
    expect(classifyEntryData(V3_PUT)).toEqual({ kind: 'v3' });
  });

  // Its Dir (field 5) is a varint where an InternalRaftRequest has a message.
  it('a raw Request whatever its method, even empty', () => {
    for (const method of ['PUT', 'POST', 'DELETE', 'QGET', 'GET', 'HEAD', 'SYNC', '']) {
      const expected = { kind: 'v2', form: 'raw', method, path: '/1/x' };
      expect(classifyEntryData(gogoRequest(method, '/1/x', 7))).toEqual(expected);
    }
  });

  it('a minimal raw Request (ID, Method, Path only): its Method is not a Request message, so still raw', () => {
    for (const method of ['PUT', 'POST', 'DELETE', 'QGET', 'SYNC', 'GET', 'HEAD']) {
      const data = Buffer.concat([vf(1, 1), bf(2, method), bf(3, '/0/version')]);
      expect(classifyEntryData(data)).toMatchObject({ kind: 'v2', form: 'raw', method });
    }
    const sync = Buffer.concat([vf(1, 1), bf(2, 'SYNC'), vf(15, 1234567)]);
    expect(classifyEntryData(sync)).toMatchObject({ form: 'raw', method: 'SYNC', path: '' });
  });

  it('an InternalRaftRequest holding a v2 Request (field 2) is nested; one without it is v3', () => {
    const nested = Buffer.concat([vf(1, 9), bf(2, gogoRequest('DELETE', '/1/a/b'))]);
    expect(classifyEntryData(nested)).toEqual({ kind: 'v2', form: 'nested', method: 'DELETE', path: '/1/a/b' });
    const header = bf(100, vf(1, 77));
    const put = bf(4, Buffer.concat([bf(1, 'k'), bf(2, 'v')]));
    expect(classifyEntryData(Buffer.concat([header, put]))).toEqual({ kind: 'v3' });
    expect(classifyEntryData(Buffer.concat([header, bf(1300, bf(1, '3.5.0'))]))).toEqual({ kind: 'v3' });
    expect(classifyEntryData(Buffer.concat([header, bf(10, Buffer.alloc(0))]))).toEqual({ kind: 'v3' });
  });

  it('data that is neither message counts as a v2 request, unparseable', () => {
    const unparseable = { kind: 'v2', form: 'unparseable', method: '', path: '' };
    expect(classifyEntryData(Buffer.from([0xff, 0xff]))).toEqual(unparseable);
    expect(classifyEntryData(Buffer.from('not protobuf at all'))).toEqual(unparseable);
    expect(classifyEntryData(VERSION.subarray(0, 20))).toEqual(unparseable);
    // Field 2 as a varint fits neither: a message in one, a string in the other.
    expect(classifyEntryData(Buffer.concat([vf(1, 1), vf(2, 3)]))).toEqual(unparseable);
  });
});

describe('allowedOn36', () => {
  it("only PUT of a member's attributes or of the cluster version", () => {
    expect(allowedOn36('PUT', '/0/members/bdae9bbc11dd390d/attributes')).toBe(true);
    expect(allowedOn36('PUT', '/0/members/1/attributes')).toBe(true);
    expect(allowedOn36('PUT', '/0/version')).toBe(true);
    expect(allowedOn36('POST', '/0/version')).toBe(false);
    expect(allowedOn36('DELETE', '/0/members/bdae9bbc11dd390d/attributes')).toBe(false);
    expect(allowedOn36('PUT', '/0/members/bdae9bbc11dd390d/raftAttributes')).toBe(false);
    expect(allowedOn36('PUT', '/0/members/bdae9bbc11dd390d0/attributes')).toBe(false);
    expect(allowedOn36('PUT', '/1/0/version')).toBe(false);
    expect(allowedOn36('SYNC', '')).toBe(false);
    expect(allowedOn36('', '')).toBe(false);
  });
});

type Node = { Path: string; Value?: string; Children: Record<string, Node> | null };
const dir = (p: string, ...kids: Node[]): Node => ({
  Path: p,
  Children: Object.fromEntries(kids.map((k) => [k.Path.split('/').pop()!, k])),
});
const key = (p: string): Node => ({ Path: p, Value: 'secret', Children: null });
const store = (...top: Node[]) => {
  const root = dir('/', dir('/0', dir('/0/members'), key('/0/version')), ...top);
  return Buffer.from(JSON.stringify({ Root: root, CurrentIndex: 9 }));
};

describe("customSnapshotPaths (3.6's IsMetaStoreOnly)", () => {
  it('none in a store of /0 with an empty /1 and an empty v2 auth tree', () => {
    expect(customSnapshotPaths(store())).toEqual([]);
    const auth = dir('/2', key('/2/enabled'), dir('/2/users'), dir('/2/roles'));
    expect(customSnapshotPaths(store(dir('/1'), auth))).toEqual([]);
  });

  it('the keys and empty dirs under /1, sorted, never values', () => {
    const s = store(dir('/1', dir('/1/b', key('/1/b/z'), key('/1/b/a')), dir('/1/empty'), key('/1/a')));
    expect(customSnapshotPaths(s)).toEqual(['/1/a', '/1/b/a', '/1/b/z', '/1/empty']);
    expect(customSnapshotPaths(s).join()).not.toMatch(/secret/);
  });

  it('v2 auth with a user or role', () => {
    const auth = dir('/2', key('/2/enabled'), dir('/2/users', key('/2/users/root')), dir('/2/roles'));
    expect(customSnapshotPaths(store(auth))).toEqual(['/2/users/root']);
  });

  it("hidden nodes do not count, as etcd's Get does not list them", () => {
    expect(customSnapshotPaths(store(dir('/1', key('/1/_hidden'))))).toEqual([]);
    expect(customSnapshotPaths(store(dir('/_x', key('/_x/a'))))).toEqual([]);
    expect(customSnapshotPaths(store(dir('/1', dir('/1/d', key('/1/d/_h')))))).toEqual(['/1/d']);
  });

  it("any other top-level dir with children counts; a top-level key does not (3.6's rule)", () => {
    expect(customSnapshotPaths(store(dir('/3', key('/3/k'))))).toEqual(['/3/k']);
    expect(customSnapshotPaths(store(key('/k')))).toEqual([]);
  });

  it('refuses JSON without a root', () => {
    expect(() => customSnapshotPaths(Buffer.from('{}'))).toThrow(/root/);
  });
});

describe('readV2Content on a member dir built here', () => {
  const hex16 = (n: number) => n.toString(16).padStart(16, '0');
  const snapFile = (index: number, term: number) =>
    encodeSnapFile({ store: store(), metadata: Buffer.concat([bf(1, ''), vf(2, index), vf(3, term)]) });

  /** Three WAL files (their first indexes 0, 4, 6), a custom v2 write before the snapshot at 5 and one after. */
  async function member(damageFirst: boolean): Promise<string> {
    const data = await tmpDir();
    const [wal, snap] = [path.join(data, 'member', 'wal'), path.join(data, 'member', 'snap')];
    await fs.mkdir(wal, { recursive: true });
    await fs.mkdir(snap, { recursive: true });
    const a = first().entry(1, 1).entry(2, 1, gogoRequest('PUT', '/1/before')).entry(3, 1);
    const b = a.next().entry(4, 1).entry(5, 1).snapshot(5, 1);
    const c = b.next().entry(6, 1, gogoRequest('PUT', '/1/after')).state(1, 6);
    const bytesA = a.bytes(0);
    if (damageFirst) bytesA[a.offsets.at(-1)! + 20]! ^= 0x01;
    const files: Array<[number, Buffer]> = [
      [0, bytesA],
      [4, b.bytes(0)],
      [6, c.bytes()],
    ];
    for (const [i, [start, bytes]] of files.entries())
      await fs.writeFile(path.join(wal, `${hex16(i)}-${hex16(start)}.wal`), bytes);
    await fs.writeFile(path.join(snap, `${hex16(1)}-${hex16(5)}.snap`), snapFile(5, 1));
    return data;
  }

  it('reads the WAL from the file that holds the newest snapshot on: files before it are not read', async () => {
    const c = await readV2Content(await member(true));
    expect(c.snapshot).toMatchObject({ index: 5, term: 1 });
    expect(c.walRequests.map((r) => r.path)).toEqual(['/1/after']);
    expect(c.v2EntriesAfterSnapshot).toBe(1);
  });

  it('reads the whole WAL when the newest .snap file is not one etcd would start from', async () => {
    const data = await member(false);
    // A newer .snap that no WAL record names: etcd starts from the one at 5, found only in the earlier files.
    await fs.writeFile(path.join(data, 'member', 'snap', `${hex16(1)}-${hex16(7)}.snap`), snapFile(7, 1));
    const c = await readV2Content(data);
    expect(c.snapshot).toMatchObject({ file: `${hex16(1)}-${hex16(5)}.snap`, index: 5 });
    expect(c.walRequests.map((r) => r.path)).toEqual(['/1/after']);
  });
});
