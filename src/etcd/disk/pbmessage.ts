// Protobuf messages read the way Go's gogoproto Unmarshal reads them: a known field on the wrong
// wire type is an error, an unknown field is passed over, the last occurrence of a field wins.
import { ProtoReader } from '../client/proto.ts';

export type FieldKind = 'varint' | 'bytes';
export type Schema = Readonly<Record<number, FieldKind>>;

/** Thrown for bytes that are not the message they should be (truncated, bad wire type). */
export class ProtoFormatError extends Error {
  override readonly name = 'ProtoFormatError';
}

/** The known fields of a message: varints as numbers (exact up to 2^53), bytes as views. */
export function readMessage(buf: Buffer, schema: Schema): Map<number, number | Buffer> {
  const out = new Map<number, number | Buffer>();
  const r = new ProtoReader(buf);
  try {
    while (!r.done) {
      const key = r.varint();
      const n = Math.floor(key / 8);
      const wire = key % 8;
      if (n === 0) throw new ProtoFormatError('field number 0');
      const kind = schema[n];
      if (kind === 'varint' && wire === 0) out.set(n, r.varint());
      else if (kind === 'bytes' && wire === 2) out.set(n, r.bytes());
      else if (kind) throw new ProtoFormatError(`field ${n} has wire type ${wire}`);
      else r.skip(wire);
    }
  } catch (e) {
    if (e instanceof ProtoFormatError) throw e;
    throw new ProtoFormatError((e as Error).message);
  }
  // A fixed-width field that runs past the end moves pos beyond the buffer without throwing.
  if (r.pos !== buf.length) throw new ProtoFormatError('a field runs past the end of the message');
  return out;
}

/** Whether `buf` parses as `schema` (see readMessage). */
export function parses(buf: Buffer, schema: Schema): boolean {
  try {
    readMessage(buf, schema);
    return true;
  } catch (e) {
    if (e instanceof ProtoFormatError) return false;
    throw e;
  }
}

export const num = (m: Map<number, number | Buffer>, n: number): number => {
  const v = m.get(n);
  return typeof v === 'number' ? v : 0;
};

export const bytesOf = (m: Map<number, number | Buffer>, n: number): Buffer | undefined => {
  const v = m.get(n);
  return Buffer.isBuffer(v) ? v : undefined;
};
