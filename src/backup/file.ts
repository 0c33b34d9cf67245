// Backup files on disk: an archive (archive.ts), optionally encrypted (crypt.ts); or an etcd
// snapshot, optionally encrypted. Written owner-only (0600) and fsynced. A version 1 archive is
// a zstd stream around the archive; it is still read.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import {
  ARCHIVE_MAGIC,
  archiveBytes,
  readArchive,
  type ArchiveHeader,
  type Manifest,
  type OnBytes,
} from './archive.ts';
import type { Codec } from './blocks.ts';
import { IntegrityError } from '../errors.ts';
import { fsyncFile } from '../fsx.ts';
import { CRYPT_MAGIC, decryptStream, DecryptingSource, encryptStream, Sealer } from './crypt.ts';
import { Follower, followedWriteStream, Progress, type PullSource } from './follow.ts';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const BOLT_MAGIC = 0xed0cdaed;

export type FileKind = 'encrypted' | 'archive' | 'snapshot' | 'unknown';

/** What a file holds, from its first bytes. */
export async function sniff(file: string): Promise<FileKind> {
  const head = await readHead(file, 32);
  if (head.length >= CRYPT_MAGIC.length && head.subarray(0, CRYPT_MAGIC.length).equals(CRYPT_MAGIC)) return 'encrypted';
  if (isArchive(head)) return 'archive';
  // bbolt's first meta page: page header (16 bytes), then the magic.
  if (head.length >= 20 && head.readUInt32LE(16) === BOLT_MAGIC) return 'snapshot';
  return 'unknown';
}

/** Up to the first `n` bytes of `file`. */
async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const ARCHIVE_HEAD = Buffer.from(ARCHIVE_MAGIC.slice(0, -2), 'latin1');
/** An archive: version 2 (its magic line) or version 1 (zstd's magic). */
const isArchive = (head: Buffer): boolean =>
  head.subarray(0, 4).equals(ZSTD_MAGIC) || head.subarray(0, ARCHIVE_HEAD.length).equals(ARCHIVE_HEAD);

/** Opens `file` for writing, owner-only, failing if it exists. */
export function ownerOnlyWriteStream(file: string) {
  return createWriteStream(file, { flags: 'wx', mode: 0o600, highWaterMark: CHUNK });
}

const CHUNK = 1 << 20;
const read = (file: string) => createReadStream(file, { highWaterMark: 4 * CHUNK });
const zstdDecompress = () => zlib.createZstdDecompress({ chunkSize: CHUNK });

/** The archive of `<root>/member` as a byte stream; `manifest.entries` fills in as it is read. */
const archiveStream = (root: string, manifest: Manifest, codec: Codec, onBytes?: OnBytes): Readable =>
  Readable.from(archiveBytes(root, manifest.header, manifest, codec, onBytes), {
    objectMode: false,
    highWaterMark: 8 * CHUNK,
  });

/**
 * Writes `<root>/member` as an archive (with a key, encrypted) to a new file, fsynced unless `sync`
 * is false (the caller then fsyncs it before relying on it). The backup's writer, without its
 * read-back (writeAndReadBack).
 */
export async function writeArchiveFile(
  root: string,
  file: string,
  header: ArchiveHeader,
  key: Buffer | undefined,
  sync = true,
  codec: Codec = 'none',
  onBytes?: OnBytes,
): Promise<Manifest> {
  const manifest: Manifest = { header, entries: [], bytes: 0 };
  const sealer = key ? new Sealer(key) : undefined;
  await pipeline([
    archiveStream(root, manifest, codec, onBytes),
    followedWriteStream(file, new Progress(), sync, sealer),
  ]);
  return manifest;
}

/**
 * Writes `<root>/member` as an archive (with a key, encrypted) to the new file `file`, fsynced, and
 * reads it back from the file behind the writer: each byte once it is written, decrypted,
 * decompressed and compared with the data dir's bytes, read again, while later blocks are still
 * being read and written. Resolves with the manifest written and the one read back once both are
 * done and the file is on disk; a failure of either side stops the other. The caller compares the
 * two. `progress`: the writer's, which the follower waits on (a test sees each write there before
 * the follower does). `direct`: unbuffered where the file system allows it (direct.ts).
 */
