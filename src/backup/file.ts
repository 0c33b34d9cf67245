// Backup files on disk: an archive (archive.ts) compressed with zstd, optionally encrypted
// (crypt.ts); or an etcd snapshot, optionally encrypted. Written owner-only (0600) and fsynced.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { archiveBytes, readArchive, type ArchiveHeader, type Manifest } from './archive.ts';
import { IntegrityError } from '../errors.ts';
import { CRYPT_MAGIC, decryptStream, encryptStream } from './crypt.ts';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const BOLT_MAGIC = 0xed0cdaed;

export type FileKind = 'encrypted' | 'archive' | 'snapshot' | 'unknown';

/** What a file holds, from its first bytes. */
export async function sniff(file: string): Promise<FileKind> {
  const fh = await fs.open(file, 'r');
  try {
    const b = Buffer.alloc(32);
    const { bytesRead } = await fh.read(b, 0, 32, 0);
    const head = b.subarray(0, bytesRead);
    if (head.length >= CRYPT_MAGIC.length && head.subarray(0, CRYPT_MAGIC.length).equals(CRYPT_MAGIC)) return 'encrypted';
    if (head.length >= 4 && head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'archive';
    // bbolt's first meta page: page header (16 bytes), then the magic.
    if (head.length >= 20 && head.readUInt32LE(16) === BOLT_MAGIC) return 'snapshot';
    return 'unknown';
  } finally {
    await fh.close();
  }
}

/** Opens `file` for writing, owner-only, failing if it exists. */
export function ownerOnlyWriteStream(file: string) {
  return createWriteStream(file, { flags: 'wx', mode: 0o600, highWaterMark: CHUNK });
}

export async function fsyncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** 1 MiB pieces: with zlib's default 16 KiB, streaming zstd ran at half the speed (bench/backup.ts). */
const CHUNK = 1 << 20;
const read = (file: string) => createReadStream(file, { highWaterMark: CHUNK });
/** Level 1: 400 MB/s on this machine's text-like data, and a preallocated WAL's zeros vanish. */
/**
 * Room for 8 pieces on each side of zstd: it works on the threadpool while the main thread hashes
 * (and encrypts) the pieces before or after it. With the streams' default 64 KiB the two took turns.
 */
const ROOM = { readableHighWaterMark: 8 * CHUNK, writableHighWaterMark: 8 * CHUNK };
const zstdCompress = () => zlib.createZstdCompress({ chunkSize: CHUNK, ...ROOM, params: { [zlib.constants.ZSTD_c_compressionLevel]: 1, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
const zstdDecompress = () => zlib.createZstdDecompress({ chunkSize: CHUNK, ...ROOM });

/**
 * Writes `<root>/member` as a compressed (and with a key, encrypted) archive to a new file, fsynced
 * unless `sync` is false (the caller then fsyncs it before relying on it).
 */
export async function writeArchiveFile(root: string, file: string, header: ArchiveHeader, key: Buffer | undefined, sync = true): Promise<Manifest> {
  const manifest: Manifest = { header, entries: [], bytes: 0 };
  const stages: Transform[] = [zstdCompress()];
  if (key) stages.push(encryptStream(key));
  await pipeline([Readable.from(archiveBytes(root, header, manifest)), ...stages, ownerOnlyWriteStream(file)]);
  if (sync) await fsyncFile(file);
  return manifest;
}

/** Reads an archive file back, checking everything; with `target`, extracts it there. */
export async function readArchiveFile(file: string, key: Buffer | undefined, target?: string): Promise<Manifest> {
  let manifest: Manifest | undefined;
  // Whichever stage fails first is the cause; pipeline then destroys the others with its error.
  let first: 'file' | 'decrypt' | 'zstd' | 'archive' | undefined;
  const sink = async (source: AsyncIterable<Buffer>) => {
    try {
      manifest = await readArchive(source, target);
    } catch (e) {
      first ??= 'archive';
      throw e;
    }
  };
  const file$ = read(file).once('error', () => { first ??= 'file'; });
  const zstd = zstdDecompress().once('error', () => { first ??= 'zstd'; });
  try {
    if (key) await pipeline(file$, decryptStream(key).once('error', () => { first ??= 'decrypt'; }), zstd, sink);
    else await pipeline(file$, zstd, sink);
  } catch (e) {
    // zstd refuses a damaged or cut stream with codes of its own (ZSTD_error_*, Z_BUF_ERROR, ...):
    // whatever it raises, the archive is damaged. A read error of the file is not.
    if (first === 'zstd' && !(e instanceof IntegrityError)) {
      throw new IntegrityError('damaged', `the backup archive is damaged (zstd: ${(e as Error).message})`);
    }
    throw e;
  }
  return manifest!;
}

/** Encrypts `src` into the new file `dst` (0600). */
export async function encryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  await pipeline(read(src), encryptStream(key), ownerOnlyWriteStream(dst));
  await fsyncFile(dst);
}

/** Decrypts `src` into the new file `dst` (0600); fails with an IntegrityError, leaving `dst` for the caller to remove. */
export async function decryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  await pipeline(read(src), decryptStream(key), ownerOnlyWriteStream(dst));
  await fsyncFile(dst);
}
