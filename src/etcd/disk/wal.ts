// etcd's write-ahead log (member/wal/*.wal), read offline the way etcd 3.5 reads it when it starts
// (server/wal/decoder.go and wal.go: ReadAll, ValidSnapshotEntries), so a check on a stopped member
// sees the raft log that etcd would replay.
//
// Format: files named <seq>-<index>.wal (16 hex digits each), read in name order. Each record is a
// little-endian uint64 frame (low 56 bits: length; top byte: bit 7 set when padded, low 3 bits the
// pad) then a walpb.Record {type = 1, crc = 2, data = 3}. The crc chains CRC-32C over every record's
// data; a crc record (the first of each file) carries the chain over from the file before.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32cUpdate } from './snapfile.ts';
import { bytesOf, num, ProtoFormatError, readMessage } from './pbmessage.ts';

const RECORD = { metadata: 1, entry: 2, state: 3, crc: 4, snapshot: 5 } as const;
const FRAME = 8;
const SECTOR = 512;
const BLOCK = 1 << 20;

/** A WAL etcd would refuse: damage before its tail, a broken crc chain, a gap in the log. */
export class WalError extends Error {
  override readonly name = 'WalError';
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(`WAL file ${file} at offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
  }
}

/** An entry as the reader keeps it: `data` is what the caller's `keep` made of its bytes. */
export interface WalEntry<T = Buffer> {
  index: number;
  term: number;
  /** raftpb.EntryType: 0 normal, 1 conf change, 2 conf change v2. */
  type: number;
  data: T;
}

/** What the reader keeps of an entry's bytes (type: raftpb.EntryType). */
export type Keep<T> = (data: Buffer, type: number) => T;

export interface WalSnapshot {
  index: number;
  term: number;
}

export interface WalLog<T = Buffer> {
  files: string[];
  /** The last raft HardState record (its vote, a member ID that a number cannot hold exactly, left out). */
  hardState: { term: number; commit: number };
  /** Every snapshot record, in WAL order. */
  snapshots: WalSnapshot[];
  /** The log: contiguous indexes, a later entry replacing the one at its index and all after it. */
  entries: Array<WalEntry<T>>;
  /** Where a torn record ended the last file (normal after a crash): etcd cuts it off there. */
  torn?: { file: string; offset: number };
  /** The record whose entry did not follow the one before it (a gap), the log kept from there. */
  restart?: { file: string; offset: number };
}

/**
 * Reads every WAL file in `walDir`; an empty log when there is none (as etcdutl does). Each entry
 * keeps what `keep` makes of its bytes, so memory stays small however large the WAL; by default a
 * copy of them. With `from`, only the files that etcd opens to replay after a snapshot at that index
 * (wal.Open: the last file whose first index is at most `from`, and every later one); all of them
 * when none is.
 */
export async function readWal<T = Buffer>(walDir: string, keep?: Keep<T>, from?: number): Promise<WalLog<T>> {
  const all = await walFiles(walDir);
  const files = from === undefined ? all : all.slice(Math.max(0, searchIndex(all, from)));
  const state = new LogState<T>(files, keep ?? ((d: Buffer) => Buffer.from(d) as T));
  for (let i = 0; i < files.length; i++) {
    const torn = await readFile(path.join(walDir, files[i]!), files[i]!, i === files.length - 1, state);
    if (torn !== undefined) state.log.torn = { file: files[i]!, offset: torn };
  }
  return state.log;
}

/** Snapshot records etcd may start from: those the committed HardState covers (ValidSnapshotEntries). */
export function validSnapshots(log: WalLog<unknown>): WalSnapshot[] {
  return log.snapshots.filter((s) => s.index <= log.hardState.commit);
}

/** The entries etcd replays after a snapshot at `index`; throws where the log has a gap after it. */
export function entriesAfter<T>(log: WalLog<T>, index: number): Array<WalEntry<T>> {
  const first = log.entries[0];
  if (!first) return [];
  if (first.index > index + 1) {
    const at = log.restart ?? { file: log.files[0] ?? '', offset: 0 };
    const why = `the log holds no entry ${index + 1} (after the snapshot at ${index}): it starts at ${first.index}`;
    throw new WalError(at.file, at.offset, why);
  }
  return log.entries.slice(index + 1 - first.index);
}

/** etcd's searchIndex: the last file whose first index (the name's second part) is at most `index`, or -1. */
function searchIndex(names: readonly string[], index: number): number {
  for (let i = names.length - 1; i >= 0; i--) if (parseInt(names[i]!.slice(17, 33), 16) <= index) return i;
  return -1;
}

/** WAL file names in order, checked for a contiguous sequence (etcd refuses a missing file). */
async function walFiles(walDir: string): Promise<string[]> {
  const names = await fs.readdir(walDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  const wal = names.filter((n) => /^[0-9a-fA-F]{16}-[0-9a-fA-F]{16}\.wal$/.test(n)).sort();
  wal.forEach((n, i) => {
    if (i > 0 && parseInt(n.slice(0, 16), 16) !== parseInt(wal[i - 1]!.slice(0, 16), 16) + 1) {
      throw new WalError(n, 0, `its sequence number does not follow ${wal[i - 1]}`);
    }
  });
  return wal;
}

/** What the records build up across files: the crc chain and the log. */
class LogState<T> {
  crc = 0;
  metadata: Buffer | undefined;
  where = { file: '', offset: 0 };
  readonly log: WalLog<T>;
  readonly keep: Keep<T>;
  constructor(files: string[], keep: Keep<T>) {
    this.keep = keep;
    this.log = { files, hardState: { term: 0, commit: 0 }, snapshots: [], entries: [] };
  }

  addEntry(e: WalEntry<T>): void {
    const ents = this.log.entries;
    const pos = ents.length ? e.index - ents[0]!.index : 0;
    // A gap or a rewrite from before the first index kept starts the log again at this entry;
    // entriesAfter reports a gap that lies after the snapshot etcd starts from.
    if (pos < 0 || pos > ents.length) {
      ents.length = 0;
      this.log.restart = { ...this.where };
    } else ents.length = pos;
    ents.push(e);
  }
}

/** Reads a file forward in blocks; the views it returns stay valid (a block is never reused). */
class FileReader {
  private buf = Buffer.alloc(0);
  private bufOff = 0;
  readonly size: number;
  private readonly fh: fs.FileHandle;
  constructor(fh: fs.FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }

  async view(off: number, n: number): Promise<Buffer> {
    if (off < this.bufOff || off + n > this.bufOff + this.buf.length) {
      const len = Math.min(Math.max(n, BLOCK), this.size - off);
      const b = Buffer.allocUnsafe(len);
      const { bytesRead } = await this.fh.read(b, 0, len, off);
      if (bytesRead !== len) throw new Error(`short read at offset ${off}`);
      this.buf = b;
      this.bufOff = off;
    }
    return this.buf.subarray(off - this.bufOff, off - this.bufOff + n);
  }
}

/** Reads one file's records into `state`; returns the offset of a torn tail record, if any. */
async function readFile(
  file: string,
  name: string,
  last: boolean,
  state: LogState<unknown>,
): Promise<number | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    const r = new FileReader(fh, (await fh.stat()).size);
    let off = 0;
    while (off < r.size) {
      const bad = (reason: string): number => {
        if (last) return off;
        throw new WalError(name, off, reason);
      };
      if (off + FRAME > r.size) return bad('a record frame is cut off by the end of the file');
      const frame = await r.view(off, FRAME);
      const lo = frame.readUInt32LE(0);
      const hi = frame.readUInt32LE(4);
      // A zero frame is the preallocated space after the last record.
      if (lo === 0 && hi === 0) return undefined;
      const recBytes = lo + (hi & 0xffffff) * 2 ** 32;
      const padBytes = hi & 0x80000000 ? (hi >>> 24) & 0x7 : 0;
      if (off + FRAME + recBytes + padBytes > r.size) return bad('a record runs past the end of the file');
      const data = await r.view(off + FRAME, recBytes + padBytes);
      state.where = { file: name, offset: off };
      let problem: string | undefined;
      try {
        problem = applyRecord(data.subarray(0, recBytes), state);
      } catch (e) {
        if (e instanceof ProtoFormatError) throw new WalError(name, off, e.message);
        throw e;
      }
      if (problem) {
        if (last && tornWrite(data, off + FRAME)) return off;
        throw new WalError(name, off, problem);
      }
      off += FRAME + recBytes + padBytes;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * etcd's isTornEntry: a record that fails its checks is the unfinished last write when one of the
 * disk sectors it spans is all zeros (that sector never reached the disk).
 */
function tornWrite(data: Buffer, fileOff: number): boolean {
  let cur = 0;
  while (cur < data.length) {
    const len = Math.min(SECTOR - (fileOff % SECTOR), data.length - cur);
    if (data.subarray(cur, cur + len).every((b) => b === 0)) return true;
    fileOff += len;
    cur += len;
  }
  return false;
}

/**
 * Decodes a record, checks its crc and adds it to `state`. Returns why the record is unreadable
 * (a torn write when at the tail), and throws where etcd refuses an intact record.
 */
function applyRecord(bytes: Buffer, state: LogState<unknown>): string | undefined {
  let rec;
  try {
    rec = readMessage(bytes, { 1: 'varint', 2: 'varint', 3: 'bytes' });
  } catch (e) {
    if (e instanceof ProtoFormatError) return `not a WAL record (${e.message})`;
    throw e;
  }
  const type = num(rec, 1);
  const crc = num(rec, 2);
  const data = bytesOf(rec, 3) ?? Buffer.alloc(0);
  if (type === RECORD.crc) {
    if (state.crc !== 0 && crc !== state.crc) {
      throw new ProtoFormatError('a crc record that does not match the chain before it');
    }
    state.crc = crc;
    return undefined;
  }
  const next = crc32cUpdate(state.crc, data);
  if (crc !== next) return 'crc mismatch';
  state.crc = next;
  addRecord(type, data, state);
  return undefined;
}

function addRecord(type: number, data: Buffer, state: LogState<unknown>): void {
  const log = state.log;
  if (type === RECORD.entry) {
    const e = readMessage(data, { 1: 'varint', 2: 'varint', 3: 'varint', 4: 'bytes' });
    const entryType = num(e, 1);
    const kept = state.keep(bytesOf(e, 4) ?? Buffer.alloc(0), entryType);
    state.addEntry({ type: entryType, term: num(e, 2), index: num(e, 3), data: kept });
  } else if (type === RECORD.state) {
    const s = readMessage(data, { 1: 'varint', 2: 'varint', 3: 'varint' });
    log.hardState = { term: num(s, 1), commit: num(s, 3) };
  } else if (type === RECORD.snapshot) {
    const s = readMessage(data, { 1: 'varint', 2: 'varint', 3: 'bytes' });
    log.snapshots.push({ index: num(s, 1), term: num(s, 2) });
  } else if (type === RECORD.metadata) {
    if (state.metadata && !state.metadata.equals(data)) throw new ProtoFormatError('two metadata records that differ');
    state.metadata ??= Buffer.from(data);
  } else {
    throw new ProtoFormatError(`unexpected record type ${type}`);
  }
}

/** The raft index of the WAL's last entry (0 when it has none). */
export async function lastWalIndex(walDir: string): Promise<number> {
  return (await readWal(walDir, () => undefined)).entries.reduce((max, e) => Math.max(max, e.index), 0);
}