export async function writeAndReadBack(
  root: string,
  file: string,
  header: ArchiveHeader,
  key: Buffer | undefined,
  codec: Codec = 'none',
  onBytes?: OnBytes,
  progress = new Progress(),
  direct = true,
): Promise<{ written: Manifest; read: Manifest }> {
  const written: Manifest = { header, entries: [], bytes: 0 };
  const stop = new AbortController();
  const sealer = key ? new Sealer(key) : undefined;
  const archive = archiveStream(root, written, codec, onBytes);
  const writing = pipeline([archive, followedWriteStream(file, progress, true, sealer, direct)], {
    signal: stop.signal,
  }).catch((e: unknown) => {
    progress.fail(e as Error);
    throw e;
  });
  const follower = new Follower(file, progress);
  const reading = (async () => {
    try {
      const src: PullSource = { read: (b) => follower.read(b) };
      return await readArchive(key ? new DecryptingSource(src, key) : src, undefined, onBytes, root);
    } catch (e) {
      // A damaged byte read back stops the writing; a failed writer has stopped already.
      if (!progress.failed) stop.abort(e);
      throw e;
    } finally {
      await follower.close();
    }
  })();
  const [w, r] = await Promise.allSettled([writing, reading]);
  // The read-back stopped the writer: its error is the one; otherwise the writer's, which the read-back only saw.
  if (w.status === 'rejected' && (r.status === 'fulfilled' || !stop.signal.aborted)) throw w.reason;
  if (r.status === 'rejected') throw r.reason;
  return { written, read: r.value };
}

/** Reads an archive file back, checking everything; with `target`, extracts it there. */
export async function readArchiveFile(
  file: string,
  key: Buffer | undefined,
  target?: string,
  onBytes?: OnBytes,
): Promise<Manifest> {
  if (!key && (await readHead(file, ARCHIVE_MAGIC.length)).toString('latin1') === ARCHIVE_MAGIC) {
    // Pulled into the blocks' buffers, unbuffered where the file system allows: no stream.
    const f = Follower.whole(file, (await fs.stat(file)).size, true);
    try {
      return await readArchive({ read: (b) => f.read(b) }, target, onBytes);
    } finally {
      await f.close();
    }
  }
  let manifest: Manifest | undefined;
  const sink = async (source: AsyncIterable<Buffer>) => {
    manifest = await readArchive(unwrapV1(source), target, onBytes);
  };
  if (key) await pipeline(read(file), decryptStream(key), sink);
  else await pipeline(read(file), sink);
  return manifest!;
}

/**
 * A version 1 archive's bytes out of its zstd stream; any other stream as it is. zstd refuses a
 * damaged or cut stream with codes of its own (ZSTD_error_*, Z_BUF_ERROR, ...): whatever it
 * raises, the archive is damaged. An error of the stream it reads (the file, the decryption) is
 * passed on as it is.
 */
async function* unwrapV1(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < ZSTD_MAGIC.length) {
    const n = await it.next();
    if (n.done) break;
    head = Buffer.concat([head, n.value]);
  }
  let upstream: unknown;
  const rest = async function* () {
    yield head;
    try {
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    } catch (e) {
      upstream = e;
      throw e;
    }
  };
  if (!head.subarray(0, 4).equals(ZSTD_MAGIC)) return yield* rest();
  const zstd = zstdDecompress();
  const feeding = pipeline(Readable.from(rest(), { objectMode: false }), zstd).catch(() => undefined);
  try {
    for await (const piece of zstd) yield piece as Buffer;
  } catch (e) {
    if (upstream !== undefined) throw upstream;
    if (e instanceof IntegrityError) throw e;
    throw new IntegrityError('damaged', `the backup archive is damaged (zstd: ${(e as Error).message})`);
  } finally {
    zstd.destroy();
    await feeding;
  }
}

/** Encrypts `src` into the new file `dst` (0600). */
export async function encryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  await pipeline(read(src), encryptStream(key), ownerOnlyWriteStream(dst));
  await fsyncFile(dst);
}

/**
 * Decrypts `src` into the new file `dst` (0600); fails with an IntegrityError, leaving `dst` for the caller to
 * remove.
 */
export async function decryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  await pipeline(read(src), decryptStream(key), ownerOnlyWriteStream(dst));
  await fsyncFile(dst);
}
