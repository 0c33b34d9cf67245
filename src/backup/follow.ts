// A file read back while it is written: the writer (followedWriteStream) says how many bytes have
// reached the file, and a follower (Follower) reads only those, from the file, waiting for more.
// A backup's read-back (decrypting, decompressing, comparing every block) then runs beside the
// writing instead of after it, and still reads every byte of the file as it is on disk.
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { IntegrityError } from '../errors.ts';
import type { Sealer } from './crypt.ts';
import { canAlign, DirectSource, isRefusal, openSink, type Sink } from './direct.ts';
import { written } from './hasher.ts';

/** What the writer has done so far; the follower waits on it. */
export class Progress {
  /** The file exists (the follower may open it). */
  opened = false;
  /** It is written unbuffered (direct.ts): the follower reads it so too. */
  direct = false;
  /** Bytes written to the file from its start, each write completed. */
  written = 0;
  /** The writer wrote its last byte: `written` is the file's size. */
  done = false;
  /** The writer failed: the follower stops with this. */
  failed: Error | undefined;

  private waiters: Array<() => void> = [];

  open(direct = false): void {
    this.opened = true;
    this.direct = direct;
    this.wake();
  }
  advance(n: number): void {
    this.written += n;
    this.wake();
  }
  finish(): void {
    this.done = true;
    this.wake();
  }
  fail(e: Error): void {
    this.failed ??= e;
    this.wake();
  }
  /** Resolves at the next change. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** A source an archive Reader can pull bytes from straight into its own buffers. */
export interface PullSource {
  /** Reads up to `dst.length` bytes into `dst`; 0 at the end. */
  read(dst: Buffer): Promise<number>;
}

/**
 * Reads `file` from its start as the writer's `progress` says bytes are there, never past them;
 * ends when the writer is done and every byte was read, and fails when the writer fails.
 */
export class Follower implements PullSource {
  private readonly file: string;
  private readonly progress: Progress;
  private fh: FileHandle | undefined;
  /** Set when the file is read unbuffered. */
  private directSource: DirectSource | undefined;
  private at = 0;
  private closed = false;

  constructor(file: string, progress: Progress) {
    this.file = file;
    this.progress = progress;
  }

  /** A file that is already whole, read the same way; with `direct`, unbuffered where the file system allows. */
  static whole(file: string, size: number, direct = false): Follower {
    const p = new Progress();
    p.open(direct);
    p.advance(size);
    p.finish();
    return new Follower(file, p);
  }

  /** How many bytes were read so far. */
  get position(): number {
    return this.at;
  }

  async read(dst: Buffer): Promise<number> {
    const p = this.progress;
    for (;;) {
      if (p.failed) throw p.failed;
      if (this.closed) throw new Error(`the read-back of ${this.file} was closed`);
      if (!this.fh && p.opened && this.at < p.written) await this.open();
      if (this.directSource && this.at < p.written) {
        const [limit, done] = [p.written, p.done];
        const n = await this.directSource.read(dst, this.at, limit, done);
        this.at += n;
        if (n > 0 || dst.length === 0) return n;
        // No whole block yet: wait for more, unless more came meanwhile.
        if (p.written === limit && p.done === done) await p.changed();
        continue;
      }
      if (this.fh && this.at < p.written) {
        const n = Math.min(dst.length, p.written - this.at);
        if (n === 0) return 0;
        const { bytesRead } = await this.fh.read(dst, 0, n, this.at);
        // The writer said these bytes are there: a file that ends before them was cut by another hand.
        if (bytesRead === 0) throw new IntegrityError('truncated', `${this.file} ends before what was written to it`);
        this.at += bytesRead;
        return bytesRead;
      }
      if (p.done) return this.atEnd();
      await p.changed();
    }
  }

