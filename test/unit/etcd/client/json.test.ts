import { describe, expect, it } from 'vitest';
import { v2StoreNodes } from '../../../../src/etcd2/convert/v2store.ts';
import type { HttpClient } from '../../../../src/etcd/client/http.ts';
import { listDir } from '../../../../src/etcd2/v2api.ts';

const SECRET = 'hunter2-the-value';

/** A client whose every answer is `text`, streamed in one chunk. */
const answering = (text: string): HttpClient => ({
  endpoint: 'http://127.0.0.1:1',
  text: async () => ({ status: 200, body: text, headers: {} }),
  stream: async () => ({ status: 200, chunks: [text] as unknown as AsyncIterable<string> }),
  close: () => {},
});

async function errorOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return String((e as Error).message);
  }
  throw new Error('no error');
}

describe('JSON that holds values: a parse error never quotes it', () => {
  it('a v2 listing with a broken node', async () => {
    const broken = `{"action":"get","node":{"dir":true,"nodes":[{"key":"/k","value":${SECRET}}]}}`;
    const msg = await errorOf(async () => {
      for await (const n of listDir(answering(broken), '/')) void n;
    });
    expect(msg).not.toContain(SECRET.slice(0, 7));
    expect(msg).toMatch(/not valid JSON \(\d+ characters; not shown/);
  });

  it('a v2 store in a snapshot file with a broken node', async () => {
    const store =
      '{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"",' +
      '"Children":{"1":{"Path":"/1/k","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z",' +
      `"Value":${SECRET},"Children":null}}}}`;
    const msg = await errorOf(async () => [...v2StoreNodes(Buffer.from(store))]);
    expect(msg).not.toContain(SECRET.slice(0, 7));
    expect(msg).toMatch(/not valid JSON/);
  });
});
