// The encryption format: round trips at every chunk boundary; a wrong key, a changed byte, a
// dropped, reordered or truncated chunk, and bytes after the end are all refused.
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import {
  CRYPT_MAGIC,
  DecryptingSource,
  decryptStream,
  encryptStream,
  IntegrityError,
  keyFromFileBytes,
} from '../../../src/backup/crypt.ts';

const KEY = crypto.randomBytes(32);
const HEADER = CRYPT_MAGIC.length + 4 + 32 + 32;
const TAG = 16;

async function run(t: NodeJS.ReadWriteStream, input: Buffer, pieces = 3): Promise<Buffer> {
  // Feed the input in uneven pieces, as a file stream would.
  const parts: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  for (let i = 0; i < input.length; i += step) parts.push(input.subarray(i, i + step));
  return buffer(Readable.from(parts).pipe(t));
}

const enc = (plain: Buffer, chunk = 16) => run(encryptStream(KEY, chunk), plain);
const decStream = (sealed: Buffer, key = KEY) => run(decryptStream(key), sealed, 5);

/** The same through DecryptingSource (the backup's read-back), reading a few bytes at a time. */
async function decPull(sealed: Buffer, key = KEY): Promise<Buffer> {
  let at = 0;
  const src = {
    read: async (dst: Buffer) => {
      const n = Math.min(dst.length, 5, sealed.length - at);
      sealed.copy(dst, 0, at, at + n);
      at += n;
      return n;
    },
  };
  const d = new DecryptingSource(src, key);
  const out: Buffer[] = [];
  const b = Buffer.alloc(7);
  for (let n = await d.read(b); n > 0; n = await d.read(b)) out.push(Buffer.from(b.subarray(0, n)));
  return Buffer.concat(out);
}

async function refused(p: Promise<unknown>): Promise<IntegrityError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(IntegrityError);
  return e as IntegrityError;
}

describe.each([
  ['decryptStream', decStream],
  ['DecryptingSource', decPull],
] as const)('backup encryption, read by %s', (_name, dec) => {
  it.each([0, 1, 15, 16, 17, 32, 33, 1000])('round-trips %i bytes with 16-byte chunks', async (n) => {
    const plain = crypto.randomBytes(n);
    const sealed = await enc(plain);
    const chunks = Math.max(1, Math.ceil(n / 16));
    expect(sealed.length).toBe(HEADER + n + chunks * TAG);
    expect(sealed.subarray(HEADER).includes(plain.subarray(0, 8)) && n >= 8).toBe(false);
    expect(await dec(sealed)).toEqual(plain);
  });

  it('gives each file its own salt, so the same input encrypts differently', async () => {
    const plain = Buffer.from('same bytes twice');
    expect((await enc(plain)).equals(await enc(plain))).toBe(false);
  });

  it('refuses a wrong key as a wrong key', async () => {
    const sealed = await enc(crypto.randomBytes(100));
    expect((await refused(dec(sealed, crypto.randomBytes(32)))).reason).toBe('wrong-key');
  });

  it('refuses any single changed byte after the header', async () => {
    const sealed = await enc(crypto.randomBytes(70));
    for (let i = HEADER; i < sealed.length; i += 7) {
      const bad = Buffer.from(sealed);
      bad[i]! ^= 0x01;
      expect((await refused(dec(bad))).reason).toBe('damaged');
    }
  });

  it('refuses a changed chunk size or salt in the header', async () => {
    const sealed = await enc(crypto.randomBytes(70));
    const size = Buffer.from(sealed);
    size.writeUInt32BE(17, CRYPT_MAGIC.length);
    await refused(dec(size));
    const salt = Buffer.from(sealed);
    salt[CRYPT_MAGIC.length + 4]! ^= 1;
    expect((await refused(dec(salt))).reason).toBe('wrong-key');
  });

  it('refuses truncation anywhere, including exactly at a chunk boundary', async () => {
    const sealed = await enc(crypto.randomBytes(64));
    for (const cut of [0, 5, HEADER, HEADER + 10, HEADER + 16 + TAG, HEADER + 2 * (16 + TAG), sealed.length - 1]) {
      await refused(dec(sealed.subarray(0, cut)));
    }
  });

  it('refuses dropped, reordered or appended chunks', async () => {
    const sealed = await enc(crypto.randomBytes(48));
    const c = (i: number) => sealed.subarray(HEADER + i * (16 + TAG), HEADER + (i + 1) * (16 + TAG));
    const h = sealed.subarray(0, HEADER);
    await refused(dec(Buffer.concat([h, c(0), c(2)])));
    await refused(dec(Buffer.concat([h, c(1), c(0), c(2)])));
    await refused(dec(Buffer.concat([sealed, c(2)])));
  });

  it('refuses a file that is not encrypted', async () => {
    expect((await refused(dec(Buffer.alloc(200, 7)))).reason).toBe('format');
  });

  it('reads the key file without its trailing newline and refuses a short one', () => {
    const k = Buffer.from('a'.repeat(40) + '\n');
    expect(keyFromFileBytes(k, 'k').length).toBe(40);
    expect(() => keyFromFileBytes(Buffer.from('short\n'), 'k')).toThrow(/at least 32/);
  });
});