  /** Opens the file: unbuffered when it is written so, unless the file system refuses that here. */
  private async open(): Promise<void> {
    const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
    if (this.progress.direct && canAlign) {
      const fh = await fs.open(this.file, flags | constants.O_DIRECT).catch((e: unknown) => {
        if (isRefusal(e)) return undefined;
        throw e;
      });
      if (fh) {
        [this.fh, this.directSource] = [fh, new DirectSource(fh, this.file)];
        return;
      }
    }
    this.fh = await fs.open(this.file, flags);
  }

  async close(): Promise<void> {
    this.closed = true;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  /** The writer is done and every byte it wrote was read: the file must hold no more. */
  private async atEnd(): Promise<number> {
    this.fh ??= await fs.open(this.file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const { size } = await this.fh.stat();
    if (size !== this.at) throw new IntegrityError('damaged', `${this.file} is not the size it was written to`);
    return 0;
  }
}

const FLUSH_EVERY = 256 << 20;

/**
 * A new file (owner-only, failing if it exists) that reports each completed write to `progress`;
 * with `sync`, fsynced before it finishes; with a `sealer`, what is written to it is encrypted;
 * with `direct`, written unbuffered where the file system allows it (direct.ts). Whatever ends it
 * early fails `progress`.
 */
export function followedWriteStream(
  file: string,
  progress: Progress,
  sync: boolean,
  sealer?: Sealer,
  direct = false,
): Writable {
  let fh: FileHandle | undefined;
  let sink: Sink | undefined;
  // The disk flush starts while the file is written (without it, the kernel starts only at 10% of
  // the memory dirty, and the fsync at the end would write the whole file): at most one at a time.
  let flushing: Promise<void> | undefined;
  let flushFailed: Error | undefined;
  let flushedTo = 0;
  const flushEarly = () => {
    if (!sync || progress.direct || flushing || progress.written - flushedTo < FLUSH_EVERY) return;
    flushedTo = progress.written;
    flushing = fh!.datasync().then(
      () => {
        flushing = undefined;
      },
      (e: Error) => {
        flushFailed = e;
      },
    );
  };
  /** Writes `out` to the file; unbuffered, only whole stages reach it at once. */
  const put = async (out: Buffer[]): Promise<void> => {
    progress.advance(await sink!.write(out));
  };
  const write = async (bufs: Buffer[]): Promise<void> => {
    if (flushFailed) throw flushFailed;
    // Encrypted, the plain bytes are copied into the sealer's chunk; else written as they are.
    const out = sealer ? bufs.flatMap((b) => sealer.push(b)) : bufs;
    if (sealer) for (const b of bufs) written(b);
    await put(out);
    // A block's buffer is used again once its bytes are in the file.
    if (!sealer) for (const b of bufs) written(b);
    flushEarly();
  };
  return new Writable({
    // Small batches: what is written is read back while it is still in the CPU's caches (with 8 MiB
    // the kernel's copy into the page cache cost twice the system time, and more often than not).
    highWaterMark: 2 << 20,
    construct(cb) {
      openSink(file, direct).then(
        (h) => {
          [fh, sink] = [h.fh, h.sink];
          progress.open(h.direct);
          cb();
        },
        (e: Error) => {
          progress.fail(e);
          cb(e);
        },
      );
    },
    write(chunk: Buffer, _enc, cb) {
      write([chunk]).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      write(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
    },
    final(cb) {
      // The follower reads the last bytes while they are flushed to the disk.
      const done = async () => {
        if (sealer) await put(sealer.end());
        progress.advance(await sink!.end());
        progress.finish();
        await flushing;
        if (flushFailed) throw flushFailed;
        if (sync) await fh!.sync();
      };
      done().then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (!progress.done || err) progress.fail(err ?? new Error(`the writing of ${file} stopped before its end`));
      const h = fh;
      fh = undefined;
      (h ? h.close() : Promise.resolve()).then(
        () => cb(err),
        (e: Error) => cb(err ?? e),
      );
    },
  });
}
