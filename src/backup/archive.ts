// The backup archive: the exact bytes and modes of a data dir's `member/` tree, so a restore gives
// back the member dir as it was (same member and cluster IDs, same WAL, v2 store included). Written
// as a stream; encryption wraps it (file.ts). The format is specified in docs/backups.md.
//
//   "etcd-migrate archive 2\n"
//   {"dataVersion":"3.5.30/etcd3","created":"<ISO time>","source":"<data dir>","block":1048576}\n
//   {"t":"d","p":"member","m":448}\n                          a directory (mode in decimal)
//   {"t":"f","p":"member/snap/db","m":384,"n":24576}\n <its blocks> <32 bytes: sha256 of their digests>
//   {"t":"e","dirs":3,"files":3,"bytes":64030000,"sha256":"<hex>"}\n     the end; nothing may follow
//
// The end's sha256 covers every line before it and every file's digest, so no record can change
// unseen; the blocks' own sha256s cover the content.
// A block (blocks.ts) is all zeros, stored or zstd-compressed. Version 1 archives (zstd around the
// whole archive; each file's bytes then its sha256) are still read.
import crypto from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../errors.ts';
import { fsyncTree } from '../fsx.ts';
import {
  BLOCK_SIZE,
  KIND_STORED,
  KIND_ZERO,
  KIND_ZSTD,
  MAX_BLOCK_SIZE,
  encodeBlock,
  fileDigest,
  unpack,
  zeroBytes,
  zeroDigest,
  type Codec,
} from './blocks.ts';
import { blockBuffer, Hasher, releaseBlock } from './hasher.ts';
import { openSink, type Sink } from './direct.ts';
import type { PullSource } from './follow.ts';
import { mapOrdered, range } from './ordered.ts';
import { Zstd } from './zstd.ts';

export const ARCHIVE_MAGIC = 'etcd-migrate archive 2\n';
export const ARCHIVE_MAGIC_V1 = 'etcd-migrate archive 1\n';
const MAX_LINE = 64 << 10;
/** Blocks worked on at once: enough to keep both cores and the disk busy, a few MiB of memory. */
const IN_FLIGHT = 8;

export interface ArchiveHeader {
  /** What version.txt said when the archive was made. */
  dataVersion: string;
  created: string;
  source: string;
}

export interface Entry {
  type: 'dir' | 'file';
  path: string;
  mode: number;
  size: number;
  /** A file's digest: sha256 of its content (version 1), of its blocks' sha256s (version 2). */
  sha256?: string;
}

export interface Manifest {
  header: ArchiveHeader;
  entries: Entry[];
  bytes: number;
}

/** The archive's bytes for `<root>/member`; `manifest.entries` fills in as the files are read. */
export async function* archiveBytes(
  root: string,
  header: ArchiveHeader,
  manifest: Manifest,
  codec: Codec = 'none',
  onBytes: OnBytes = () => {},
): AsyncGenerator<Buffer> {
  const hasher = new Hasher();
  const zstd = new Zstd();
  try {
    yield* archiveWith(root, header, manifest, codec, { hasher, zstd, onBytes });
  } finally {
    zstd.close();
    await hasher.close();
  }
}

/** How many of a file's bytes were just read or checked: for progress reports. */
export type OnBytes = (n: number) => void;

interface Work {
  hasher: Hasher;
  zstd: Zstd;
  onBytes: OnBytes;
}

