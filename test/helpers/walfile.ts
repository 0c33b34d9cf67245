// WAL files built byte by byte as etcd's encoder writes them, for the tests of the WAL readers.
import { crc32cUpdate } from '../../src/etcd/disk/snapfile.ts';

export const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};
export const vf = (f: number, v: number) => Buffer.from([...varint(f * 8), ...varint(v)]);
export const bf = (f: number, b: Buffer | string) => {
  const d = Buffer.from(b);
  return Buffer.concat([Buffer.from([...varint(f * 8 + 2), ...varint(d.length)]), d]);
};

/** Writes WAL records as etcd's encoder does: framed, padded to 8 bytes, the crc chained. */
export class WalWriter {
  crc = 0;
  private parts: Buffer[] = [];
  /** Offsets of the records' frames, in order. */
  offsets: number[] = [];
  private size = 0;

  private record(type: number, data: Buffer | undefined, crc: number): this {
    const rec = Buffer.concat([vf(1, type), vf(2, crc), ...(data ? [bf(3, data)] : [])]);
    const pad = (8 - (rec.length % 8)) % 8;
    const head = Buffer.alloc(8);
    head.writeUInt32LE(rec.length, 0);
    head.writeUInt32LE(pad ? ((0x80 | pad) << 24) >>> 0 : 0, 4);
    this.offsets.push(this.size);
    this.parts.push(head, rec, Buffer.alloc(pad));
    this.size += 8 + rec.length + pad;
    return this;
  }

  data(type: number, data: Buffer): this {
    this.crc = crc32cUpdate(this.crc, data);
    return this.record(type, data, this.crc);
  }

  crcRecord(crc = this.crc): this {
    return this.record(4, undefined, crc);
  }

  entry(index: number, term: number, data: Buffer | string = ''): this {
    return this.data(2, Buffer.concat([vf(1, 0), vf(2, term), vf(3, index), bf(4, data)]));
  }

  snapshot(index: number, term: number): this {
    return this.data(5, Buffer.concat([vf(1, index), vf(2, term)]));
  }

  state(term: number, commit: number): this {
    return this.data(3, Buffer.concat([vf(1, term), vf(2, 1), vf(3, commit)]));
  }

  /** The file's bytes, followed by `prealloc` zero bytes (etcd preallocates 64 MB). */
  bytes(prealloc = 4096): Buffer {
    return Buffer.concat([...this.parts, Buffer.alloc(prealloc)]);
  }

  /** Starts the next file: its records continue the chain from a crc record. */
  next(): WalWriter {
    const w = new WalWriter();
    w.crc = this.crc;
    return w.crcRecord(this.crc);
  }
}

export const first = (): WalWriter => new WalWriter().crcRecord(0).data(1, Buffer.from('metadata')).snapshot(0, 0);
