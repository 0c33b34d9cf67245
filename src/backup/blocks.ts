// One block of a file in a version 2 archive (docs/backups.md): all zeros (a kind byte alone),
// stored, or zstd-compressed, each with the sha256 of its plain bytes. Hashing runs on a thread of
// its own (hasher.ts); zstd runs on the main thread meanwhile, on contexts used again for every
// block (zstd.ts): zlib's async calls each left a context behind until the next GC (1.3 GB of
// memory at a 4 GB db), and its sync calls' output buffers still grew the memory with the db.
import crypto from 'node:crypto';
import { blockBuffer, lendBlock, releaseBlock, type Hasher } from './hasher.ts';
import type { Zstd } from './zstd.ts';

export const BLOCK_SIZE = 1 << 20;
export const MAX_BLOCK_SIZE = 16 << 20;
export type Codec = 'none' | 'zstd';

export const KIND_ZERO = 0;
export const KIND_STORED = 1;
export const KIND_ZSTD = 2;

const ZERO_KIND = Buffer.of(KIND_ZERO);
const zeroDigests = new Map<number, Buffer>();
let zeros = Buffer.alloc(0);

/** A buffer of `n` zero bytes, shared: never written to. */
export function zeroBytes(n: number): Buffer {
  if (zeros.length < n) zeros = Buffer.alloc(Math.max(n, BLOCK_SIZE));
  return zeros.subarray(0, n);
}

/** The sha256 of `n` zero bytes (a zero block's digest, computed once per length). */
export function zeroDigest(n: number): Buffer {
  let d = zeroDigests.get(n);
  if (!d) zeroDigests.set(n, (d = crypto.hash('sha256', zeroBytes(n), 'buffer')));
  return d;
}

export const isZero = (b: Buffer): boolean => b.equals(zeroBytes(b.length));

export interface EncodedBlock {
  /** The block's bytes in the archive, in order. */
  parts: Buffer[];
  /** sha256 of its plain bytes. */
  digest: Buffer;
  /** All zeros: its parts hold none of the plain buffer. */
  zero: boolean;
  /** Its plain size. */
  size: number;
}

/**
 * Encodes one block; compressed only when that makes it smaller. `block` comes from blockBuffer:
 * it may be moved to the hashing thread, so only the returned parts hold its bytes afterwards; a
 * stored block's plain part goes back to the pool once written (hasher.ts `written`).
 */
export async function encodeBlock(
  block: Buffer,
  codec: Codec,
  hasher: Hasher,
  zstd: Zstd | undefined,
): Promise<EncodedBlock> {
  if (isZero(block)) return { parts: [ZERO_KIND], digest: zeroDigest(block.length), zero: true, size: block.length };
  // Compressed first, then hashed: the block's memory is away while it is hashed. Only kept when
  // smaller than the block, with its 4 bytes of length.
  let packed: Buffer | undefined;
  if (codec === 'zstd') {
    const out = blockBuffer(Math.max(block.length - 4, 0));
    const n = out.length > 0 ? zstd!.compress(block, out) : undefined;
    if (n === undefined) releaseBlock(out);
    else packed = out.subarray(0, n);
  }
  const { buf: plain, digest: d } = await hasher.hash(block);
  if (packed) {
    const head = Buffer.alloc(5);
    head[0] = KIND_ZSTD;
    head.writeUInt32BE(packed.length, 1);
    releaseBlock(plain);
    // The frame's memory is used again once the archive's writer has written it.
    lendBlock(packed);
    return { parts: [head, packed, d], digest: d, zero: false, size: plain.length };
  }
  // Its memory is used again once the archive's writer has written it.
  lendBlock(plain);
  return { parts: [Buffer.of(KIND_STORED), plain, d], digest: d, zero: false, size: plain.length };
}

/** A compressed block's plain bytes, in a blockBuffer; undefined when they are not exactly `size` bytes long. */
export function unpack(packed: Buffer, size: number, zstd: Zstd): Buffer | undefined {
  const own = blockBuffer(size);
  if (zstd.decompress(packed, own)) return own;
  releaseBlock(own);
  return undefined;
}

/** What a file's blocks add up to: the sha256 of their digests, in order. */
export const fileDigest = (digests: readonly Buffer[]): Buffer =>
  crypto.hash('sha256', Buffer.concat(digests), 'buffer');