async function* archiveWith(
  root: string,
  header: ArchiveHeader,
  manifest: Manifest,
  codec: Codec,
  work: Work,
): AsyncGenerator<Buffer> {
  const meta = crypto.createHash('sha256');
  const line = (o: object): Buffer => {
    const b = Buffer.from(JSON.stringify(o) + '\n');
    meta.update(b);
    return b;
  };
  yield Buffer.from(ARCHIVE_MAGIC);
  yield line({ ...header, block: BLOCK_SIZE });
  manifest.header = header;
  let dirs = 0;
  let files = 0;
  const walk = async function* (rel: string): AsyncGenerator<Buffer> {
    const abs = path.join(root, rel);
    const st = await fs.lstat(abs);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      dirs++;
      manifest.entries.push({ type: 'dir', path: rel, mode, size: 0 });
      yield line({ t: 'd', p: rel, m: mode });
      for (const name of (await fs.readdir(abs)).sort()) yield* walk(path.posix.join(rel, name));
    } else if (st.isFile()) {
      files++;
      yield line({ t: 'f', p: rel, m: mode, n: st.size });
      const d = yield* fileBlocks(abs, st.size, codec, work);
      manifest.entries.push({ type: 'file', path: rel, mode, size: st.size, sha256: d.toString('hex') });
      manifest.bytes += st.size;
      meta.update(d);
      yield d;
    } else {
      throw new Error(
        `${abs} is neither a file nor a directory; a member dir holds only those, so it is not backed up`,
      );
    }
  };
  yield* walk('member');
  yield Buffer.from(JSON.stringify({ t: 'e', dirs, files, bytes: manifest.bytes, sha256: meta.digest('hex') }) + '\n');
}

/** A file's blocks, read and encoded a few at a time; returns the file's digest. */
async function* fileBlocks(
  abs: string,
  size: number,
  codec: Codec,
  { hasher, zstd, onBytes }: Work,
): AsyncGenerator<Buffer, Buffer> {
  const fh = await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  const digests: Buffer[] = [];
  try {
    const encode = async (i: number) => {
      const buf = blockBuffer(BLOCK_SIZE);
      const plain = await readBlock(fh, abs, buf, i * BLOCK_SIZE, Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE));
      const b = await encodeBlock(plain, codec, hasher, zstd);
      // A zero block's buffer is read into again: its parts hold none of its bytes.
      if (b.zero) releaseBlock(buf);
      return b;
    };
    for await (const b of mapOrdered(range(Math.ceil(size / BLOCK_SIZE)), IN_FLIGHT, encode)) {
      digests.push(b.digest);
      onBytes(b.size);
      yield* b.parts;
    }
    // A file that grew while it was read is not the file that was backed up either.
    if ((await fh.read(Buffer.alloc(1), 0, 1, size)).bytesRead !== 0) throw changedSize(abs, size);
  } finally {
    await fh.close();
  }
  return fileDigest(digests);
}

async function readBlock(fh: FileHandle, abs: string, buf: Buffer, pos: number, n: number): Promise<Buffer> {
  const b = buf.subarray(0, n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(b, got, n - got, pos + got);
    if (bytesRead === 0) throw changedSize(abs, pos + got, true);
    got += bytesRead;
  }
  return b;
}

const changedSize = (abs: string, at: number, shrank = false): Error =>
  new Error(
    `${abs} changed size while it was being ` +
      `backed up (${shrank ? 'it ends at' : 'it grew past'} ${at} bytes); is an etcd running on this data dir?`,
  );

/** How a version reads one file's content: it checks the digest, writes to `out` if given. */
type FileReader = (r: Reader, p: string, size: number, out: Sink | undefined) => Promise<Buffer>;

/**
 * Reads an archive (version 2, or a decompressed version 1), checking every file's digest and the
 * end record. With `target`, recreates the tree under it (target/member/...), files fsynced, modes
 * as recorded; target/member must not exist. With `source`, the dir a version 2 archive was just
 * written from: each block is compared with the same bytes read again from there, not hashed.
 */
