import { describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isHidden, readV2Store, V2StoreScanner, v2StoreNodes } from '../../../../src/etcd2/convert/v2store.ts';
import { encodeSnapFile } from '../../../../src/etcd/disk/snapfile.ts';

const node = (p: string, c: number, m: number, exp: string, value: string, children: string) =>
  `{"Path":${JSON.stringify(p)},"CreatedIndex":${c},"ModifiedIndex":${m},"ExpireTime":"${exp}",` +
  `"Value":${JSON.stringify(value)},"Children":${children}}`;
const Z = '0001-01-01T00:00:00Z';

describe('v2StoreNodes', () => {
  it("gives every node under /1 (hidden ones too), dirs before their contents, and stops at the tree's end", () => {
    const tricky = 'a "quoted" \\ value, with {braces}, [brackets], "Children":{ and \\"';
    const hk = node('/1/_h/k', 5, 6, '2026-11-26T13:00:00.123456789Z', tricky, 'null');
    const ab = node('/1/a/b', 7, 7, Z, 'ü€', 'null');
    const ae = node('/1/a/e', 8, 8, Z, '', '{}');
    const keys = node(
      '/1',
      0,
      0,
      Z,
      '',
      `{${[
        `"_h":${node('/1/_h', 5, 5, Z, '', `{"k":${hk}}`)}`,
        `"a":${node('/1/a', 4, 4, Z, '', `{"b":${ab},"e":${ae}}`)}`,
      ].join(',')}}`,
    );
    const members = node('/0', 0, 0, Z, '', `{"version":${node('/0/version', 3, 3, Z, '3.3.0', 'null')}}`);
    const text =
      `{"Root":${node('/', 0, 0, Z, '', `{"0":${members},"1":${keys}}`)},` +
      '"WatcherHub":{"EventHistory":{"Queue":{"Events":[{"action":"set","node":{"key":"/1/x","value":"v"}}]}}},' +
      '"CurrentIndex":8}';
    expect([...v2StoreNodes(Buffer.from(text))]).toEqual([
      { key: '/', dir: true, createdIndex: 0, modifiedIndex: 0 },
      { key: '/_h', dir: true, createdIndex: 5, modifiedIndex: 5 },
      { key: '/_h/k', value: tricky, expiration: '2026-11-26T13:00:00.123456789Z', createdIndex: 5, modifiedIndex: 6 },
      { key: '/a', dir: true, createdIndex: 4, modifiedIndex: 4 },
      { key: '/a/b', value: 'ü€', createdIndex: 7, modifiedIndex: 7 },
      { key: '/a/e', dir: true, createdIndex: 8, modifiedIndex: 8 },
    ]);
    expect(() => [...v2StoreNodes(Buffer.from(text.slice(0, 300)))]).toThrow(/ends inside/);
  });

  it('gives the same nodes from the text in pieces of any size, keeping only the node it is in', () => {
    const big = 'v'.repeat(5000);
    const leaf = (p: string, v: string) => node(p, 2, 2, Z, v, 'null');
    const d = node('/1/_d', 1, 1, Z, '', `{"a":${leaf('/1/_d/a', big)},"b":${leaf('/1/_d/b', '"}{')}}`);
    const one = node('/1', 0, 0, Z, '', `{"_d":${d},"k":${leaf('/1/k', 'x')}}`);
    const text = `{"Root":${node('/', 0, 0, Z, '', `{"1":${one}}`)},"CurrentIndex":2}`;
    const whole = v2StoreNodes(Buffer.from(text));
    expect(whole.map((n) => n.key)).toEqual(['/', '/_d', '/_d/a', '/_d/b', '/k']);
    for (const size of [1, 3, 7, 64, 1000]) {
      const s = new V2StoreScanner();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...s.push(Buffer.from(text.slice(i, i + size))));
      expect(s.complete).toBe(true);
      expect(got, `pieces of ${size}`).toEqual(whole);
    }
  });

  it('reads a snapshot file in chunks and checks its CRC', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2store-'));
    try {
      const keys = Array.from(
        { length: 3000 },
        (_, i) => `"k${i}":${node(`/1/k${i}`, i + 1, i + 1, Z, 'x'.repeat(200), 'null')}`,
      );
      const one = node('/1', 0, 0, Z, '', `{${keys.join(',')}}`);
      const store = Buffer.from(`{"Root":${node('/', 0, 0, Z, '', `{"1":${one}}`)},"CurrentIndex":3000}`);
      const file = path.join(dir, 'a.snap');
      await fs.writeFile(file, encodeSnapFile({ store, metadata: Buffer.from([0x10, 0x05]) }));
      const r = await readV2Store(file, 0, path.join(dir, 'hidden'));
      expect(r.summary.converted.keys).toBe(3000);
      const bytes = await fs.readFile(file);
      bytes[bytes.length - 100]! ^= 1;
      await fs.writeFile(file, bytes);
      await expect(readV2Store(file, 0, path.join(dir, 'hidden'))).rejects.toThrow(/crc does not match/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('calls a node hidden when a name on its path starts with _', () => {
    expect(['/_a', '/a/_b', '/_a/b', '/a/b_', '/a_/b'].map(isHidden)).toEqual([true, true, true, false, false]);
  });
});
