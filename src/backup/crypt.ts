// Authenticated, streaming encryption of backup files: AES-256-GCM over fixed-size chunks.
//
// File: header | chunk 0 | chunk 1 | ... | last chunk
//   header   = magic "EMENC\0\1\n" (8) | chunk size, u32 BE (4) | salt (32) | key check (32)
//   chunk i  = AES-256-GCM(key, nonce = 0000 || u64 BE i, aad = header || u64 BE i || final?1:0)
//              ciphertext (chunk size bytes; the last one 0..chunk size) || tag (16)
//   key      = HKDF-SHA256(key file bytes, salt, "etcd-migrate backup encryption v1")
//   key check = HKDF-SHA256(key file bytes, salt, "etcd-migrate backup key check v1")
// A fresh random salt gives every file its own key, so counter nonces never repeat. Every chunk is
// authenticated with its index and whether it is the last: a changed, reordered, dropped or
// truncated chunk fails, and so does anything after the last one. The key check tells a wrong key
// apart from a damaged file.
import crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, UsageError } from '../errors.ts';

export { IntegrityError };

export const CRYPT_MAGIC = Buffer.from('EMENC\x00\x01\n', 'latin1');
const HEADER_LEN = CRYPT_MAGIC.length + 4 + 32 + 32;
const TAG_LEN = 16;
export const DEFAULT_CHUNK = 1 << 20;
const MAX_CHUNK = 16 << 20;
/** Room for a few chunks on each side, so that reading, encryption and writing overlap. */
const ROOM = { readableHighWaterMark: 8 * DEFAULT_CHUNK, writableHighWaterMark: 8 * DEFAULT_CHUNK };
/** Key files shorter than this are refused: the key file is a random secret, not a password. */
export const MIN_KEY_BYTES = 32;

function derive(ikm: Uint8Array, salt: Uint8Array): { key: Buffer; check: Buffer } {
  const key = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, 'etcd-migrate backup encryption v1', 32));
  const check = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, 'etcd-migrate backup key check v1', 32));
  return { key, check };
}

function nonce(i: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(i), 4);
  return n;
}

function aad(header: Buffer, i: number, final: boolean): Buffer {
  const a = Buffer.alloc(header.length + 9);
  header.copy(a);
  a.writeBigUInt64BE(BigInt(i), header.length);
  a[header.length + 8] = final ? 1 : 0;
  return a;
}

/** Collects bytes and hands out exact-length pieces, copying only the bytes a piece spans. */
class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    if (b.length) {
      this.parts.push(b);
      this.length += b.length;
    }
  }
  take(n: number): Buffer {
    const first = this.parts[0];
    if (first && first.length >= n) {
      this.parts[0] = first.subarray(n);
      if (this.parts[0].length === 0) this.parts.shift();
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - at);
      p.copy(out, at, 0, k);
      at += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

/** A Transform that encrypts what is written to it. */
export function encryptStream(keyMaterial: Uint8Array, chunkSize = DEFAULT_CHUNK): Transform {
  const salt = crypto.randomBytes(32);
  const { key, check } = derive(keyMaterial, salt);
  const header = Buffer.alloc(HEADER_LEN);
  CRYPT_MAGIC.copy(header, 0);
  header.writeUInt32BE(chunkSize, CRYPT_MAGIC.length);
  salt.copy(header, CRYPT_MAGIC.length + 4);
  check.copy(header, CRYPT_MAGIC.length + 36);
  const buf = new Bytes();
  let i = 0;
  let started = false;
  const seal = (plain: Buffer, final: boolean): Buffer[] => {
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce(i));
    c.setAAD(aad(header, i, final));
    i++;
    const sealed = c.update(plain);
    c.final();
    return [sealed, c.getAuthTag()];
  };
  return new Transform({
    ...ROOM,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!started) {
        this.push(header);
        started = true;
      }
      buf.push(chunk);
      // Keep at least one byte back: the last chunk is only known at the end.
      while (buf.length > chunkSize) for (const b of seal(buf.take(chunkSize), false)) this.push(b);
      cb();
    },
    flush(cb: TransformCallback) {
      if (!started) this.push(header);
      for (const b of seal(buf.take(buf.length), true)) this.push(b);
      cb();
    },
  });
}

/** A Transform that decrypts and authenticates; it fails with an IntegrityError. */
export function decryptStream(keyMaterial: Uint8Array): Transform {
  const buf = new Bytes();
  let header: Buffer | undefined;
  let key: Buffer | undefined;
  let chunkSize = 0;
  let i = 0;
  const open = (sealed: Buffer, final: boolean): Buffer => {
    if (sealed.length < TAG_LEN)
      throw new IntegrityError('truncated', 'the encrypted file is truncated (its last chunk is incomplete)');
    const d = crypto.createDecipheriv('aes-256-gcm', key!, nonce(i));
    d.setAAD(aad(header!, i, final));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
    try {
      const out = d.update(sealed.subarray(0, sealed.length - TAG_LEN));
      // GCM yields every byte from update; final only checks the tag.
      d.final();
      i++;
      return out;
    } catch {
      throw final
        ? new IntegrityError(
            'damaged',
            `the encrypted file is damaged or truncated: chunk ${i} (the last one read) fails authentication`,
          )
        : new IntegrityError('damaged', `the encrypted file is damaged: chunk ${i} fails authentication`);
    }
  };
  return new Transform({
    ...ROOM,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        buf.push(chunk);
        if (!header) {
          if (buf.length < HEADER_LEN) return cb();
          header = buf.take(HEADER_LEN);
          ({ key, chunkSize } = readHeader(header, keyMaterial));
        }
        while (buf.length > chunkSize + TAG_LEN) this.push(open(buf.take(chunkSize + TAG_LEN), false));
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        if (!header) throw new IntegrityError('truncated', 'the encrypted file is truncated (shorter than its header)');
        this.push(open(buf.take(buf.length), true));
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}

function readHeader(header: Buffer, keyMaterial: Uint8Array): { key: Buffer; chunkSize: number } {
  if (!header.subarray(0, CRYPT_MAGIC.length).equals(CRYPT_MAGIC)) {
    throw new IntegrityError('format', 'not a file encrypted by etcd-migrate (unknown header)');
  }
  const chunkSize = header.readUInt32BE(CRYPT_MAGIC.length);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK)
    throw new IntegrityError('damaged', `the encrypted file's header is damaged (chunk size ${chunkSize})`);
  const salt = header.subarray(CRYPT_MAGIC.length + 4, CRYPT_MAGIC.length + 36);
  const { key, check } = derive(keyMaterial, salt);
  if (!crypto.timingSafeEqual(check, header.subarray(CRYPT_MAGIC.length + 36, HEADER_LEN))) {
    throw new IntegrityError('wrong-key', 'the backup encryption key does not match this file (wrong key file)');
  }
  return { key, chunkSize };
}

/** The key file's bytes without a trailing newline; refuses a key that is too short. Pure. */
export function keyFromFileBytes(bytes: Buffer, file: string): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const key = bytes.subarray(0, end);
  if (key.length < MIN_KEY_BYTES) {
    throw new UsageError(
      `the backup encryption key file ${file} holds ${key.length} bytes; ` +
        `it needs at least ${MIN_KEY_BYTES} random bytes, e.g. openssl rand -base64 48 > ${file}`,
    );
  }
  return key;
}