export async function readArchive(
  src: AsyncIterable<Buffer> | PullSource,
  target?: string,
  onBytes: OnBytes = () => {},
  source?: string,
): Promise<Manifest> {
  const r = new Reader(src);
  const magic = (await r.bytes(ARCHIVE_MAGIC.length)).toString('latin1');
  if (magic !== ARCHIVE_MAGIC && magic !== ARCHIVE_MAGIC_V1) {
    throw new IntegrityError('format', 'not an etcd-migrate backup archive (unknown header)');
  }
  const v1 = magic === ARCHIVE_MAGIC_V1;
  // Version 1 has zstd's checksum over the whole archive; version 2 its end's sha256 over the records.
  const meta = v1 ? undefined : crypto.createHash('sha256');
  const nextLine = async (): Promise<string> => {
    const b = await r.line();
    meta?.update(b);
    return b.subarray(0, b.length - 1).toString('utf8');
  };
  const header = parseJson(await nextLine()) as ArchiveHeader & { block?: unknown };
  if (typeof header?.dataVersion !== 'string') throw damaged('its header has no dataVersion');
  const hasher = new Hasher();
  const zstd = new Zstd();
  try {
    if (v1 && source) throw new Error('only a version 2 archive is compared with its source');
    const readFile = v1 ? readFileV1 : blockReader(header.block, { hasher, zstd, onBytes }, source);
    return await readRecords(r, header, readFile, nextLine, meta, target);
  } finally {
    zstd.close();
    await hasher.close();
  }
}

async function readRecords(
  r: Reader,
  header: ArchiveHeader & { block?: unknown },
  readFile: FileReader,
  nextLine: () => Promise<string>,
  meta: crypto.Hash | undefined,
  target: string | undefined,
): Promise<Manifest> {
  const { block: _, ...plain } = header;
  const manifest: Manifest = { header: plain, entries: [], bytes: 0 };
  const dirModes: Array<[string, number]> = [];
  for (;;) {
    const before = meta?.copy().digest('hex');
    const rec = parseJson(await nextLine()) as {
      t?: string;
      p?: unknown;
      m?: unknown;
      n?: unknown;
      dirs?: number;
      files?: number;
      bytes?: number;
      sha256?: unknown;
    };
    if (rec.t === 'e') {
      if (meta && rec.sha256 !== before) throw damaged('its records do not match their sha256');
      const files = manifest.entries.filter((e) => e.type === 'file').length;
      if (rec.files !== files || rec.dirs !== manifest.entries.length - files || rec.bytes !== manifest.bytes)
        throw damaged('its end record does not match its contents');
      if (!(await r.atEnd())) throw damaged('it has bytes after its end record');
      break;
    }
    const p = checkPath(rec.p);
    const mode =
      typeof rec.m === 'number' && Number.isInteger(rec.m) && rec.m >= 0 && rec.m <= 0o7777 ? rec.m & 0o777 : undefined;
    if (mode === undefined) throw damaged(`entry ${p} has no valid mode`);
    if (rec.t === 'd') {
      if (target) {
        await fs.mkdir(path.join(target, p), { mode: 0o700 }).catch((e) => {
          throw damaged(`cannot create ${p}: ${(e as Error).message}`);
        });
        dirModes.push([path.join(target, p), mode]);
      }
      manifest.entries.push({ type: 'dir', path: p, mode, size: 0 });
    } else if (rec.t === 'f') {
      const size = rec.n;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
        throw damaged(`entry ${p} has no valid size`);
      // Written past the page cache where the file system allows it: a restore does not evict what etcd reads next.
      const file = target
        ? await openSink(path.join(target, p), true).catch((e: unknown) => {
            throw damaged(`cannot create ${p}: ${(e as Error).message}`);
          })
        : undefined;
      let d: Buffer;
      try {
        d = await readFile(r, p, size, file?.sink);
        await file?.sink.end();
        await file?.fh.sync();
      } finally {
        await file?.fh.close();
      }
      if (target) await fs.chmod(path.join(target, p), mode);
      meta?.update(d);
      manifest.entries.push({ type: 'file', path: p, mode, size, sha256: d.toString('hex') });
      manifest.bytes += size;
    } else throw damaged('it holds an unknown record');
  }
  if (!manifest.entries.some((e) => e.path === 'member' && e.type === 'dir')) throw damaged('it holds no member dir');
  for (const [dir, mode] of dirModes.reverse()) await fs.chmod(dir, mode);
  // The files were fsynced as they were written; the directories naming them are synced here.
  if (target) await fsyncTree(path.join(target, 'member'), { files: false });
  return manifest;
}

