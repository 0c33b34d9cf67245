// src/etcd/disk/wal.ts on WAL files built here byte by byte: frames and padding, the crc chain across
// files, entries replaced by later ones, a torn tail (stop) against damage before it (throw).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { entriesAfter, readWal, validSnapshots, WalError } from '../../../../src/etcd/disk/wal.ts';
import { tmpDir } from '../../../helpers/tmp.ts';
import { first, WalWriter } from '../../../helpers/walfile.ts';

const hex16 = (n: number) => n.toString(16).padStart(16, '0');
const name = (seq: number, index: number) => `${hex16(seq)}-${hex16(index)}.wal`;

async function walDir(files: Buffer[]): Promise<string> {
  const dir = await tmpDir();
  for (let i = 0; i < files.length; i++) await fs.writeFile(path.join(dir, name(i, i * 10)), files[i]!);
  return dir;
}

describe('readWal', () => {
  it('reads the records up to the preallocated zeros', async () => {
    const w = first().entry(1, 1, 'a').entry(2, 1, 'bb').state(1, 2).snapshot(2, 1).entry(3, 2, 'ccc').state(2, 3);
    const log = await readWal(await walDir([w.bytes()]));
    expect(log.entries.map((e) => [e.index, e.term, e.data.toString()])).toEqual([
      [1, 1, 'a'],
      [2, 1, 'bb'],
      [3, 2, 'ccc'],
    ]);
    expect(log.snapshots).toEqual([
      { index: 0, term: 0 },
      { index: 2, term: 1 },
    ]);
    expect(log.hardState).toEqual({ term: 2, commit: 3 });
    expect(log.torn).toBeUndefined();
    expect(entriesAfter(log, 2).map((e) => e.index)).toEqual([3]);
    expect(entriesAfter(log, 3)).toEqual([]);
  });

  it('a later entry at an index replaces it and every entry after it', async () => {
    const w = first().entry(1, 1).entry(2, 1).entry(3, 1).entry(4, 1).entry(3, 2, 'new');
    const log = await readWal(await walDir([w.bytes()]));
    expect(log.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 2],
    ]);
  });

  it('follows the crc chain across files, and refuses a file whose crc record breaks it', async () => {
    const a = first().entry(1, 1).entry(2, 1);
    const b = a.next().entry(3, 1).state(1, 3);
    const log = await readWal(await walDir([a.bytes(0), b.bytes()]));
    expect(log.entries.map((e) => e.index)).toEqual([1, 2, 3]);

    const broken = new WalWriter().crcRecord(a.crc ^ 1).entry(3, 1);
    const err = await readWal(await walDir([a.bytes(0), broken.bytes()])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalError);
    expect(err).toMatchObject({ file: name(1, 10), offset: 0 });
  });

  it('a torn last record (a sector of it all zeros) ends the log without an error', async () => {
    const w = first().entry(1, 1, 'a').entry(2, 1, 'x'.repeat(2000));
    const bytes = w.bytes();
    const at = w.offsets.at(-1)!;
    const sector = Math.ceil((at + 108) / 512) * 512; // a whole disk sector inside the record, never written
    bytes.fill(0, sector, sector + 512);
    const log = await readWal(await walDir([bytes]));
    expect(log.entries.map((e) => e.index)).toEqual([1]);
    expect(log.torn).toEqual({ file: name(0, 0), offset: at });
  });

  it('a last record cut off by the end of the file ends the log too', async () => {
    const w = first().entry(1, 1, 'a').entry(2, 1, 'bbbbbbbb');
    const bytes = w.bytes(0);
    const log = await readWal(await walDir([bytes.subarray(0, bytes.length - 5)]));
    expect(log.entries.map((e) => e.index)).toEqual([1]);
    expect(log.torn).toEqual({ file: name(0, 0), offset: w.offsets.at(-1) });
  });

  it('damage with no zero sector, or in a file before the last, is an error naming the file and offset', async () => {
    const w = first().entry(1, 1, 'a').entry(2, 1, 'bbbb').entry(3, 1, 'c');
    const bytes = w.bytes();
    const at = w.offsets[4]!; // entry 2
    bytes[at + 8 + 12]! ^= 0x01; // a byte of its data: the crc no longer matches
    const err = await readWal(await walDir([bytes])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalError);
    expect(err).toMatchObject({ file: name(0, 0), offset: at });
    expect((err as Error).message).toMatch(/crc mismatch/);

    const a = first().entry(1, 1, 'a').entry(2, 1, 'bbbbbbbb');
    const cut = a.bytes(0);
    const files = [cut.subarray(0, cut.length - 5), a.next().entry(3, 1).bytes()];
    const err2 = await readWal(await walDir(files)).catch((e: unknown) => e);
    expect(err2).toMatchObject({ file: name(0, 0), offset: a.offsets.at(-1) });
  });

  it('an unknown record type is an error', async () => {
    const w = first().entry(1, 1).data(9, Buffer.from('?'));
    await expect(readWal(await walDir([w.bytes()]))).rejects.toThrow(/unexpected record type 9/);
  });

  it('a gap in the log after the snapshot is an error; one before it is not', async () => {
    const w = first().entry(1, 1).entry(2, 1).entry(5, 1).entry(6, 1);
    const log = await readWal(await walDir([w.bytes()]));
    expect(() => entriesAfter(log, 2)).toThrow(WalError);
    expect(entriesAfter(log, 4).map((e) => e.index)).toEqual([5, 6]);
  });

  it('snapshot records beyond the committed index are not valid starts', async () => {
    const w = first().entry(1, 1).entry(2, 1).snapshot(1, 1).snapshot(2, 1).state(1, 1);
    const log = await readWal(await walDir([w.bytes()]));
    expect(validSnapshots(log)).toEqual([
      { index: 0, term: 0 },
      { index: 1, term: 1 },
    ]);
  });

  it('from an index, reads the file that holds it and those after, as etcd opens the WAL', async () => {
    // Files start at indexes 0, 10 and 20 (walDir's names); the first is damaged where nothing reads it then.
    const a = first().entry(1, 1).entry(9, 1, 'x'.repeat(8));
    const b = a.next().entry(10, 1).entry(11, 1).snapshot(11, 1);
    const c = b.next().entry(12, 1).state(1, 12);
    const damaged = a.bytes(0);
    damaged[a.offsets.at(-1)! + 30]! ^= 0x01;
    const dir = await walDir([damaged, b.bytes(0), c.bytes()]);
    const log = await readWal(dir, undefined, 15);
    expect(log.files).toEqual([name(1, 10), name(2, 20)]);
    expect(log.entries.map((e) => e.index)).toEqual([10, 11, 12]);
    expect(validSnapshots(log)).toEqual([{ index: 11, term: 1 }]);
    expect((await readWal(dir, undefined, 20)).files).toEqual([name(2, 20)]);
    // Below the first file's index, or without one, every file is read, and the damage is found.
    await expect(readWal(dir)).rejects.toThrow(/crc mismatch/);
    expect(await readWal(dir, undefined, 0).catch((e: unknown) => e)).toBeInstanceOf(WalError);
    const x = first().entry(1, 1);
    const later = await walDir([x.bytes(0), x.next().entry(2, 1).bytes()]);
    await fs.rename(path.join(later, name(0, 0)), path.join(later, name(0, 5)));
    await fs.rename(path.join(later, name(1, 10)), path.join(later, name(1, 15)));
    expect((await readWal(later, undefined, 3)).files).toEqual([name(0, 5), name(1, 15)]);
  });

  it('a missing WAL file in the sequence is an error; no WAL at all is an empty log', async () => {
    const a = first().entry(1, 1);
    const dir = await walDir([a.bytes(0), a.next().entry(2, 1).bytes()]);
    expect((await readWal(dir)).entries).toHaveLength(2);
    await fs.rename(path.join(dir, name(1, 10)), path.join(dir, name(2, 10)));
    await expect(readWal(dir)).rejects.toThrow(/sequence number does not follow/);
    const none = await readWal(path.join(await tmpDir(), 'absent'));
    expect(none).toMatchObject({ files: [], entries: [], snapshots: [] });
  });
});
