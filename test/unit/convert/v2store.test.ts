import { describe, expect, it } from 'vitest';
import { isHidden, v2StoreNodes } from '../../../src/convert/v2store.ts';

const node = (p: string, c: number, m: number, exp: string, value: string, children: string) =>
  `{"Path":${JSON.stringify(p)},"CreatedIndex":${c},"ModifiedIndex":${m},"ExpireTime":"${exp}","Value":${JSON.stringify(value)},"Children":${children}}`;
const Z = '0001-01-01T00:00:00Z';

describe('v2StoreNodes', () => {
  it('gives every node under /1 (hidden ones too), directories before their contents, and stops at the end of the tree', () => {
    const tricky = 'a "quoted" \\ value, with {braces}, [brackets], "Children":{ and \\"';
    const keys = node('/1', 0, 0, Z, '', `{${[
      `"_h":${node('/1/_h', 5, 5, Z, '', `{"k":${node('/1/_h/k', 5, 6, '2026-11-26T13:00:00.123456789Z', tricky, 'null')}}`)}`,
      `"a":${node('/1/a', 4, 4, Z, '', `{"b":${node('/1/a/b', 7, 7, Z, 'ü€', 'null')},"e":${node('/1/a/e', 8, 8, Z, '', '{}')}}`)}`,
    ].join(',')}}`);
    const members = node('/0', 0, 0, Z, '', `{"version":${node('/0/version', 3, 3, Z, '3.3.0', 'null')}}`);
    const text = `{"Root":${node('/', 0, 0, Z, '', `{"0":${members},"1":${keys}}`)},"WatcherHub":{"EventHistory":{"Queue":{"Events":[{"action":"set","node":{"key":"/1/x","value":"v"}}]}}},"CurrentIndex":8}`;
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

  it('calls a node hidden when a name on its path starts with _', () => {
    expect(['/_a', '/a/_b', '/_a/b', '/a/b_', '/a_/b'].map(isHidden)).toEqual([true, true, true, false, false]);
  });
});