/** Version 1: the file's bytes, then their sha256. */
const readFileV1: FileReader = async (r, p, size, out) => {
  const hash = crypto.createHash('sha256');
  for await (const piece of r.exactly(size)) {
    hash.update(piece);
    if (out) await out.write([piece]);
  }
  const d = hash.digest();
  if (!d.equals(await r.bytes(32))) throw damaged(`the content of ${p} does not match its sha256`);
  return d;
};

/**
 * Version 2: the file's blocks, each checked (a few at once) against its sha256, or with `source`
 * against the file it was written from; then the file's digest.
 */
function blockReader(block: unknown, { hasher, zstd, onBytes }: Work, source: string | undefined): FileReader {
  if (typeof block !== 'number' || !Number.isInteger(block) || block < 1 || block > MAX_BLOCK_SIZE) {
    throw damaged('its header has no valid block size');
  }
  return async (r, p, size, out) => {
    const digests: Buffer[] = [];
    const take = async (job: Promise<Block>): Promise<void> => {
      const b = await job;
      digests.push(b.digest);
      onBytes(b.plain.length);
      if (out) await out.write([b.plain]);
      if (b.own) releaseBlock(b.plain);
    };
    const from = source ? await SourceFile.open(path.join(source, p)) : undefined;
    const check: Check = from ? (b, i) => from.compare(b, i * block) : hashCheck(hasher);
    // The blocks are parsed in order (a compressed block's length is in its bytes); their checks
    // run side by side, and their bytes are written in order.
    const window: Array<Promise<Block>> = [];
    try {
      for (let i = 0; i * block < size; i++) {
        const what = `block ${i} of ${p}`;
        const decode = await takeBlock(r, what, Math.min(block, size - i * block), zstd);
        const job = decode().then((b) => check(b, i));
        window.push(job);
        job.catch(() => undefined);
        if (window.length >= IN_FLIGHT) await take(window.shift()!);
      }
      while (window.length > 0) await take(window.shift()!);
    } finally {
      await Promise.allSettled(window);
      await from?.close();
    }
    const d = fileDigest(digests);
    if (!d.equals(await r.bytes(32))) throw damaged(`the content of ${p} does not match its digest`);
    return d;
  };
}

interface Block {
  /** Its plain bytes. */
  plain: Buffer;
  /** Its sha256, checked. */
  digest: Buffer;
  /** Its bytes are a blockBuffer of its own, given back once used. */
  own: boolean;
}

/** Checks a decoded block; resolves with it (its plain bytes may have moved) and its checked digest. */
type Check = (b: Decoded, index: number) => Promise<Block>;

interface Decoded {
  plain: Buffer;
  /** The sha256 the archive holds for it; none for a zero block. */
  expected: Buffer | undefined;
  own: boolean;
  what: string;
}

/** A restore's check: each block's bytes hashed (on the hashing thread) against the sha256 beside them. */
const hashCheck =
  (hasher: Hasher): Check =>
  async ({ plain, expected, own, what }) => {
    if (!expected) return { plain, digest: zeroDigest(plain.length), own };
    const { buf, digest: d } = await hasher.hash(plain);
    if (!d.equals(expected)) throw damaged(`the content of ${what} does not match its sha256`);
    return { plain: buf, digest: d, own };
  };

/**
 * The file a block was written from, read again for the backup's read-back: the bytes read back
 * from the archive file must be the ones in the data dir, byte for byte. The writer hashed those
 * bytes; comparing them here costs a read from the page cache, not a second sha256 of every byte,
 * and is a check of its own: nothing the writer held in memory is reused for it.
 */
