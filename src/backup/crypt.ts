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
import type { PullSource } from './follow.ts';

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

/**
 * Encrypts a stream of bytes pushed to it: the header, then each chunk once a byte after it has
 * come (the last chunk is only known at the end). The plain bytes are copied out as they come: the
 * caller's buffers are free again when `push` returns.
 */
export class Sealer {
  private readonly header: Buffer;
  private readonly key: Buffer;
  private readonly stage: Buffer;
  private staged = 0;
  private i = 0;
  private started = false;

  constructor(keyMaterial: Uint8Array, chunkSize = DEFAULT_CHUNK) {
    const salt = crypto.randomBytes(32);
    const { key, check } = derive(keyMaterial, salt);
    this.key = key;
    this.header = Buffer.alloc(HEADER_LEN);
    CRYPT_MAGIC.copy(this.header, 0);
    this.header.writeUInt32BE(chunkSize, CRYPT_MAGIC.length);
    salt.copy(this.header, CRYPT_MAGIC.length + 4);
    check.copy(this.header, CRYPT_MAGIC.length + 36);
    this.stage = Buffer.allocUnsafeSlow(chunkSize);
  }

  /** The encrypted bytes that `plain` completes. */
  push(plain: Buffer): Buffer[] {
    const out = this.start();
    let at = 0;
    while (at < plain.length) {
      if (this.staged === this.stage.length) {
        out.push(...this.seal(this.stage, false));
        this.staged = 0;
      }
      const n = plain.copy(this.stage, this.staged, at);
      this.staged += n;
      at += n;
    }
    return out;
  }

  /** The rest: the last chunk (perhaps empty), and the header if nothing came. */
  end(): Buffer[] {
    const out = this.start();
    out.push(...this.seal(this.stage.subarray(0, this.staged), true));
    this.staged = 0;
    return out;
  }

  private start(): Buffer[] {
    if (this.started) return [];
    this.started = true;
    return [this.header];
  }

  private seal(plain: Buffer, final: boolean): Buffer[] {
    const c = crypto.createCipheriv('aes-256-gcm', this.key, nonce(this.i));
    c.setAAD(aad(this.header, this.i, final));
    this.i++;
    const sealed = c.update(plain);
    c.final();
    return [sealed, c.getAuthTag()];
  }
}

/** A Transform that encrypts what is written to it. */
export function encryptStream(keyMaterial: Uint8Array, chunkSize = DEFAULT_CHUNK): Transform {
  const sealer = new Sealer(keyMaterial, chunkSize);
  return new Transform({
    ...ROOM,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      for (const b of sealer.push(chunk)) this.push(b);
      cb();
    },
    flush(cb: TransformCallback) {
      for (const b of sealer.end()) this.push(b);
      cb();
    },
  });
}

/** Reads what `read` gives into `dst` until it is full or the source ends; how many bytes. */
async function readFull(src: PullSource, dst: Buffer): Promise<number> {
  let at = 0;
  while (at < dst.length) {
    const n = await src.read(dst.subarray(at));
    if (n === 0) break;
    at += n;
  }
  return at;
}

/**
 * The plain bytes of an encrypted file that `src` reads, as a PullSource: each chunk is read into
 * one buffer, used again, and authenticated before any of its bytes is handed out. It fails with
 * an IntegrityError, as decryptStream does.
 */
export class DecryptingSource implements PullSource {
  private readonly src: PullSource;
  private readonly keyMaterial: Uint8Array;
  private header: Buffer | undefined;
  private key: Buffer | undefined;
  /** A sealed chunk and the byte after it (which tells whether it is the last). */
  private sealed: Buffer | undefined;
  /** Bytes of the next chunk already read (the byte read after the last chunk). */
  private carried = 0;
  private plain: Buffer | undefined;
  private plainAt = 0;
  private i = 0;
  private done = false;

  constructor(src: PullSource, keyMaterial: Uint8Array) {
    this.src = src;
    this.keyMaterial = keyMaterial;
  }

  async read(dst: Buffer): Promise<number> {
    while (!this.plain || this.plainAt === this.plain.length) {
      if (this.done) return 0;
      await this.next();
    }
    const n = this.plain.copy(dst, 0, this.plainAt);
    this.plainAt += n;
    return n;
  }

  private async next(): Promise<void> {
    if (!this.header) {
      const h = Buffer.alloc(HEADER_LEN);
      if ((await readFull(this.src, h)) < HEADER_LEN)
        throw new IntegrityError('truncated', 'the encrypted file is truncated (shorter than its header)');
      const { key, chunkSize } = readHeader(h, this.keyMaterial);
      this.header = h;
      this.key = key;
      this.sealed = Buffer.allocUnsafeSlow(chunkSize + TAG_LEN + 1);
    }
    const s = this.sealed!;
    const full = s.length - 1;
    if (this.carried) s[0] = s[full]!;
    const got = this.carried + (await readFull(this.src, s.subarray(this.carried)));
    // A byte after a whole chunk: it is not the last, and that byte starts the next one.
    const final = got <= full;
    this.carried = final ? 0 : 1;
    this.plain = openChunk(this.key!, this.header!, this.i, s.subarray(0, Math.min(got, full)), final);
    this.plainAt = 0;
    this.i++;
    this.done = final;
  }
}

/** One sealed chunk (ciphertext and tag) authenticated and decrypted. */
function openChunk(key: Buffer, header: Buffer, i: number, sealed: Buffer, final: boolean): Buffer {
  if (sealed.length < TAG_LEN)
    throw new IntegrityError('truncated', 'the encrypted file is truncated (its last chunk is incomplete)');
  const d = crypto.createDecipheriv('aes-256-gcm', key, nonce(i));
  d.setAAD(aad(header, i, final));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  try {
    const out = d.update(sealed.subarray(0, sealed.length - TAG_LEN));
    // GCM yields every byte from update; final only checks the tag.
    d.final();
    return out;
  } catch {
    throw final
      ? new IntegrityError(
          'damaged',
          `the encrypted file is damaged or truncated: chunk ${i} (the last one read) fails authentication`,
        )
      : new IntegrityError('damaged', `the encrypted file is damaged: chunk ${i} fails authentication`);
  }
}

/** A Transform that decrypts and authenticates; it fails with an IntegrityError. */
export function decryptStream(keyMaterial: Uint8Array): Transform {
  const buf = new Bytes();
  let header: Buffer | undefined;
  let key: Buffer | undefined;
  let chunkSize = 0;
  let i = 0;
  const open = (sealed: Buffer, final: boolean): Buffer => openChunk(key!, header!, i++, sealed, final);
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
