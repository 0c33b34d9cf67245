// The TTLs a v2-to-v3 step leaves for the attach-ttls step at the end of the chain. A text file,
// made durable before the swap that moves it into the data dir, removed (durably) by the attach
// step once every key has its lease. First line: the checksum of the v3 keyspace as the conversion
// left it (keys with a pending TTL counted as TTL keys). Then one line per key with a TTL: its
// ABSOLUTE expiry (ms since the epoch, so what is left is computed when the lease is granted), the
// key (base64), its (key, value) digest (hex) and its value (base64): the attach puts each key with
// its value, checked against the digest first, instead of having etcd read it (ignore_value), which
// makes etcd's part of each put about a third cheaper (bench/attach-limit.ts). The file lives in the
// data dir beside the db that holds the same values, with the same mode (0600). A file of an earlier
// build (v1) has no values: its keys are put with ignore_value, as that build did.
import { promises as fs } from 'node:fs';
import type { Checksum } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import { errno, fsyncFile } from '../../fsx.ts';
import { SpillWriter } from './spill.ts';
import { ttlLineFields, type TtlLine } from './ttl.ts';

const MAGIC = '#etcd-migrate pending TTLs v2';
/** An earlier build's file: three fields a line (no value). */
const MAGIC_V1 = '#etcd-migrate pending TTLs v1';
/** A key: base64 of at least one byte (the gRPC client writes it into a request as it decodes it). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;

const header = (c: Checksum): Array<string | number> => [MAGIC, c.keys, c.ttlKeys, c.kv, c.ttl];

/** Writes the file and fsyncs it; returns how many keys it holds. */
export async function writePendingTtls(
  file: string,
  expected: Checksum,
  lines: AsyncIterable<TtlLine>,
): Promise<number> {
  const out = new SpillWriter(file);
  try {
    await out.write(header(expected));
    for await (const line of lines) {
      if (line[3] === undefined) throw new Error(`a pending TTL line without its value (key ${line[1]})`);
      await out.write(ttlLineFields(line));
    }
  } finally {
    await out.close();
  }
  await fsyncFile(file);
  return out.lines - 1;
}

/**
 * The same file from a spill file whose lines are already in this format (the transformer's): the
 * header, then the spill's bytes as they are, not parsed and written again (250,000 keys: ~1 s
 * saved). Fsynced; returns how many keys it holds.
 */
export async function writePendingTtlsFromSpill(file: string, expected: Checksum, spillFile: string): Promise<number> {
  const out = await fs.open(file, 'w', 0o600);
  let keys = 0;
  try {
    await out.write(`${header(expected).join('\t')}\n`);
    const src = await fs.open(spillFile, 'r');
    try {
      const buf = Buffer.allocUnsafe(BLOCK);
      for (let n; (n = (await src.read(buf, 0, BLOCK, null)).bytesRead) > 0;) {
        for (let at = buf.indexOf(10); at >= 0 && at < n; at = buf.indexOf(10, at + 1)) keys++;
        await out.write(buf, 0, n);
      }
    } finally {
      await src.close();
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return keys;
}

export interface PendingTtls {
  /** The v3 keyspace when the conversion ended. */
  expected: Checksum;
  /** The keys with a TTL, read from the file on each call (memory does not grow with the key count). */
  lines: () => AsyncGenerator<TtlLine>;
  /** The same, a block of the file at a time (a few thousand lines): no await per key. */
  blocks: () => AsyncGenerator<TtlLine[]>;
}

/**
 * Bytes read at a time: the lines of one block are what is in memory. Small, because they live
 * across the reads and transactions: what outlives V8's young-generation collections makes it grow.
 */
const BLOCK = 32 << 10;

export async function readPendingTtls(file: string): Promise<PendingTtls> {
  const damaged = (what: string) =>
    new StepError(
      `the pending TTL file ${file} is damaged (${what}); ` +
        'restore the backup taken before the etcd2 -> etcd3 conversion and rerun',
    );
  let head: string[];
  try {
    head = (await firstLine(file)).split('\t');
  } catch (e) {
    if (errno(e) === 'ENOENT')
      throw new StepError(
        `the pending TTL file ${file} is missing, ` +
          'so the TTLs of the etcd2 -> etcd3 conversion cannot be attached; ' +
          'restore the backup taken before the conversion and rerun',
      );
    throw e;
  }
  if ((head[0] !== MAGIC && head[0] !== MAGIC_V1) || head.length !== 5)
    throw damaged('its first line is not the header');
  const fields = head[0] === MAGIC ? 4 : 3;
  const expected: Checksum = { keys: Number(head[1]), ttlKeys: Number(head[2]), kv: head[3]!, ttl: head[4]! };
  if (
    !Number.isSafeInteger(expected.keys) ||
    !Number.isSafeInteger(expected.ttlKeys) ||
    !/^[0-9a-f]{16}$/.test(expected.kv) ||
    !/^[0-9a-f]{16}$/.test(expected.ttl)
  )
    throw damaged('an unreadable header');
  // Every line is checked on the first whole read; a step reads the file several times, and the
  // later reads (the same bytes) only split the lines (BENCHMARKS.md).
  let checked = false;
  const parse = (line: string, n: number): TtlLine => {
    const f = line.split('\t');
    const exp = Number(f[0]);
    // A value is checked against the digest before it is used (leases.ts): here only its length.
    if (
      !checked &&
      (f.length !== fields ||
        !Number.isSafeInteger(exp) ||
        !BASE64.test(f[1]!) ||
        !/^[0-9a-f]{1,16}$/.test(f[2]!) ||
        (fields === 4 && f[3]!.length % 4 !== 0))
    )
      throw damaged(`line ${n}`);
    return fields === 4 ? [exp, f[1]!, BigInt(`0x${f[2]}`), f[3]!] : [exp, f[1]!, BigInt(`0x${f[2]}`)];
  };
  async function* blocks(): AsyncGenerator<TtlLine[]> {
    let n = 0;
    for await (const text of textLines(file)) {
      const out: TtlLine[] = [];
      for (const line of text) if (n++ > 0 && line) out.push(parse(line, n));
      if (out.length) yield out;
    }
    checked = true;
  }
  async function* lines(): AsyncGenerator<TtlLine> {
    for await (const b of blocks()) yield* b;
  }
  return { expected, lines, blocks };
}

/** The lines of a text file, a block at a time (a line cut by a block's end comes whole in the next). */
async function* textLines(file: string): AsyncGenerator<string[]> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    let rest = '';
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, BLOCK, null);
      if (!bytesRead) break;
      const text = rest + buf.toString('latin1', 0, bytesRead);
      const end = text.lastIndexOf('\n');
      rest = text.slice(end + 1);
      if (end >= 0) yield text.slice(0, end).split('\n');
    }
    if (rest) yield [rest];
  } finally {
    await fh.close();
  }
}

async function firstLine(file: string): Promise<string> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    return text.slice(0, text.includes('\n') ? text.indexOf('\n') : text.length);
  } finally {
    await fh.close();
  }
}