class SourceFile {
  private readonly abs: string;
  private readonly fh: FileHandle;
  private constructor(abs: string, fh: FileHandle) {
    this.abs = abs;
    this.fh = fh;
  }

  static async open(abs: string): Promise<SourceFile> {
    return new SourceFile(abs, await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW));
  }

  /** Compares the block at `pos` with the data dir's bytes; a zero block gets the digest of its zeros. */
  async compare({ plain, expected, own, what }: Decoded, pos: number): Promise<Block> {
    const theirs = await readBlock(this.fh, this.abs, blockBuffer(plain.length), pos, plain.length);
    const same = theirs.equals(plain);
    releaseBlock(theirs);
    if (!same) throw new IntegrityError('damaged', `the backup's ${what} read back differs from ${this.abs}`);
    return { plain, digest: expected ?? zeroDigest(plain.length), own };
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * Takes one block's bytes from the archive (reading is serial: `r` is shared); returns its
 * decoding, which runs beside the next blocks' (and so does its check).
 */
async function takeBlock(r: Reader, what: string, n: number, zstd: Zstd): Promise<() => Promise<Decoded>> {
  const kind = (await r.bytes(1))[0];
  if (kind === KIND_ZERO) return async () => ({ plain: zeroBytes(n), expected: undefined, own: false, what });
  if (kind === KIND_STORED) {
    // Into a buffer of its own, which the hashing thread may take: read there, or copied from the stream's.
    const block = blockBuffer(n);
    await r.into(block);
    const expected = Buffer.from(await r.bytes(32));
    return async () => ({ plain: block, expected, own: true, what });
  }
  if (kind !== KIND_ZSTD) throw damaged(`${what} is of an unknown kind`);
  const length = (await r.bytes(4)).readUInt32BE(0);
  // Only a block that compression made smaller is stored compressed: a larger length is damage.
  if (length > n) throw damaged(`${what} has a length past its size`);
  const packed = blockBuffer(length);
  await r.into(packed);
  const expected = Buffer.from(await r.bytes(32));
  return async () => {
    const plain = unpack(packed, n, zstd);
    releaseBlock(packed);
    if (!plain) throw damaged(`${what} cannot be decompressed`);
    return { plain, expected, own: true, what };
  };
}

/** Entry paths are `member` or below it, plain names only: an archive can never write elsewhere. */
function checkPath(p: unknown): string {
  if (typeof p !== 'string' || !/^member(\/[^/\0]+)*$/.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
    throw damaged(`it names a path outside member/ (${JSON.stringify(p)?.slice(0, 80)})`);
  }
  return p;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw damaged('a record is not readable');
  }
}

const damaged = (what: string): IntegrityError =>
  new IntegrityError('damaged', `the backup archive is damaged: ${what}`);

/** Read-ahead from a PullSource: records and digests; a block's bytes are read straight into its buffer. */
const PULL = 16 << 10;

/**
 * Pulls exact byte counts and lines out of a stream of buffers, or out of a PullSource (then a
 * block's bytes are read into its own buffer, not copied there, and the bytes read ahead go to
 * one buffer, used again). What `bytes`, `line` and `exactly` return is only valid until the next
 * call: copy what is kept.
 */
