// The transformer's records in revision order: in memory, and through the spill and bucket files
// when they are more than the budget; stable for equal revisions; the files removed once read.
import { promises as fs } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RevisionOrder } from '../../../../src/etcd2/convert/revorder.ts';
import { tmpDir } from '../../../helpers/tmp.ts';

/** A record as the transformer sends it: 8-byte LE length, then the bytes (here: the label, padded). */
function record(label: string, size: number): Buffer {
  const body = Buffer.alloc(size, '.');
  body.write(label);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(size));
  return Buffer.concat([head, body]);
}

/** Splits the output back into records. */
function records(chunks: Buffer[]): string[] {
  const out = Buffer.concat(chunks);
  const got: string[] = [];
  for (let pos = 0; pos < out.length;) {
    const len = Number(out.readBigUInt64LE(pos));
    got.push(out.toString('latin1', pos + 8, pos + 8 + len).replace(/\.+$/, ''));
    pos += 8 + len;
  }
  return got;
}

/** A deterministic shuffle (xorshift), so a failure can be replayed. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = Math.abs(s) % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

async function run(entries: Array<[number, string, number]>, budget?: number) {
  const dir = await tmpDir();
  const order = new RevisionOrder(dir, budget);
  for (const [rev, label, size] of entries) order.add(rev, record(label, size));
  const spilled = (await fs.readdir(dir)).includes('records.spill');
  const chunks = [...order.sorted()];
  return { got: records(chunks), chunks, left: await fs.readdir(dir), count: order.count, spilled };
}

/** What a stable sort by revision gives. */
const expected = (entries: Array<[number, string, number]>) =>
  entries
    .map((e, i) => [e, i] as const)
    .sort((a, b) => a[0][0] - b[0][0] || a[1] - b[1])
    .map(([e]) => e[1]);

describe('RevisionOrder', () => {
  const entries = shuffled(
    Array.from({ length: 5000 }, (_, i) => [10 + i * 3, `k${i}`, 20 + (i % 97)] as [number, string, number]),
    7,
  );

  it('gives the records back sorted by revision, in memory', async () => {
    const { got, left, count, spilled } = await run(entries);
    expect(spilled).toBe(false);
    expect(count).toBe(5000);
    expect(got).toEqual(expected(entries));
    expect(got[0]).toBe('k0');
    expect(left).toEqual([]);
  });

  it('gives the same through the spill file and buckets when the budget is small, and removes them', async () => {
    // About 600 KB of records against a 16 KiB budget: dozens of buckets.
    const { got, left, spilled } = await run(entries, 16 << 10);
    expect(spilled).toBe(true);
    expect(got).toEqual(expected(entries));
    expect(left).toEqual([]);
  });

  it('keeps the order of equal revisions, in memory and through buckets', async () => {
    const dups = shuffled(
      Array.from({ length: 2000 }, (_, i) => [100 + (i % 50), `d${i}`, 30] as [number, string, number]),
      11,
    );
    expect((await run(dups)).got).toEqual(expected(dups));
    const small = await run(dups, 4096);
    expect(small.spilled).toBe(true);
    expect(small.got).toEqual(expected(dups));
  });

  it('takes a record bigger than the budget and than a chunk', async () => {
    const big: Array<[number, string, number]> = [
      [50, 'small-a', 10],
      [7, 'huge', (1 << 20) + 5000],
      [3, 'small-b', 10],
      [60, 'mid', 9000],
    ];
    for (const budget of [undefined, 8192]) {
      const { got, left, spilled } = await run(big, budget);
      expect(spilled).toBe(budget !== undefined);
      expect(got).toEqual(['small-b', 'huge', 'small-a', 'mid']);
      expect(left).toEqual([]);
    }
  });

  it('gives nothing for no records', async () => {
    expect((await run([])).chunks).toEqual([]);
  });

  it('writes its files for the owner only', async () => {
    const dir = await tmpDir();
    const order = new RevisionOrder(dir, 1024);
    for (let i = 0; i < 100; i++) order.add(100 - i, record(`r${i}`, 50));
    expect((await fs.stat(`${dir}/records.spill`)).mode & 0o777).toBe(0o600);
    expect(records([...order.sorted()])[0]).toBe('r99');
  });
});
