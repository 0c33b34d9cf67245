// The pending TTL file (src/etcd2/convert/pending.ts): read back exactly as written, across the blocks it
// is read in, and a damaged line named by its number.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvDigest, type Checksum } from '../../../../src/checksum.ts';
import { readPendingTtls, writePendingTtls, writePendingTtlsFromSpill } from '../../../../src/etcd2/convert/pending.ts';
import { SpillWriter } from '../../../../src/etcd2/convert/spill.ts';
import { ttlLineFields } from '../../../../src/etcd2/convert/ttl.ts';
import type { TtlLine } from '../../../../src/etcd2/convert/ttl.ts';
import { tmpDir } from '../../../helpers/tmp.ts';

const expected: Checksum = { keys: 12, ttlKeys: 3, kv: '0123456789abcdef', ttl: 'fedcba9876543210' };

async function* gen(lines: TtlLine[]) {
  yield* lines;
}

describe('pending TTL file', () => {
  it('reads back every line in order, by block and by line (lines cut by the 32 KiB blocks come whole)', async () => {
    const file = path.join(await tmpDir(), 'pending');
    // ~6,000 lines of varying length: several blocks, their ends falling inside lines.
    const lines: TtlLine[] = Array.from({ length: 6000 }, (_, i) => {
      const key = Buffer.concat([Buffer.from(`/registry/events/ns-${i % 7}/e-${i}-`), Buffer.alloc(i % 61, 0xff)]);
      return [
        1_800_000_000_000 + i * 37,
        key.toString('base64'),
        kvDigest(key, `v${i}`),
        i % 5 ? Buffer.from(`v${i}`).toString('base64') : '',
      ];
    });
    expect(await writePendingTtls(file, expected, gen(lines))).toBe(lines.length);
    expect((await fs.stat(file)).size).toBeGreaterThan(8 * 32 * 1024);
    const p = await readPendingTtls(file);
    expect(p.expected).toEqual(expected);
    const blocks: TtlLine[][] = [];
    for await (const b of p.blocks()) blocks.push(b);
    expect(blocks.length).toBeGreaterThan(8);
    expect(blocks.flat()).toEqual(lines);
    const one: TtlLine[] = [];
    for await (const l of p.lines()) one.push(l);
    expect(one).toEqual(lines);
  });

  it("from a spill file of the same lines (the transformer's): same bytes, keys counted across blocks", async () => {
    const dir = await tmpDir();
    const lines: TtlLine[] = Array.from({ length: 6000 }, (_, i) => [
      1_800_000_000_000 + i,
      Buffer.from(`/k/${i}`.padEnd(20 + (i % 50), 'x')).toString('base64'),
      BigInt(i * 7919 + 1),
      Buffer.alloc(i % 9, i).toString('base64'),
    ]);
    const spill = new SpillWriter(path.join(dir, 'spill'));
    for (const l of lines) await spill.write(ttlLineFields(l));
    await spill.close();
    expect(await writePendingTtlsFromSpill(path.join(dir, 'copied'), expected, path.join(dir, 'spill'))).toBe(
      lines.length,
    );
    expect(await writePendingTtls(path.join(dir, 'written'), expected, gen(lines))).toBe(lines.length);
    expect(await fs.readFile(path.join(dir, 'copied'))).toEqual(await fs.readFile(path.join(dir, 'written')));
    expect((await fs.stat(path.join(dir, 'copied'))).mode & 0o777).toBe(0o600);
  });

  it('names a damaged line by its number, in whichever block it lies', async () => {
    const file = path.join(await tmpDir(), 'pending');
    const lines: TtlLine[] = Array.from({ length: 5000 }, (_, i) => [
      1_800_000_000_000 + i,
      Buffer.from(`/k/${i}`.padEnd(80, 'x')).toString('base64'),
      BigInt(i + 1),
      'dmFsdWU=',
    ]);
    await writePendingTtls(file, expected, gen(lines));
    const text = (await fs.readFile(file, 'latin1')).split('\n');
    text[4001] = text[4001]!.replace(/\t[0-9a-f]+\t/, '\tnot-hex\t');
    await fs.writeFile(file, text.join('\n'), 'latin1');
    const p = await readPendingTtls(file);
    const read = async () => {
      for await (const b of p.blocks()) void b;
    };
    await expect(read()).rejects.toThrow(/pending TTL file .* is damaged \(line 4002\)/);
    // A key that is not base64 is damage too (it would be put as other bytes).
    text[4001] = lines[4000]!
      .map((f, i) => (i === 1 ? `${f}`.replace(/^../, '!!') : i === 2 ? (f as bigint).toString(16) : f))
      .join('\t');
    await fs.writeFile(file, text.join('\n'), 'latin1');
    await expect(read()).rejects.toThrow(/is damaged \(line 4002\)/);
    // A value cut short, and a line without its value (its digest is checked where it is used, leases.ts).
    text[4001] = lines[4000]!
      .map((f, i) => (i === 2 ? (f as bigint).toString(16) : i === 3 ? 'dmFsdWU' : f))
      .join('\t');
    await fs.writeFile(file, text.join('\n'), 'latin1');
    await expect(read()).rejects.toThrow(/is damaged \(line 4002\)/);
    text[4001] = lines[4000]!
      .slice(0, 3)
      .map((f, i) => (i === 2 ? (f as bigint).toString(16) : f))
      .join('\t');
    await fs.writeFile(file, text.join('\n'), 'latin1');
    await expect(read()).rejects.toThrow(/is damaged \(line 4002\)/);
    text[4001] = lines[4000]!.map((f, i) => (i === 2 ? (f as bigint).toString(16) : f)).join('\t');
    await fs.writeFile(file, text.join('\n'), 'latin1');
    await read();
  });

  it("reads an older build's v1 file (no values: put with ignore_value); writes no line without a value", async () => {
    const file = path.join(await tmpDir(), 'pending');
    const key = Buffer.from('/registry/events/e1').toString('base64');
    await fs.writeFile(
      file,
      `#etcd-migrate pending TTLs v1\t12\t3\t0123456789abcdef\tfedcba9876543210\n1800000000000\t${key}\tabc\n`,
    );
    const p = await readPendingTtls(file);
    expect(p.expected).toEqual(expected);
    const got: TtlLine[] = [];
    for await (const l of p.lines()) got.push(l);
    expect(got).toEqual([[1_800_000_000_000, key, 0xabcn]]);
    // v1 lines have three fields: one with a fourth is damage.
    await fs.writeFile(
      file,
      '#etcd-migrate pending TTLs v1\t12\t3\t0123456789abcdef\tfedcba9876543210\n' +
        `1800000000000\t${key}\tabc\tdmFsdWU=\n`,
    );
    await expect(
      (async () => {
        for await (const l of (await readPendingTtls(file)).lines()) void l;
      })(),
    ).rejects.toThrow(/is damaged \(line 2\)/);
    await expect(
      writePendingTtls(path.join(path.dirname(file), 'new'), expected, gen([[1_800_000_000_000, key, 0xabcn]])),
    ).rejects.toThrow(/without its value/);
  });
});
