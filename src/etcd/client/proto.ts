// Just enough protobuf for etcd's v3 messages: a writer of the request fields we send and a reader
// that walks the fields of an answer. Field numbers are those of etcd's rpc.proto and kv.proto.

/**
 * Builds one message in a single growing buffer (no allocation per field: a 1,000-op transaction is
 * built in tens of microseconds); nested messages are written with `message`, pre-encoded fields
 * with `raw`. `reset` empties it for reuse.
 */
export class ProtoWriter {
  private buf: Buffer;
  private len = 0;

  constructor(capacity = 64) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get size(): number {
    return this.len;
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  private varint(v: number | bigint): void {
    this.room(10);
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      while (v >= 0x80) {
        this.buf[this.len++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buf[this.len++] = v;
    } else {
      let n = BigInt.asUintN(64, BigInt(v));
      while (n >= 0x80n) {
        this.buf[this.len++] = Number(n & 0x7fn) | 0x80;
        n >>= 7n;
      }
      this.buf[this.len++] = Number(n);
    }
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
      this.room(b.length);
      this.buf.set(b, this.len);
      this.len += b.length;
    }
    return this;
  }

  /** A bytes field given in base64, decoded straight into the message; empty is not written. */
  base64(field: number, s: string): this {
    const n = Buffer.byteLength(s, 'base64');
    if (n) {
      this.varint((field << 3) | 2);
      this.varint(n);
      this.room(n);
      if (this.buf.write(s, this.len, n, 'base64') !== n)
        throw new Error('a base64 field decodes to fewer bytes than its length');
      this.len += n;
    }
    return this;
  }

  /** A nested message, written even when empty (a oneof member must be present). */
  message(field: number, m: ProtoWriter): this {
    this.varint((field << 3) | 2);
    this.varint(m.len);
    this.room(m.len);
    m.buf.copy(this.buf, this.len, 0, m.len);
    this.len += m.len;
    return this;
  }

  /** Fields encoded before (by another writer's `finish`), as they are. */
  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  reset(): this {
    this.len = 0;
    return this;
  }

  /** The message so far, as a view: valid until the writer is written to again. */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** The message, a copy of its own. */
  finish(): Buffer {
    return Buffer.from(this.view());
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

/** Reads a message field by field from `pos` on; throws on truncated or unknown input. */
export class ProtoReader {
  readonly buf: Buffer;
  pos = 0;
  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** A varint as a number: exact up to 2^53 (bigSince gives it whole). */
  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated protobuf varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  }

  /** The varint that ends at `pos` and began at `from`, as a signed 64-bit integer. */
  bigSince(from: number): bigint {
    let v = 0n;
    for (let j = this.pos - 1; j >= from; j--) v = (v << 7n) | BigInt(this.buf[j]! & 0x7f);
    return BigInt.asIntN(64, v);
  }

  /** A length-delimited field's bytes (a view, not a copy). */
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated protobuf field');
    this.pos += len;
    return this.buf.subarray(this.pos - len, this.pos);
  }

  /** Passes over a field of this wire type. */
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
}

/** The fields of a message, in order. Fixed 32/64-bit fields (none in the messages read here) are skipped. */
export function* fields(buf: Buffer): Generator<Field> {
  const r = new ProtoReader(buf);
  while (!r.done) {
    const key = r.varint();
    const n = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      const from = r.pos;
      const int = r.varint();
      const big = r.bigSince(from);
      yield { n, int, big: () => big, bytes: undefined };
    } else if (wire === 2) yield { n, int: 0, big: () => 0n, bytes: r.bytes() };
    else r.skip(wire);
  }
}

/** An mvccpb.KeyValue as the conversion reads it: key, value (views into the message) and lease ID. */
export interface DecodedKv {
  key: Buffer;
  value: Buffer;
  lease: bigint;
  leased: boolean;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Decodes an mvccpb.KeyValue (key = 1, value = 5, lease = 6; the revisions and version skipped) in one pass. */
export function decodeKeyValue(buf: Buffer): DecodedKv {
  const r = new ProtoReader(buf);
  const kv: DecodedKv = { key: EMPTY, value: EMPTY, lease: 0n, leased: false };
  while (!r.done) {
    const t = r.varint();
    if (t === ((1 << 3) | 2)) kv.key = r.bytes();
    else if (t === ((5 << 3) | 2)) kv.value = r.bytes();
    else if (t === 6 << 3) {
      const from = r.pos;
      r.varint();
      kv.lease = r.bigSince(from);
      kv.leased = kv.lease !== 0n;
    } else r.skip(t % 8);
  }
  if (r.pos !== buf.length) throw new Error('a key overruns its message');
  return kv;
}
