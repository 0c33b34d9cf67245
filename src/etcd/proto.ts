// Just enough protobuf for etcd's v3 messages: a writer of the request fields we send and a reader
// that walks the fields of an answer. Field numbers are those of etcd's rpc.proto and kv.proto.

/** Builds one message; nested messages are written with `message`. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }

  private varint(v: number | bigint): void {
    const out: number[] = [];
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      while (v >= 0x80) {
        out.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      out.push(v);
    } else {
      let n = BigInt.asUintN(64, BigInt(v));
      while (n >= 0x80n) {
        out.push(Number(n & 0x7fn) | 0x80);
        n >>= 7n;
      }
      out.push(Number(n));
    }
    this.push(Buffer.from(out));
  }

  /** An int64/uint64/bool field; zero is not written (proto3). */
  int(field: number, v: bigint | number | boolean): this {
    const n = typeof v === 'boolean' ? Number(v) : v;
    if (n !== 0 && n !== 0n) {
      this.varint(field << 3);
      this.varint(n);
    }
    return this;
  }

  /** A bytes field; empty is not written (proto3). */
  bytes(field: number, b: Uint8Array | undefined): this {
    if (b && b.length) {
      this.varint((field << 3) | 2);
      this.varint(b.length);
      this.push(Buffer.from(b.buffer, b.byteOffset, b.length));
    }
    return this;
  }

  /** A nested message, written even when empty (a oneof member must be present). */
  message(field: number, m: ProtoWriter): this {
    this.varint((field << 3) | 2);
    this.varint(m.size);
    for (const p of m.parts) this.push(p);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/**
 * One field of a message: its number and its value, a varint (`int`, exact up to 2^53; `big`
 * always exact) or the bytes of a length-delimited field.
 */
export interface Field {
  n: number;
  int: number;
  big: () => bigint;
  bytes: Buffer | undefined;
}

/** The fields of a message, in order. Fixed 32/64-bit fields (none in the messages read here) are skipped. */
export function* fields(buf: Buffer): Generator<Field> {
  let i = 0;
  let start = 0;
  const varint = (): number => {
    start = i;
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated protobuf varint');
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  };
  const bigAt = (from: number, to: number) => () => {
    let v = 0n;
    for (let j = to - 1; j >= from; j--) v = (v << 7n) | BigInt(buf[j]! & 0x7f);
    return BigInt.asIntN(64, v);
  };
  while (i < buf.length) {
    const key = varint();
    const n = Math.floor(key / 8);
    switch (key % 8) {
      case 0: {
        const int = varint();
        yield { n, int, big: bigAt(start, i), bytes: undefined };
        break;
      }
      case 2: {
        const len = varint();
        if (i + len > buf.length) throw new Error('truncated protobuf field');
        yield { n, int: 0, big: () => 0n, bytes: buf.subarray(i, i + len) };
        i += len;
        break;
      }
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`unexpected protobuf wire type ${key % 8}`);
    }
  }
}
