// The archive file: exact bytes and modes back; a damaged, truncated or hostile file is refused
// and never writes outside the target.
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { archiveBytes, readArchive } from '../../../src/backup/archive.ts';
import { IntegrityError, keyFromFileBytes } from '../../../src/backup/crypt.ts';
import { readArchiveFile, sniff, writeArchiveFile } from '../../../src/backup/file.ts';
import { treeSnapshot } from '../../helpers/cli.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const HEADER = { dataVersion: '3.5.30/etcd3', created: '2026-01-01T00:00:00.000Z', source: '/x' };

/** A member-like tree: a big zero-filled "WAL", a random "db", a 0644 file, nested dirs. */
async function memberTree(root: string): Promise<void> {
  await fs.mkdir(path.join(root, 'member/snap'), { recursive: true, mode: 0o700 });
  await fs.mkdir(path.join(root, 'member/wal'), { mode: 0o700 });
  await fs.writeFile(path.join(root, 'member/snap/db'), crypto.randomBytes(3_000_001), { mode: 0o600 });
  await fs.writeFile(path.join(root, 'member/snap/0000000000000001-0000000000000001.snap'), 'raft snapshot', {
    mode: 0o644,
  });
  await fs.writeFile(path.join(root, 'member/wal/0000000000000000-0000000000000000.wal'), Buffer.alloc(8_000_000), {
    mode: 0o600,
  });
  await fs.writeFile(path.join(root, 'member/wal/empty'), '', { mode: 0o600 });
  await fs.chmod(path.join(root, 'member/snap/0000000000000001-0000000000000001.snap'), 0o644);
}

/** The archive of `<root>/member`, all its bytes. */
async function archiveOf(root: string, codec: 'none' | 'zstd', header = HEADER): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of archiveBytes(root, header, { header, entries: [], bytes: 0 }, codec))
    parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

async function refused(p: Promise<unknown>): Promise<IntegrityError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(IntegrityError);
  return e as IntegrityError;
}

const FIXTURES = path.join(import.meta.dirname, '../../fixtures/backup-v1');
const V1 = 'fixture-20261203T200000000Z-3.5.30-etcd3.backup';

/** Every combination a backup is written with. */
const KINDS = [
  ['plain', undefined, 'none'],
  ['plain, zstd', undefined, 'zstd'],
  ['encrypted', crypto.randomBytes(32), 'none'],
  ['encrypted, zstd', crypto.randomBytes(32), 'zstd'],
] as const;

