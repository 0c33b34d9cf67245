// The backup file written and read back unbuffered (src/backup/direct.ts): bytes of any length go
// through the aligned buffer and come back exactly, the file ends at its last byte, and a reader
// that follows the writer only reads whole blocks until the writer is done.
import crypto from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALIGN, alignedBuffer, DirectSource, openSink } from '../../../src/backup/direct.ts';
import { IntegrityError } from '../../../src/errors.ts';
import { tmpDir } from '../../helpers/tmp.ts';

/** `total` random bytes in pieces of the given sizes, repeated. */
function pieces(total: number, sizes: number[]): Buffer[] {
  const all = crypto.randomBytes(total);
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < total; i++) {
    const n = Math.min(sizes[i % sizes.length]!, total - at);
    out.push(all.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('unbuffered writes and reads of the backup file', () => {
  it('gives memory that an O_DIRECT write takes', async () => {
    const dir = await tmpDir();
    const { fh, direct } = await openSink(path.join(dir, 'f'), true);
    // This machine's file systems take O_DIRECT; a fall back here would hide what the test is for.
    expect(direct).toBe(true);
    const b = alignedBuffer(3 * ALIGN).fill(7);
    expect((await fh.write(b, 0, b.length, 0)).bytesWritten).toBe(b.length);
    await fh.close();
    expect(await fs.readFile(path.join(dir, 'f'))).toEqual(b);
  });

  const SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, (4 << 20) - 1, 4 << 20, (9 << 20) + 5];
  it.each(SIZES.flatMap((n) => [true, false].map((direct) => [n, direct] as const)))(
    '%i bytes in pieces of any size come back exactly, and the file ends at the last (unbuffered: %s)',
    async (total, direct) => {
      const dir = await tmpDir();
      const file = path.join(dir, 'f');
      const { fh, sink, direct: was } = await openSink(file, direct);
      expect(was).toBe(direct);
      const bufs = pieces(total, [1, 4095, 70_000, 1 << 20, 3]);
      let reached = 0;
      for (let i = 0; i < bufs.length; i += 7) reached += await sink.write(bufs.slice(i, i + 7));
      reached += await sink.end();
      await fh.close();
      expect(reached).toBe(total);
      // Buffer.equals: toEqual compares byte by byte, seconds for a few MiB.
      expect((await fs.readFile(file)).equals(Buffer.concat(bufs))).toBe(true);
    },
  );

  it('reads only whole blocks below what was written until the writer is done, then the rest', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'f');
    const bytes = crypto.randomBytes(3 * ALIGN + 100);
    await fs.writeFile(file, bytes);
    const fh = await fs.open(file, constants.O_RDONLY | constants.O_DIRECT);
    const src = new DirectSource(fh, file);
    const dst = Buffer.alloc(10 * ALIGN);
    // 2.5 blocks written: 2 can be read, the half block waits.
    expect(await src.read(dst, 0, 2 * ALIGN + 2000, false)).toBe(2 * ALIGN);
    expect(dst.subarray(0, 2 * ALIGN)).toEqual(bytes.subarray(0, 2 * ALIGN));
    expect(await src.read(dst, 2 * ALIGN, 2 * ALIGN + 2000, false)).toBe(0);
    // Done: the rest, to the file's end.
    expect(await src.read(dst, 2 * ALIGN, bytes.length, true)).toBe(ALIGN + 100);
    expect(dst.subarray(0, ALIGN + 100)).toEqual(bytes.subarray(2 * ALIGN));
    await fh.close();
  });

  it('refuses a file that ends before what the writer said it wrote', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'f');
    await fs.writeFile(file, crypto.randomBytes(ALIGN));
    const fh = await fs.open(file, constants.O_RDONLY | constants.O_DIRECT);
    const e = await new DirectSource(fh, file).read(Buffer.alloc(4 * ALIGN), 0, 3 * ALIGN, false).catch((x) => x);
    await fh.close();
    expect(e).toBeInstanceOf(IntegrityError);
  });
});
