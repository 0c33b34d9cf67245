// The backup file written and read back unbuffered (O_DIRECT): its bytes go from our memory to the
// disk and back, not through the page cache. The read-back then reads what is on the disk, not
// what the kernel still holds; the copies into and out of the page cache are gone; and a backup as
// large as the db does not push the db, which the step's etcd reads next, out of the page cache.
// O_DIRECT needs memory, file offsets and lengths aligned to the disk's blocks: the bytes pass
// through a page-aligned buffer. Where the file system or the memory refuses it, the backup is
// written and read as before, through the page cache (docs/backups.md).
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { IntegrityError } from '../errors.ts';

/** Offsets and lengths of unbuffered reads and writes are multiples of this (any disk's block). */
export const ALIGN = 4096;
/** Bytes per unbuffered write or read. */
const STAGE = 4 << 20;

/**
 * Page-aligned memory, as O_DIRECT needs: a WebAssembly memory's buffer starts on a page boundary;
 * Node has no other way to ask for aligned memory.
 */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new Wasm!.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

/**
 * The global WebAssembly object, which this project's type libraries (es2024, node) do not declare;
 * Node run with --jitless has none, and then every file goes through the page cache.
 */
const Wasm = (
  globalThis as unknown as {
    WebAssembly?: { Memory: new (pages: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly;

/** Whether O_DIRECT may be tried at all: there is aligned memory for it. */
export const canAlign = typeof Wasm?.Memory === 'function';

/** The file system's refusal of O_DIRECT. */
export const isRefusal = (e: unknown): boolean =>
  ['EINVAL', 'EOPNOTSUPP', 'ENOTSUP'].includes((e as { code?: string }).code!);

/** Where a new file's bytes go, in order. */
export interface Sink {
  /** Takes `bufs` (they may be used again once this resolves); returns how many bytes reached the file. */
  write(bufs: readonly Buffer[]): Promise<number>;
  /** Writes what is left; returns how many bytes. The file then holds exactly the bytes written. */
  end(): Promise<number>;
}

/**
 * Opens the new file `file` (owner-only, failing if it exists) as a Sink: unbuffered where the file
 * system takes it (`direct`), else through the page cache.
 */
export async function openSink(
  file: string,
  tryDirect: boolean,
): Promise<{ fh: FileHandle; sink: Sink; direct: boolean }> {
  const { fh, direct } = await openForWrite(file, tryDirect);
  return { fh, sink: direct ? new DirectSink(fh) : new BufferedSink(fh), direct };
}

/**
 * Opens the new file `file` for writing (owner-only, failing if it exists), unbuffered when the
 * file system takes an aligned write that way; `direct` says which it is. The file is created
 * first and then opened again with O_DIRECT: a file system that refuses the flag may do so only
 * after it created the file (ramfs does).
 */
async function openForWrite(file: string, tryDirect: boolean): Promise<{ fh: FileHandle; direct: boolean }> {
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW;
  const fh = await fs.open(file, flags | constants.O_CREAT | constants.O_EXCL, 0o600);
  if (!tryDirect || !canAlign) return { fh, direct: false };
  let direct: FileHandle;
  try {
    direct = await fs.open(file, flags | constants.O_DIRECT);
  } catch (e) {
    if (isRefusal(e)) return { fh, direct: false };
    await fh.close();
    throw e;
  }
  // A file system may take the flag and refuse the writes: one aligned block tells.
  try {
    await direct.write(alignedBuffer(ALIGN), 0, ALIGN, 0);
    await direct.truncate(0);
  } catch (e) {
    await direct.close();
    if (isRefusal(e)) return { fh, direct: false };
    await fh.close();
    throw e;
  }
  await fh.close();
  return { fh: direct, direct: true };
}

/**
 * Unbuffered writes of a stream of bytes to a file opened with O_DIRECT: bytes are gathered in an
 * aligned buffer and written a whole buffer at a time; `end` writes the rest padded to a block,
 * then cuts the file to its size.
 */
export class DirectSink implements Sink {
  private readonly fh: FileHandle;
  private readonly stage = alignedBuffer(STAGE);
  private staged = 0;
  /** The file's size so far: what was written. */
  private at = 0;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async write(bufs: readonly Buffer[]): Promise<number> {
    const before = this.at;
    for (const b of bufs) {
      let off = 0;
      while (off < b.length) {
        const k = b.copy(this.stage, this.staged, off);
        off += k;
        this.staged += k;
        if (this.staged === STAGE) await this.flush();
      }
    }
    return this.at - before;
  }

  async end(): Promise<number> {
    const rest = this.staged;
    if (rest === 0) return 0;
    const padded = Math.ceil(rest / ALIGN) * ALIGN;
    this.stage.fill(0, rest, padded);
    await this.writeStage(padded);
    await this.fh.truncate(this.at + rest);
    this.at += rest;
    this.staged = 0;
    return rest;
  }

  private async flush(): Promise<void> {
    await this.writeStage(STAGE);
    this.at += STAGE;
    this.staged = 0;
  }

  private async writeStage(n: number): Promise<void> {
    let done = 0;
    while (done < n) {
      const { bytesWritten } = await this.fh.write(this.stage, done, n - done, this.at + done);
      if (bytesWritten === 0) throw new Error('a write to the backup file wrote nothing');
      done += bytesWritten;
    }
  }
}

/** Writes through the page cache, each write at the end of the ones before (a short write is continued). */
export class BufferedSink implements Sink {
  private readonly fh: FileHandle;
  private at = 0;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async write(bufs: readonly Buffer[]): Promise<number> {
    const total = bufs.reduce((n, b) => n + b.length, 0);
    let done = 0;
    let rest = bufs;
    while (done < total) {
      const { bytesWritten } = await this.fh.writev(rest as Buffer[], this.at + done);
      if (bytesWritten === 0) throw new Error('a write to the backup file wrote nothing');
      done += bytesWritten;
      rest = skip(rest, bytesWritten);
    }
    this.at += total;
    return total;
  }

  async end(): Promise<number> {
    return 0;
  }
}

function skip(bufs: readonly Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  const rest = bufs.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/**
 * Unbuffered reads of a file that is being written: whole aligned blocks up to `limit`, served
 * from an aligned buffer. A block that is not whole yet is read once the writer is done.
 */
export class DirectSource {
  private readonly fh: FileHandle;
  private readonly file: string;
  private readonly stage = alignedBuffer(STAGE);
  /** The file offset of stage[0], and how many bytes of the stage hold the file's. */
  private stageAt = 0;
  private stageLen = 0;

  constructor(fh: FileHandle, file: string) {
    this.fh = fh;
    this.file = file;
  }

  /**
   * Reads into `dst` from file offset `at` (the end of the previous read), never past `limit`
   * bytes unless `whole` (the writer is done: the file's end is `limit`). Returns 0 when no whole
   * block is there yet.
   */
  async read(dst: Buffer, at: number, limit: number, whole: boolean): Promise<number> {
    if (at >= this.stageAt + this.stageLen) {
      const end = whole ? limit : Math.floor(limit / ALIGN) * ALIGN;
      if (end <= at) return 0;
      const n = Math.min(STAGE, Math.ceil((end - at) / ALIGN) * ALIGN);
      const want = Math.min(n, end - at);
      const { bytesRead } = await this.fh.read(this.stage, 0, n, at);
      // The writer said these bytes are there: a file that ends before them was cut by another hand.
      if (bytesRead < want) throw new IntegrityError('truncated', `${this.file} ends before what was written to it`);
      this.stageAt = at;
      this.stageLen = want;
    }
    return this.stage.copy(dst, 0, at - this.stageAt, this.stageLen);
  }
}
