// The read-back that follows the .part file as it is written (src/backup/follow.ts, file.ts
// writeAndReadBack, store.ts createBackup): it reads only bytes the writer wrote, from the file, so
// a byte changed on disk after it was written is caught, and compares them with the data dir, so a
// data dir that changed under the writer is caught too; it ends with the writer, whether the writer
// finishes or fails; a failed backup leaves no file behind.
import crypto from 'node:crypto';
import fsSync, { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/errors.ts';
import { readArchiveFile, writeAndReadBack } from '../../../src/backup/file.ts';
import { Follower, followedWriteStream, Progress } from '../../../src/backup/follow.ts';
import { createBackup } from '../../../src/backup/store.ts';
import { Zstd } from '../../../src/backup/zstd.ts';
import { onCleanup, tmpDir } from '../../helpers/tmp.ts';

const HEADER = { dataVersion: '3.5.30/etcd3', created: '2026-01-01T00:00:00.000Z', source: '/x' };

/** A member dir of `mib` MiB: text zstd makes smaller, random bytes it cannot, and zeros. */
async function member(root: string, mib = 24): Promise<void> {
  await fs.mkdir(path.join(root, 'member/snap'), { recursive: true, mode: 0o700 });
  await fs.mkdir(path.join(root, 'member/wal'), { mode: 0o700 });
  const text = Buffer.from(crypto.randomBytes((mib << 20) / 4).toString('hex')).subarray(0, (mib << 20) / 2);
  await fs.writeFile(path.join(root, 'member/snap/db'), Buffer.concat([text, crypto.randomBytes((mib << 20) / 2)]));
  await fs.writeFile(path.join(root, 'member/wal/0.wal'), Buffer.alloc(4 << 20));
}

/** A Progress that runs `before` on each write's bytes before the follower may read them. */
class Watched extends Progress {
  readonly writes: Array<[number, number]> = [];
  before: (at: number, n: number) => void = () => {};
  override advance(n: number): void {
    this.writes.push([this.written, n]);
    this.before(this.written, n);
    super.advance(n);
  }
}

const KINDS = [
  ['plain', undefined, 'none'],
  ['plain, zstd', undefined, 'zstd'],
  ['encrypted', crypto.randomBytes(32), 'none'],
  ['encrypted, zstd', crypto.randomBytes(32), 'zstd'],
] as const;
/** Each kind written and read back unbuffered (direct.ts) and through the page cache. */
const WAYS = KINDS.flatMap(([name, key, codec]) =>
  [true, false].map((direct) => [`${name}, ${direct ? 'unbuffered' : 'buffered'}`, key, codec, direct] as const),
);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('the read-back that follows the backup file', () => {
  it.each(WAYS)(
    '%s: reads back what was written, the same manifest as a read of the whole file',
    async (_name, key, codec, direct) => {
      const dir = await tmpDir();
      await member(path.join(dir, 'src'));
      const file = path.join(dir, 'b.part');
      const progress = new Watched();
      const { written, read } = await writeAndReadBack(
        path.join(dir, 'src'),
        file,
        HEADER,
        key,
        codec,
        undefined,
        progress,
        direct,
      );
      expect(progress.direct).toBe(direct);
      expect(read.entries).toEqual(written.entries);
      expect(progress.writes.length).toBeGreaterThan(1);
      expect(progress.written).toBe((await fs.stat(file)).size);
      expect((await readArchiveFile(file, key)).entries).toEqual(written.entries);
    },
  );

  it.each(WAYS)(
    '%s: a byte changed in the file after it was written, before the follower reads it, is caught',
    async (_name, key, codec, direct) => {
      const dir = await tmpDir();
      await member(path.join(dir, 'src'));
      const file = path.join(dir, 'b.part');
      const progress = new Watched();
      let changed = -1;
      progress.before = (at, n) => {
        // In the middle of the db's bytes: a write of its own, past the first MiB of the file.
        if (changed >= 0 || at < 1 << 20 || n < 1024) return;
        changed = at + (n >> 1);
        const fd = fsSync.openSync(file, 'r+');
        const b = Buffer.alloc(1);
        fsSync.readSync(fd, b, 0, 1, changed);
        b[0]! ^= 0x10;
        fsSync.writeSync(fd, b, 0, 1, changed);
        fsSync.closeSync(fd);
      };
      const src = path.join(dir, 'src');
      const e = await rejection(writeAndReadBack(src, file, HEADER, key, codec, undefined, progress, direct));
      expect(changed).toBeGreaterThan(0);
      expect(e).toBeInstanceOf(IntegrityError);
    },
  );

  it.each(KINDS)(
    '%s: the data dir changed after its bytes were written, before they are read back, is caught',
    async (_name, key, codec) => {
      const dir = await tmpDir();
      const src = path.join(dir, 'src');
      await member(src);
      const db = path.join(src, 'member/snap/db');
      const file = path.join(dir, 'b.part');
      const progress = new Watched();
      let changed = false;
      progress.before = (at, n) => {
        if (changed || at < 1 << 20 || n < 1024) return;
        changed = true;
        // In place, at its size: what was written is the old bytes, what is compared the new.
        const bytes = fsSync.readFileSync(db);
        for (let i = 0; i < bytes.length; i += 4096) bytes[i]! ^= 0x01;
        fsSync.writeFileSync(db, bytes, { flag: 'r+' });
      };
      const e = await rejection(writeAndReadBack(src, file, HEADER, key, codec, undefined, progress));
      expect(changed).toBe(true);
      expect(e).toBeInstanceOf(IntegrityError);
      expect((e as Error).message).toContain(`differs from ${db}`);
    },
  );

  it('on a file system that refuses O_DIRECT (ramfs), backup and restore use the page cache', async (ctx) => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await member(src, 4);
    const ram = path.join(dir, 'ram');
    await fs.mkdir(ram);
    const { execa } = await import('execa');
    const m = await execa('mount', ['-t', 'ramfs', 'ramfs', ram], { reject: false });
    if (m.exitCode !== 0)
      ctx.skip(`needs a file system without O_DIRECT; mounting a ramfs is not permitted here (${m.stderr.trim()})`);
    onCleanup(async () => {
      await execa('umount', [ram]);
    });
    const file = path.join(ram, 'b.part');
    const progress = new Progress();
    const { written, read } = await writeAndReadBack(src, file, HEADER, undefined, 'none', undefined, progress, true);
    expect(progress.direct).toBe(false);
    expect(read.entries).toEqual(written.entries);
    await fs.mkdir(path.join(ram, 'out'));
    await readArchiveFile(file, undefined, path.join(ram, 'out'));
    const [back, db] = [path.join(ram, 'out/member/snap/db'), path.join(src, 'member/snap/db')];
    expect((await fs.readFile(back)).equals(await fs.readFile(db))).toBe(true);
  });

  it('never reads past what the writer says is written, waits for more, and ends with the writer', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'f');
    // The file holds more than was "written": the follower must not see it.
    await fs.writeFile(file, Buffer.alloc(100, 7));
    const p = new Progress();
    const f = new Follower(file, p);
    const dst = Buffer.alloc(64);
    let got: number | undefined;
    const first = f.read(dst).then((n) => (got = n));
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeUndefined(); // not even opened yet
    p.open();
    p.advance(10);
    expect(await first).toBe(10);
    let second: number | undefined;
    const next = f.read(dst).then((n) => (second = n));
    await new Promise((r) => setTimeout(r, 20));
    expect(second).toBeUndefined(); // caught up: it waits
    p.advance(90);
    expect(await next).toBe(64);
    expect(await f.read(dst)).toBe(26);
    expect(f.position).toBe(100);
    const end = f.read(dst);
    p.finish();
    expect(await end).toBe(0);
    await f.close();
  });

  it('refuses a file that holds more than the writer wrote, once the writer is done', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'f');
    await fs.writeFile(file, Buffer.alloc(100, 7));
    const p = new Progress();
    p.open();
    p.advance(60);
    p.finish();
    const f = new Follower(file, p);
    expect(await f.read(Buffer.alloc(100))).toBe(60);
    expect(await rejection(f.read(Buffer.alloc(100)))).toBeInstanceOf(IntegrityError);
    await f.close();
  });

  it('a writer that fails ends the follower with its error, and the file is closed', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'f');
    const p = new Progress();
    const boom = new Error('the source broke');
    const source = async function* () {
      yield Buffer.alloc(1 << 20, 1);
      await new Promise((r) => setTimeout(r, 20));
      throw boom;
    };
    const f = new Follower(file, p);
    const reading = (async () => {
      const b = Buffer.alloc(1 << 16);
      for (;;) if ((await f.read(b)) === 0) return;
    })();
    const writing = rejection(pipeline(Readable.from(source()), followedWriteStream(file, p, true)));
    const read = rejection(reading);
    expect(await writing).toBe(boom);
    expect(await read).toBe(boom);
    expect(p.failed).toBe(boom);
    expect(p.written).toBe(1 << 20);
    await f.close();
  });

  it('a backup whose source fails or whose read-back fails leaves no file behind', async () => {
    const dir = await tmpDir();
    const src = path.join(dir, 'src');
    await member(src, 4);
    // A FIFO in the member dir: the writer refuses it, after some bytes were written and read back.
    const { execa } = await import('execa');
    await execa('mkfifo', [path.join(src, 'member/wal/zz.fifo')]);
    const backups = path.join(dir, 'backups');
    const b = { dir: backups, id: 'x', keep: 1, key: undefined };
    const v = { version: { major: 3, minor: 5, patch: 30 }, storage: 'etcd3' } as const;
    const e = await rejection(createBackup(src, v, b));
    expect((e as Error).message).toMatch(/neither a file nor a directory/);
    expect(await fs.readdir(backups)).toEqual([]);
    await fs.rm(path.join(src, 'member/wal/zz.fifo'));
    const ok = await createBackup(src, v, b);
    expect(await fs.readdir(backups)).toEqual([path.basename(ok.file)]);
  });
});

