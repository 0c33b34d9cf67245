import { describe, expect, it } from 'vitest';
import { ChildNodeScanner, CONCATENATED } from '../../../src/etcd2/v2nodes.ts';
import { prefixEnd } from '../../../src/etcd/client/v3.ts';

const listing = JSON.stringify({
  action: 'get',
  node: {
    key: '/registry',
    dir: true,
    nodes: [
      { key: '/registry/a', value: '{"x":"}]\\\\","y":[1,{"z":2}]}', modifiedIndex: 4, createdIndex: 4 },
      { key: '/registry/events', dir: true, modifiedIndex: 5, createdIndex: 5 },
      {
        key: '/registry/b"q',
        value: 'ü€\n\\"',
        expiration: '2026-11-26T19:50:45.353184769Z',
        ttl: 3600,
        modifiedIndex: 6,
        createdIndex: 6,
      },
    ],
    modifiedIndex: 4,
    createdIndex: 4,
  },
});

describe('ChildNodeScanner', () => {
  it('hands out the child nodes of a listing, whatever the chunk sizes', () => {
    const want = (JSON.parse(listing) as { node: { nodes: unknown[] } }).node.nodes;
    for (const size of [1, 2, 3, 7, 64, listing.length]) {
      const s = new ChildNodeScanner();
      const got: unknown[] = [];
      for (let i = 0; i < listing.length; i += size)
        got.push(...s.push(listing.slice(i, i + size)).map((t) => JSON.parse(t)));
      expect(got, `chunk size ${size}`).toEqual(want);
      expect(s.complete).toBe(true);
    }
  });
  it('hands out nothing for an empty directory, and tells a cut answer', () => {
    const s = new ChildNodeScanner();
    expect(s.push('{"action":"get","node":{"key":"/x","dir":true,"modifiedIndex":4,"createdIndex":4}}')).toEqual([]);
    expect(s.complete).toBe(true);
    const cut = new ChildNodeScanner();
    cut.push(listing.slice(0, listing.length - 10));
    expect(cut.complete).toBe(false);
  });
  it('keeps no more text than the child being read', () => {
    const s = new ChildNodeScanner();
    const big = JSON.stringify({
      action: 'get',
      node: { dir: true, nodes: Array.from({ length: 1000 }, (_, i) => ({ key: `/k${i}`, value: 'v'.repeat(100) })) },
    });
    let n = 0;
    for (let i = 0; i < big.length; i += 500) {
      n += s.push(big.slice(i, i + 500)).length;
      expect((s as unknown as { buf: string }).buf.length).toBeLessThan(700);
    }
    expect(n).toBe(1000);
  });
});

describe('prefixEnd', () => {
  const end = (p: number[]) => [...Buffer.from(prefixEnd(Buffer.from(p)), 'base64')];
  it('raises the last byte, dropping trailing 0xff bytes', () => {
    expect(end([0x2f, 0x61])).toEqual([0x2f, 0x62]);
    expect(end([0x61, 0xff, 0xff])).toEqual([0x62]);
    expect(end([0xff])).toEqual([0]);
  });
  it('hands out the nodes that etcdctl migrate writes one after the other, whatever the chunk sizes', () => {
    const nodes = (JSON.parse(listing) as { node: { nodes: unknown[] } }).node.nodes;
    const text = nodes.map((n) => JSON.stringify(n)).join('');
    for (const size of [1, 5, 64, text.length]) {
      const s = new ChildNodeScanner(CONCATENATED);
      const got: unknown[] = [];
      for (let i = 0; i < text.length; i += size)
        got.push(...s.push(text.slice(i, i + size)).map((t) => JSON.parse(t)));
      expect(got, `chunk size ${size}`).toEqual(nodes);
      expect(s.complete).toBe(true);
    }
    const cut = new ChildNodeScanner(CONCATENATED);
    expect(cut.push(text.slice(0, -3))).toHaveLength(nodes.length - 1);
    expect(cut.complete).toBe(false);
  });
});
