// sha256 of large blocks on a second thread. A backup hashes every byte as it writes it (a restore
// as it reads it), which on one thread is most of its time; a worker thread takes the hashing while
// the main thread reads, checks for zeros and writes. Each block's memory is moved to the worker
// and back, never copied.
import crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';

// Inline so that the built bundle needs no file of its own for it.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
parentPort.on('message', ({ id, buf, off, len }) => {
  const digest = crypto.hash('sha256', new Uint8Array(buf, off, len), 'buffer');
  parentPort.postMessage({ id, buf, digest }, [buf]);
});
`;

interface Reply {
  id: number;
  buf: ArrayBuffer;
  digest: Uint8Array;
}

/** Below this a block is hashed in place: moving it costs more than hashing it. */
const MIN_MOVED = 64 << 10;
/** The worker starts after this many large blocks: an idle member's backup never waits for it. */
const START_AFTER = 32;

export class Hasher {
  private worker: Worker | undefined;
  private next = 0;
  private large = 0;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private open = true;

  constructor() {
    users++;
  }

  /**
   * The sha256 of `b`. `b` must start its own ArrayBuffer, which nothing else uses (made by
   * `blockBuffer`): a large block's memory is moved to the worker and back, so `b` is unusable
   * until this resolves; use the buffer it returns, which views the same bytes.
   */
  async hash(b: Buffer): Promise<{ buf: Buffer; digest: Buffer }> {
    if (b.length < MIN_MOVED || this.large++ < START_AFTER) return { buf: b, digest: sha256(b) };
    const w = this.start();
    const id = this.next++;
    const reply = new Promise<Reply>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    // Read before the move: a moved buffer's views read as empty.
    const [ab, off, len] = [b.buffer as ArrayBuffer, b.byteOffset, b.length];
    w.postMessage({ id, buf: ab, off, len }, [ab]);
    const r = await reply;
    return { buf: Buffer.from(r.buf, off, len), digest: Buffer.from(r.digest) };
  }

  /** Ends the worker; pending hashes fail. */
  async close(): Promise<void> {
    if (this.open && --users === 0) pool.length = 0;
    this.open = false;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER, { eval: true });
    // The worker alone must not keep the process running; a pending hash does, through its promise.
    w.unref();
    w.on('message', (r: Reply) => {
      const p = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      p?.resolve(r);
    });
    const fail = (e: Error) => {
      for (const p of this.waiting.values()) p.reject(e);
      this.waiting.clear();
      this.worker = undefined;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the hashing thread ended (exit code ${code})`)));
    this.worker = w;
    return w;
  }
}

/**
 * Block buffers are used again once their bytes are written or checked: a fresh 1 MiB buffer per
 * block costs the kernel's zeroing of its pages and the GC's work (and, with zstd, memory that
 * grew with the db while the GC lagged).
 */
const POOLED = 1 << 20;
const POOL_MAX = 32;
const pool: ArrayBuffer[] = [];
/** Buffers to give back to the pool once written (lendBlock). */
const lent = new WeakSet<ArrayBuffer>();
/** Hashers open: the pool is emptied when the last one closes. */
let users = 0;

/** A buffer with an ArrayBuffer of its own (never Buffer's shared pool), as Hasher.hash needs. */
export function blockBuffer(n: number): Buffer {
  const ab = n <= POOLED ? pool.pop() : undefined;
  return ab ? Buffer.from(ab, 0, n) : Buffer.allocUnsafeSlow(n <= POOLED && users > 0 ? POOLED : n).subarray(0, n);
}

/** Gives a blockBuffer's memory back; nothing may use `b`, or any view of its bytes, afterwards. */
export function releaseBlock(b: Buffer): void {
  const ab = b.buffer as ArrayBuffer;
  if (users > 0 && b.byteOffset === 0 && ab.byteLength === POOLED && pool.length < POOL_MAX) pool.push(ab);
}

/** Marks a blockBuffer whose only other use is being written: `written` gives it back then. */
export function lendBlock(b: Buffer): void {
  lent.add(b.buffer as ArrayBuffer);
}

/** Called with each buffer once it was written: a lent block's memory goes back to the pool. */
export function written(b: Buffer): void {
  if (lent.delete(b.buffer as ArrayBuffer)) releaseBlock(b);
}

export const sha256 = (b: Buffer): Buffer => crypto.hash('sha256', b, 'buffer');