describe('backup archive', () => {
  it.each(KINDS)('%s: round-trips the member tree exactly; zeros take no room', async (_name, key, codec) => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await memberTree(src);
    const file = path.join(dir, 'b.backup');
    const written = await writeArchiveFile(src, file, HEADER, key, true, codec);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    // The 8 MB zero "WAL" costs a byte a block; the random db cannot be compressed.
    expect((await fs.stat(file)).size).toBeLessThan(3_000_001 + 10_000);
    expect(await sniff(file)).toBe(key ? 'encrypted' : 'archive');

    const verified = await readArchiveFile(file, key);
    expect(verified.entries).toEqual(written.entries);
    expect(verified.header).toEqual(HEADER);

    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    await readArchiveFile(file, key, out);
    expect(await treeSnapshot(path.join(out, 'member'))).toEqual(await treeSnapshot(path.join(src, 'member')));
  });

  it.each(['none', 'zstd'] as const)(
    '%s: a large file goes through the hashing thread, there and back, and damage is still found',
    async (codec) => {
      const dir = await tmpDir();
      const src = path.join(dir, 'src');
      await memberTree(src);
      // 48 MiB that neither zeros nor zstd make small: past the 32 blocks hashed in place.
      const big = Buffer.concat(
        Array.from({ length: 48 }, () => Buffer.from(crypto.randomBytes(768 << 10).toString('base64'))),
      );
      await fs.writeFile(path.join(src, 'member/snap/db'), big);
      const file = path.join(dir, 'b');
      const written = await writeArchiveFile(src, file, HEADER, undefined, true, codec);
      expect(written.entries.find((e) => e.path === 'member/snap/db')!.size).toBe(big.length);
      const out = path.join(dir, 'out');
      await fs.mkdir(out);
      expect((await readArchiveFile(file, undefined, out)).entries).toEqual(written.entries);
      expect((await fs.readFile(path.join(out, 'member/snap/db'))).equals(big)).toBe(true);
      const bad = await fs.readFile(file);
      bad[bad.length - 5_000_000]! ^= 0x04; // inside one of the last blocks: hashed on the thread
      await fs.writeFile(file, bad);
      expect((await refused(readArchiveFile(file, undefined))).message).toMatch(
        /does not match its sha256|cannot be decompressed/,
      );
    },
  );

  it('reports every byte it reads and every byte it checks, for the progress of a large backup', async () => {
    const dir = await tmpDir();
    await memberTree(path.join(dir, 'src'));
    let written = 0;
    let checked = 0;
    const m = await writeArchiveFile(
      path.join(dir, 'src'),
      path.join(dir, 'b'),
      HEADER,
      undefined,
      true,
      'none',
      (n) => {
        written += n;
      },
    );
    await readArchiveFile(path.join(dir, 'b'), undefined, undefined, (n) => {
      checked += n;
    });
    expect(m.bytes).toBe(3_000_001 + 13 + 8_000_000);
    expect([written, checked]).toEqual([m.bytes, m.bytes]);
  });

  it('compresses blocks that zstd makes smaller, and the digests do not depend on the codec', async () => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await memberTree(src);
    await fs.writeFile(path.join(src, 'member/snap/db'), Buffer.from('etcd '.repeat(1_000_000)));
    const none = await writeArchiveFile(src, path.join(dir, 'none'), HEADER, undefined, true, 'none');
    const zstd = await writeArchiveFile(src, path.join(dir, 'zstd'), HEADER, undefined, true, 'zstd');
    expect((await fs.stat(path.join(dir, 'none'))).size).toBeGreaterThan(5_000_000);
    expect((await fs.stat(path.join(dir, 'zstd'))).size).toBeLessThan(100_000);
    expect(zstd.entries).toEqual(none.entries);
    expect((await readArchiveFile(path.join(dir, 'zstd'), undefined)).entries).toEqual(none.entries);
  });

  it.each(KINDS)('%s: refuses a changed byte anywhere and a truncated file', async (_name, key, codec) => {
    const dir = await tmpDir();
    await memberTree(path.join(dir, 'src'));
    await fs.writeFile(path.join(dir, 'src/member/snap/db'), Buffer.from('etcd '.repeat(300_000)));
    const file = path.join(dir, 'b');
    await writeArchiveFile(path.join(dir, 'src'), file, HEADER, key, true, codec);
    const good = await fs.readFile(file);
    // Flips spread over the file: records, kind bytes, lengths, block bytes, digests.
    for (let k = 1; k < 40; k++) {
      const flipped = Buffer.from(good);
      flipped[Math.floor((good.length * k) / 40)]! ^= 0x10;
      await fs.writeFile(`${file}.flip`, flipped);
      await refused(readArchiveFile(`${file}.flip`, key));
    }
    for (const cut of [1, 33, 100, Math.floor(good.length / 2)]) {
      await fs.writeFile(`${file}.cut`, good.subarray(0, good.length - cut));
      await refused(readArchiveFile(`${file}.cut`, key));
    }
  });

  it('writes the test vector of docs/backups.md byte for byte, and reads it back', async () => {
    const root = await tmpDir();
    await fs.mkdir(path.join(root, 'member/wal'), { recursive: true });
    await fs.writeFile(path.join(root, 'member/db'), 'etcd');
    await fs.writeFile(path.join(root, 'member/wal/0.wal'), Buffer.alloc(8));
    for (const [p, mode] of [
      ['member', 0o700],
      ['member/wal', 0o700],
      ['member/db', 0o600],
      ['member/wal/0.wal', 0o600],
    ] as const) {
      await fs.chmod(path.join(root, p), mode);
    }
    const header = { dataVersion: '3.5.30/etcd3', created: '2026-12-03T00:00:00.000Z', source: '/var/etcd/data' };
    const archived = await archiveOf(root, 'none', header);
    const doc = await fs.readFile(path.join(import.meta.dirname, '../../../docs/backups.md'), 'utf8');
    const hex = /\*\*Test vector\*\* \(`test\/unit\/backup\/archive\.test\.ts`[\s\S]*?```\n([0-9a-f\n]+)```/
      .exec(doc)![1]!
      .replace(/\n/g, '');
    expect(archived.toString('hex')).toBe(hex);
    expect((await readArchive(Readable.from([Buffer.from(hex, 'hex')]))).bytes).toBe(12);
  });

  it('never writes outside the target, whatever the archive says', async () => {
    const dir = await tmpDir();
    const head = (v: number) => `etcd-migrate archive ${v}\n${JSON.stringify({ ...HEADER, block: 1 << 20 })}\n`;
    const hostile = (v: number, p: string) =>
      Readable.from([Buffer.from(head(v) + JSON.stringify({ t: 'f', p, m: 420, n: 1 }) + '\nx')]);
    for (const v of [1, 2]) {
      for (const p of ['../evil', 'member/../../evil', '/etc/evil', 'other/x', 'member/./x']) {
        await refused(readArchive(hostile(v, p), dir));
      }
    }
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('refuses bytes after the end record, a record that is not JSON, a block size out of range', async () => {
    const dir = await tmpDir();
    await memberTree(path.join(dir, 'src'));
    const file = path.join(dir, 'b');
    await writeArchiveFile(path.join(dir, 'src'), file, HEADER, undefined);
    const raw = await fs.readFile(file);
    expect(raw.subarray(0, 23).toString()).toBe('etcd-migrate archive 2\n');
    await refused(readArchive(Readable.from([Buffer.concat([raw, Buffer.from('x')])])));
    await refused(readArchive(Readable.from([Buffer.from('etcd-migrate archive 2\n{not json}\n')])));
    for (const block of [0, 1.5, 17 << 20, '1']) {
      await refused(
        readArchive(Readable.from([Buffer.from(`etcd-migrate archive 2\n${JSON.stringify({ ...HEADER, block })}\n`)])),
      );
    }
    expect((await readArchive(Readable.from([raw]))).header).toEqual(HEADER);
  });

  it('reads version 1 backups (zstd around the archive), plain and encrypted, and refuses them damaged', async () => {
    const key = keyFromFileBytes(await fs.readFile(path.join(FIXTURES, 'key')), 'key');
    for (const [file, k] of [
      [V1, undefined],
      [`${V1}.enc`, key],
    ] as const) {
      const dir = await tmpDir();
      const m = await readArchiveFile(path.join(FIXTURES, file), k, dir);
      expect(m.header.dataVersion).toBe('3.5.30/etcd3');
      expect(m.entries.map((e) => e.path)).toEqual([
        'member',
        'member/snap',
        'member/snap/db',
        'member/wal',
        'member/wal/0000000000000000-0000000000000000.wal',
      ]);
      const db = await fs.readFile(path.join(dir, 'member/snap/db'));
      expect(m.entries[2]!.sha256).toBe(crypto.hash('sha256', db));
      expect(db.includes('/registry/fixture/leased')).toBe(true);
      const good = await fs.readFile(path.join(FIXTURES, file));
      const flipped = Buffer.from(good);
      flipped[good.length - 200]! ^= 0x10;
      await fs.writeFile(path.join(dir, 'flip'), flipped);
      await refused(readArchiveFile(path.join(dir, 'flip'), k));
    }
  });
});

describe("a backup's read-back, compared with the data dir it was written from", () => {
  /** A db whose first 2 MiB zstd makes smaller and whose next 2 MiB it cannot, and a zero "WAL". */
  async function tree(root: string): Promise<void> {
    await memberTree(root);
    const text = Buffer.from('etcd '.repeat(420_000)).subarray(0, 2 << 20);
    await fs.writeFile(path.join(root, 'member/snap/db'), Buffer.concat([text, crypto.randomBytes(2 << 20)]));
  }

  /** Flips one byte of a file in place. */
  async function flip(file: string, at: number): Promise<void> {
    const fh = await fs.open(file, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0x10;
    await fh.write(b, 0, 1, at);
    await fh.close();
  }

  // A compressed block (zstd) or a stored one (none); a stored block; a zero block.
  const PLACES = [
    ['member/snap/db', 1 << 19],
    ['member/snap/db', (3 << 20) + 7],
    ['member/wal/0000000000000000-0000000000000000.wal', 5_000_000],
  ] as const;

  it.each(['none', 'zstd'] as const)(
    '%s: refuses a block that differs from the data dir though it matches its sha256',
    async (codec) => {
      const dir = await tmpDir();
      const src = path.join(dir, 'src');
      await tree(src);
      const archive = await archiveOf(src, codec);
      if (codec === 'zstd') expect(archive.length).toBeLessThan(3 << 20);
      const m = await readArchive(Readable.from([archive]), undefined, undefined, src);
      expect(m.entries).toEqual((await readArchive(Readable.from([archive]))).entries);
      for (const [file, at] of PLACES) {
        await flip(path.join(src, file), at);
        // The archive is sound on its own: only the comparison sees that it is not the data dir's.
        await readArchive(Readable.from([archive]));
        const e = await refused(readArchive(Readable.from([archive]), undefined, undefined, src));
        expect(e.message).toContain(`differs from ${path.join(src, file)}`);
        await flip(path.join(src, file), at);
      }
    },
  );

  it.each(['none', 'zstd'] as const)('%s: refuses a changed byte anywhere, a sha256 included', async (codec) => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await tree(src);
    const good = await archiveOf(src, codec);
    // The first block's sha256 (after its kind byte and its bytes, or its length and frame): only
    // the file's digest and the end record cover it when the bytes are compared, not hashed.
    const first = good.indexOf('"p":"member/snap/db"');
    const start = good.indexOf(0x0a, first) + 1;
    const sha = codec === 'none' ? start + 1 + (1 << 20) : start + 5 + good.readUInt32BE(start + 1);
    const spread = Array.from({ length: 39 }, (_, k) => Math.floor((good.length * (k + 1)) / 40));
    for (const at of [sha, sha + 31, ...spread]) {
      const flipped = Buffer.from(good);
      flipped[at]! ^= 0x10;
      await refused(readArchive(Readable.from([flipped]), undefined, undefined, src));
    }
  });
});
