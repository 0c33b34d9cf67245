// zstd for one archive pass: one compression and one decompression context, used again for every
// block (each block is a frame of its own, as zstdCompressSync makes it), writing straight into
// a buffer the caller gives. zlib's one-shot calls made a context and a few output buffers per
// block: garbage the GC took late, and the process's memory grew with the db. Node has no public
// call that writes into a given buffer, so this drives a zlib object's native handle the way
// zlib's own sync calls do; without it (another Node) the one-shot calls are used.
import zlib from 'node:zlib';

const { ZSTD_e_end, ZSTD_c_compressionLevel } = zlib.constants;
const LEVEL = 1;

interface Handle {
  writeSync(
    flush: number,
    input: Buffer,
    inOff: number,
    inLen: number,
    out: Buffer,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

interface Engine {
  z: zlib.ZstdCompress | zlib.ZstdDecompress;
  handle: Handle;
  /** [bytes of output room left, bytes of input left], after each writeSync. */
  state: Uint32Array;
  error: string | undefined;
}

function engine(z: zlib.ZstdCompress | zlib.ZstdDecompress): Engine | undefined {
  const { _handle: handle, _writeState: state } = z as unknown as { _handle?: Handle; _writeState?: unknown };
  if (typeof handle?.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array))
    return undefined;
  const e: Engine = { z, handle, state, error: undefined };
  // A native handle's one callback, as zlib sets it; not an event target.
  // oxlint-disable-next-line unicorn/prefer-add-event-listener
  handle.onerror = (message) => {
    e.error = message;
  };
  return e;
}

/** Runs one frame's step; returns [bytes written to out, bytes of input used], or undefined on an error. */
function step(e: Engine, input: Buffer, out: Buffer): [number, number] | undefined {
  e.error = undefined;
  e.handle.writeSync(ZSTD_e_end, input, 0, input.length, out, 0, out.length);
  const [room, left] = e.state as unknown as [number, number];
  if (e.error !== undefined || room > out.length || left > input.length) return undefined;
  return [out.length - room, input.length - left];
}

export class Zstd {
  private c: Engine | undefined;
  private d: Engine | undefined;
  private readonly scratch = Buffer.alloc(64);
  /** The native handles (false: the one-shot calls, as on a Node without them; tested both ways). */
  private readonly native: boolean;

  constructor(native = true) {
    this.native = native;
  }

  /**
   * `src` compressed into `out` as one frame; the frame's length, or undefined when it does not fit
   * in `out` (then the block is better stored as it is).
   */
  compress(src: Buffer, out: Buffer): number | undefined {
    if (this.native) this.c ??= engine(zlib.createZstdCompress({ params: { [ZSTD_c_compressionLevel]: LEVEL } }));
    if (!this.c) {
      const packed = zlib.zstdCompressSync(src, { params: { [ZSTD_c_compressionLevel]: LEVEL } });
      return packed.length <= out.length ? packed.copy(out) : undefined;
    }
    const r = step(this.c, src, out);
    // The frame did not fit (its end is still to come), or failed: this context is dropped.
    if (!r || r[1] !== src.length || r[0] === out.length) {
      this.drop('c');
      return undefined;
    }
    return r[0];
  }

  /**
   * The frame `packed` decompressed into `out`; true when it is one whole frame of exactly
   * `out.length` bytes, and nothing else.
   */
  decompress(packed: Buffer, out: Buffer): boolean {
    if (this.native) this.d ??= engine(zlib.createZstdDecompress());
    if (!this.d) {
      try {
        const plain = zlib.zstdDecompressSync(packed, { maxOutputLength: Math.max(out.length, 1) });
        return plain.length === out.length && plain.copy(out) === out.length;
      } catch {
        return false;
      }
    }
    // Whatever a damaged frame before left behind is gone.
    this.d.handle.reset();
    const r = step(this.d, packed, out);
    if (!r || r[0] !== out.length) return this.failed();
    // The rest of the input must end the frame without another byte of output.
    const more = step(this.d, packed.subarray(r[1]), this.scratch);
    if (!more || more[0] !== 0 || r[1] + more[1] !== packed.length) return this.failed();
    return true;
  }

  close(): void {
    this.drop('c');
    this.drop('d');
  }

  private failed(): false {
    this.drop('d');
    return false;
  }

  private drop(which: 'c' | 'd'): void {
    this[which]?.z.close();
    this[which] = undefined;
  }
}
