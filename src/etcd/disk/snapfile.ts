// etcd's snapshot files (member/snap/*.snap), for one use: the v2-to-v3 step writes the cluster
// version into the v2 store that `snapshot restore` made. A restored member has none, and etcd 3.3
// decides it only when its leader checks the members' versions: at once when it wins the election,
// unless that signal comes before its checking goroutine waits for it (etcd 3.3 then drops it), else
// 4 s later. Until then its v3 API answers "not capable" (how often: BENCHMARKS.md). With the
// version in the store (as etcd would have decided it, `<minor>.0`), etcd starts with it.
//
// The format: a snappb.Snapshot (crc = 1: CRC-32C of data; data = 2), whose data is a
// raftpb.Snapshot (data = 1: the v2 store as JSON; metadata = 2).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../fsx.ts';
import { fields, ProtoWriter, type Field } from '../client/proto.ts';
import { parseJson } from '../client/json.ts';

/** Eight tables for "slicing by 8": a WAL of 500 MB is checked 8 bytes a step (BENCHMARKS.md). */
const TABLES = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k]![n] = (t[0]![t[k - 1]![n]! & 0xff]! ^ (t[k - 1]![n]! >>> 8)) >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as Go's crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b). */
export const crc32c = (b: Uint8Array): number => crc32cUpdate(0, b);

/**
 * CRC-32C continued from `crc` over `b` (Go's crc32.Update): for a file read in chunks, and the WAL's chained
 * records.
 */
export function crc32cUpdate(crc: number, b: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = (crc ^ 0xffffffff) >>> 0;
  let i = 0;
  for (const end = b.length - 8; i <= end; i += 8) {
    const lo = (c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[b[i + 4]!]! ^
      t2[b[i + 5]!]! ^
      t1[b[i + 6]!]! ^
      t0[b[i + 7]!]!;
  }
  for (; i < b.length; i++) c = t0[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface SnapFile {
  /** The v2 store, as etcd's JSON. */
  store: Buffer;
  /** raftpb.SnapshotMetadata, as it was. */
  metadata: Buffer;
}

/** Reads a snapshot file's bytes; throws on anything but exactly its fields, with a matching CRC. */
export function decodeSnapFile(buf: Buffer): SnapFile {
  const outer = message(buf, 'snapshot file', { 1: 'int', 2: 'bytes' });
  const crc = outer.get(1)?.int;
  const data = outer.get(2)?.bytes;
  if (crc === undefined || !data) throw new Error('a snapshot file without its crc or data');
  if (crc32c(data) !== crc) throw new Error('a snapshot file whose crc does not match its data');
  const inner = message(data, 'raft snapshot', { 1: 'bytes', 2: 'bytes' });
  const store = inner.get(1)?.bytes;
  const metadata = inner.get(2)?.bytes;
  if (!store || !metadata) throw new Error('a raft snapshot without its data or metadata');
  return { store, metadata };
}

export function encodeSnapFile(f: SnapFile): Buffer {
  const data = new ProtoWriter().bytes(1, f.store).bytes(2, f.metadata).finish();
  // Both snappb fields are always written (gogoproto non-nullable): the crc too when it is 0, which
  // `int` (proto3) would leave out.
  const crc = crc32c(data);
  const out = new ProtoWriter();
  return (crc ? out.int(1, crc) : out.raw(Buffer.from([0x08, 0x00]))).bytes(2, data).finish();
}

/**
 * The v2 store with /0/version set to `version`, or undefined when it has no /0 (not a store that
 * `snapshot restore` made) or already holds a version.
 */
export function withClusterVersion(store: Buffer, version: string): Buffer | undefined {
  const text = store.toString('utf8');
  const s = parseJson<{ Root?: StoreNode; CurrentIndex?: number }>(text, 'the v2 store of a snapshot file');
  const internal = s.Root?.Children?.['0'];
  if (!internal?.Children || internal.Children.version) return undefined;
  const index = s.CurrentIndex ?? 0;
  internal.Children.version = {
    Path: '/0/version',
    CreatedIndex: index,
    ModifiedIndex: index,
    ExpireTime: '0001-01-01T00:00:00Z',
    Value: version,
    Children: null,
  };
  return Buffer.from(JSON.stringify(s));
}

interface StoreNode {
  Path: string;
  CreatedIndex: number;
  ModifiedIndex: number;
  ExpireTime: string;
  Value: string;
  Children: Record<string, StoreNode> | null;
}

/**
 * Writes `version` as the cluster version into the one snapshot file in `snapDir` (what `snapshot
 * restore` leaves), atomically, and reads it back; false (nothing written) when the store cannot
 * take it (then etcd decides the version as it starts).
 */
export async function seedClusterVersion(snapDir: string, version: string): Promise<boolean> {
  const snaps = (await fs.readdir(snapDir)).filter((n) => n.endsWith('.snap'));
  if (snaps.length !== 1) return false;
  const file = path.join(snapDir, snaps[0]!);
  const before = decodeSnapFile(await fs.readFile(file));
  const store = withClusterVersion(before.store, version);
  if (!store) return false;
  const bytes = encodeSnapFile({ store, metadata: before.metadata });
  const back = decodeSnapFile(bytes);
  if (!back.store.equals(store) || !back.metadata.equals(before.metadata))
    throw new Error(`the snapshot file ${file} would not read back as written`);
  await writeFileAtomic(file, bytes, (await fs.stat(file)).mode & 0o777);
  return true;
}

/** A message's fields by number: each at most once, of the kind expected, no other. */
function message(buf: Buffer, what: string, expected: Record<number, 'int' | 'bytes'>): Map<number, Field> {
  const out = new Map<number, Field>();
  for (const f of fields(buf)) {
    const kind = expected[f.n];
    if (!kind || out.has(f.n) || (kind === 'bytes') !== (f.bytes !== undefined))
      throw new Error(`a ${what} with an unexpected field ${f.n}`);
    out.set(f.n, f);
  }
  return out;
}
