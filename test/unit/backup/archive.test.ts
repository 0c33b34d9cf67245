// The archive file: exact bytes and modes back; a damaged, truncated or hostile file is refused
// and never writes outside the target.
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readArchive } from '../../../src/backup/archive.ts';
import { IntegrityError } from '../../../src/backup/crypt.ts';
import { readArchiveFile, sniff, writeArchiveFile } from '../../../src/backup/file.ts';
import { treeSnapshot } from '../../helpers/cli.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const HEADER = { dataVersion: '3.5.30/etcd3', created: '2026-01-01T00:00:00.000Z', source: '/x' };

/** A member-like tree: a big zero-filled "WAL", a random "db", a 0644 file, nested dirs. */
async function memberTree(root: string): Promise<void> {
  await fs.mkdir(path.join(root, 'member/snap'), { recursive: true, mode: 0o700 });
  await fs.mkdir(path.join(root, 'member/wal'), { mode: 0o700 });
  await fs.writeFile(path.join(root, 'member/snap/db'), crypto.randomBytes(3_000_001), { mode: 0o600 });
  await fs.writeFile(path.join(root, 'member/snap/0000000000000001-0000000000000001.snap'), 'raft snapshot', { mode: 0o644 });
  await fs.writeFile(path.join(root, 'member/wal/0000000000000000-0000000000000000.wal'), Buffer.alloc(8_000_000), { mode: 0o600 });
  await fs.writeFile(path.join(root, 'member/wal/empty'), '', { mode: 0o600 });
  await fs.chmod(path.join(root, 'member/snap/0000000000000001-0000000000000001.snap'), 0o644);
}

async function refused(p: Promise<unknown>): Promise<IntegrityError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(IntegrityError);
  return e as IntegrityError;
}

describe('backup archive', () => {
  it.each([['plain', undefined], ['encrypted', crypto.randomBytes(32)]] as const)('%s: round-trips the member tree exactly, compressed', async (_name, key) => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await memberTree(src);
    const file = path.join(dir, 'b.backup');
    const written = await writeArchiveFile(src, file, HEADER, key);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(file)).size).toBeLessThan(3_000_001 + 1_000_000); // the zero WAL compresses away
    expect(await sniff(file)).toBe(key ? 'encrypted' : 'archive');

    const verified = await readArchiveFile(file, key);
    expect(verified.entries).toEqual(written.entries);
    expect(verified.header).toEqual(HEADER);

    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    await readArchiveFile(file, key, out);
    expect(await treeSnapshot(path.join(out, 'member'))).toEqual(await treeSnapshot(path.join(src, 'member')));
  });

  it('refuses a changed byte or a truncated file, plain or encrypted', async () => {
    const dir = await tmpDir();
    await memberTree(path.join(dir, 'src'));
    for (const key of [undefined, crypto.randomBytes(32)]) {
      const file = path.join(dir, `b-${key ? 'enc' : 'plain'}`);
      await writeArchiveFile(path.join(dir, 'src'), file, HEADER, key);
      const good = await fs.readFile(file);
      const flipped = Buffer.from(good);
      flipped[Math.floor(good.length / 2)]! ^= 0x10;
      await fs.writeFile(`${file}.flip`, flipped);
      await refused(readArchiveFile(`${file}.flip`, key));
      await fs.writeFile(`${file}.cut`, good.subarray(0, good.length - 100));
      await refused(readArchiveFile(`${file}.cut`, key));
    }
  });

  it('never writes outside the target, whatever the archive says', async () => {
    const dir = await tmpDir();
    const hostile = (p: string) => Readable.from([Buffer.from('etcd-migrate archive 1\n' + JSON.stringify(HEADER) + '\n' + JSON.stringify({ t: 'f', p, m: 420, n: 1 }) + '\nx')]);
    for (const p of ['../evil', 'member/../../evil', '/etc/evil', 'other/x', 'member/./x']) {
      await refused(readArchive(hostile(p), dir));
    }
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('refuses bytes after the end record and a record that is not JSON', async () => {
    const dir = await tmpDir();
    await memberTree(path.join(dir, 'src'));
    const file = path.join(dir, 'b');
    await writeArchiveFile(path.join(dir, 'src'), file, HEADER, undefined);
    const raw = zlib.zstdDecompressSync(await fs.readFile(file));
    await refused(readArchive(Readable.from([Buffer.concat([raw, Buffer.from('x')])])));
    await refused(readArchive(Readable.from([Buffer.from('etcd-migrate archive 1\n{not json}\n')])));
    expect((await readArchive(Readable.from([raw]))).header).toEqual(HEADER);
  });
});
