// etcd's write-ahead log (member/wal/*.wal), for one figure: the raft index of its last entry. The
// v2 store's snapshot (etcd/v2save.ts) asks etcd for exactly one snapshot, after it has applied
// that entry: etcd snapshots whenever it has applied more than --snapshot-count entries since its
// last, and with a smaller count it snapshots the whole store again every few hundred entries as
// it replays its WAL.
//
// The format (etcd's wal/encoder.go): records one after another, each an 8-byte little-endian
// frame (the low 56 bits its length; the top bit set when padding follows, then bits 56-58 its
// size) and a walpb.Record (type = 1, crc = 2, data = 3); an entry record (type 2) holds a
// raftpb.Entry (term = 2, index = 3). A frame of 0 is preallocated space: the end.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fields } from './proto.ts';

const ENTRY_TYPE = 2;

/** The highest raft index of an entry in the WAL files of `walDir` (0 when none). */
export async function lastWalIndex(walDir: string): Promise<number> {
  let last = 0;
  const names = (await fs.readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
  for (const name of names) last = Math.max(last, lastIndexIn(await fs.readFile(path.join(walDir, name))));
  return last;
}

/** The same for one file; a torn record at its end ends it. */
export function lastIndexIn(buf: Buffer): number {
  let last = 0;
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const frame = buf.readBigUInt64LE(pos);
    if (frame === 0n) break;
    const len = Number(frame & 0x00ff_ffff_ffff_ffffn);
    const pad = frame >> 63n ? Number((frame >> 56n) & 7n) : 0;
    if (pos + 8 + len > buf.length) break;
    const index = entryIndex(buf.subarray(pos + 8, pos + 8 + len));
    if (index !== undefined) last = Math.max(last, index);
    pos += 8 + len + pad;
  }
  return last;
}

function entryIndex(record: Buffer): number | undefined {
  let type = 0;
  let data: Buffer | undefined;
  for (const f of fields(record)) {
    if (f.n === 1) type = f.int;
    else if (f.n === 3) data = f.bytes;
  }
  if (type !== ENTRY_TYPE || !data) return undefined;
  for (const f of fields(data)) if (f.n === 3 && f.bytes === undefined) return f.int;
  return 0;
}