class Reader {
  private readonly it: AsyncIterator<Buffer> | undefined;
  private readonly pull: PullSource | undefined;
  /** Bytes read and not yet taken, in pieces: never joined, only the bytes a take spans are copied. */
  private pieces: Buffer[] = [];
  private length = 0;
  private ended = false;
  /** A PullSource's read-ahead; its pieces are views of it. */
  private ahead: Buffer | undefined;
  constructor(src: AsyncIterable<Buffer> | PullSource) {
    if (Symbol.asyncIterator in src) this.it = src[Symbol.asyncIterator]();
    else this.pull = src;
  }
  private async more(): Promise<boolean> {
    if (this.ended) return false;
    let b: Buffer | undefined;
    if (this.pull) {
      // What is left moves to the front of the read-ahead (a record can be longer than it: then a
      // larger one), and the next bytes are read after it.
      const left = this.length;
      const old = this.ahead;
      if (!old || old.length - left < PULL / 2) this.ahead = Buffer.allocUnsafeSlow(Math.max(PULL, 2 * left));
      const ra = this.ahead!;
      this.takeInto(ra.subarray(0, left), old === ra);
      const n = await this.pull.read(ra.subarray(left));
      this.pieces = left ? [ra.subarray(0, left)] : [];
      this.length = left;
      if (n > 0) b = ra.subarray(left, left + n);
    } else {
      const n = await this.it!.next();
      if (!n.done) b = n.value;
    }
    if (!b) {
      this.ended = true;
      return false;
    }
    if (b.length) {
      this.pieces.push(b);
      this.length += b.length;
    }
    return true;
  }
  /** The next `n` bytes, which are there. */
  private take(n: number): Buffer {
    const first = this.pieces[0];
    if (first && first.length >= n) {
      this.pieces[0] = first.subarray(n);
      if (this.pieces[0].length === 0) this.pieces.shift();
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    this.takeInto(out);
    return out;
  }
  /** Fills `dst` from the pieces, which hold at least its length; `overlap`: `dst` may overlap them. */
  private takeInto(dst: Buffer, overlap = false): void {
    let at = 0;
    while (at < dst.length) {
      const p = this.pieces[0]!;
      const k = Math.min(p.length, dst.length - at);
      // Buffer.copy is memmove: bytes moved to the front of the buffer they are in stay whole.
      if (!overlap || p.byteOffset !== dst.byteOffset + at) p.copy(dst, at, 0, k);
      at += k;
      if (k === p.length) this.pieces.shift();
      else this.pieces[0] = p.subarray(k);
    }
    this.length -= dst.length;
  }
  async bytes(n: number): Promise<Buffer> {
    if (this.pull && n - this.length > PULL) {
      const out = Buffer.allocUnsafe(n);
      await this.into(out);
      return out;
    }
    while (this.length < n)
      if (!(await this.more())) throw new IntegrityError('truncated', 'the backup archive is truncated');
    return this.take(n);
  }
  /** Fills `dst` with the next bytes: what was read ahead is copied, the rest read straight into it. */
  async into(dst: Buffer): Promise<void> {
    const ahead = Math.min(this.length, dst.length);
    this.takeInto(dst.subarray(0, ahead));
    let at = ahead;
    if (this.pull) {
      while (at < dst.length) {
        const n = this.ended ? 0 : await this.pull.read(dst.subarray(at));
        if (n === 0) {
          this.ended = true;
          throw new IntegrityError('truncated', 'the backup archive is truncated');
        }
        at += n;
      }
      return;
    }
    for await (const piece of this.exactly(dst.length - at)) at += piece.copy(dst, at);
  }
  /** The next line's bytes, its newline included. */
  async line(): Promise<Buffer> {
    for (;;) {
      let seen = 0;
      for (const p of this.pieces) {
        const i = p.indexOf(0x0a);
        if (i >= 0) return this.take(seen + i + 1);
        seen += p.length;
      }
      if (this.length > MAX_LINE) throw damaged('a record is too long');
      if (!(await this.more())) throw new IntegrityError('truncated', 'the backup archive is truncated');
    }
  }
  async *exactly(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.length === 0 && !(await this.more()))
        throw new IntegrityError('truncated', 'the backup archive is truncated');
      const piece = this.take(Math.min(left, this.pieces[0]!.length));
      left -= piece.length;
      yield piece;
    }
  }
  async atEnd(): Promise<boolean> {
    while (this.length === 0) if (!(await this.more())) return true;
    return false;
  }
}