describe.each([
  ['native handles', true],
  ['one-shot calls (a Node without the handles)', false],
])('zstd on reused contexts, %s', (_, native) => {
  const text = Buffer.from(crypto.randomBytes(600_000).toString('hex')).subarray(0, 1 << 20);
  const L1 = { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } };

  it('makes the same frames as zstdCompressSync, one per block, context after context', () => {
    const z = new Zstd(native);
    const out = Buffer.alloc(1 << 20);
    for (const block of [text, text.subarray(0, 5000), Buffer.alloc(1 << 20, 3), text]) {
      const n = z.compress(block, out);
      expect(out.subarray(0, n).equals(zlib.zstdCompressSync(block, L1))).toBe(true);
    }
    // A frame that does not fit is not made (the block is stored), and the next one is whole.
    expect(z.compress(crypto.randomBytes(1 << 20), out.subarray(0, (1 << 20) - 4))).toBeUndefined();
    expect(out.subarray(0, z.compress(text, out)).equals(zlib.zstdCompressSync(text, L1))).toBe(true);
    z.close();
  });

  // A changed byte inside a frame (zstd here has no checksum) is the block's sha256's to catch.
  it('takes only one whole frame of exactly the block size, and recovers after a damaged one', () => {
    const z = new Zstd(native);
    const frame = zlib.zstdCompressSync(text, L1);
    const plain = Buffer.alloc(1 << 20);
    const good = () => {
      plain.fill(0);
      return z.decompress(frame, plain) && plain.equals(text);
    };
    expect(good()).toBe(true);
    const bad = [
      frame.subarray(0, frame.length - 1), // cut
      frame.subarray(0, frame.length >> 1),
      Buffer.concat([frame, Buffer.from('x')]), // bytes after the frame
      Buffer.concat([frame, frame]), // two frames
      zlib.zstdCompressSync(Buffer.concat([text, Buffer.from('more')]), L1), // larger than the block
      zlib.zstdCompressSync(text.subarray(1), L1), // smaller
    ];
    for (const b of bad) {
      expect(z.decompress(b, plain)).toBe(false);
      expect(good()).toBe(true);
    }
    z.close();
  });
});
