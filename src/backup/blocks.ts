// One block of a file in a version 2 archive (docs/backups.md): all zeros (a kind byte alone),
// stored, or zstd-compressed, each with the sha256 of its plain bytes. Hashing runs on a thread of
// its own (hasher.ts); zstd runs on the main thread meanwhile: zlib's async calls each left a
// context behind until the next GC (1.3 GB of memory at a 4 GB db), its sync calls free theirs.
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { blockBuffer, type Hasher } from './hasher.ts';

export const BLOCK_SIZE = 1 << 20;
export const MAX_BLOCK_SIZE = 16 << 20;
export type Codec = 'none' | 'zstd';

export const KIND_ZERO = 0;
export const KIND_STORED = 1;
export const KIND_ZSTD = 2;

const ZSTD_LEVEL = { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } };

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
 * it may be moved to the hashing thread, so only the returned parts hold its bytes afterwards.
 */
export async function encodeBlock(block: Buffer, codec: Codec, hasher: Hasher): Promise<EncodedBlock> {
  if (isZero(block)) return { parts: [ZERO_KIND], digest: zeroDigest(block.length), zero: true, size: block.length };
  // Compressed first, then hashed: the block's memory is away while it is hashed.
  const packed = codec === 'zstd' ? zlib.zstdCompressSync(block, ZSTD_LEVEL) : undefined;
  const { buf: plain, digest: d } = await hasher.hash(block);
  if (packed && packed.length + 4 < plain.length) {
    const head = Buffer.alloc(5);
    head[0] = KIND_ZSTD;
    head.writeUInt32BE(packed.length, 1);
    return { parts: [head, packed, d], digest: d, zero: false, size: plain.length };
  }
  return { parts: [Buffer.of(KIND_STORED), plain, d], digest: d, zero: false, size: plain.length };
}

/** A compressed block's plain bytes, in a blockBuffer; undefined when they are not exactly `size` bytes long. */
export function unpack(packed: Buffer, size: number): Buffer | undefined {
  let plain: Buffer;
  try {
    plain = zlib.zstdDecompressSync(packed, { maxOutputLength: Math.max(size, 1) });
  } catch {
    return undefined;
  }
  if (plain.length !== size) return undefined;
  const own = blockBuffer(size);
  plain.copy(own);
  return own;
}

/** What a file's blocks add up to: the sha256 of their digests, in order. */
export const fileDigest = (digests: readonly Buffer[]): Buffer =>
  crypto.hash('sha256', Buffer.concat(digests), 'buffer');
