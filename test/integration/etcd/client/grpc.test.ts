// The gRPC client (src/etcd/client/grpc.ts) against real etcd: the same answers as the JSON gateway client,
// etcd's errors recognised, paging over binary keys, no hang on a dead endpoint.
import { beforeAll, describe, expect, it } from 'vitest';
import { V3Grpc, withGrpc } from '../../../../src/etcd/client/grpc.ts';
import { httpClient } from '../../../../src/etcd/client/http.ts';
import { V3, V3Error, type KeyValue } from '../../../../src/etcd/client/v3.ts';
import { parseVersion } from '../../../../src/version.ts';
import { requireBinaries } from '../../../helpers/env.ts';
import { startEtcd } from '../../../helpers/etcd.ts';
import { freePort, onCleanup, tmpDir } from '../../../helpers/tmp.ts';

beforeAll(requireBinaries);

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const all = async (pages: AsyncGenerator<KeyValue[]>) => {
  const out: KeyValue[] = [];
  // The gateway answers more fields (revisions, version); the conversion reads these three.
  for await (const page of pages)
    out.push(
      ...page.map(({ key, value, lease }) => ({ key, ...(value ? { value } : {}), ...(lease ? { lease } : {}) })),
    );
  return out;
};

describe.each(['3.3.25', '3.5.30'])('gRPC client on etcd %s', (version) => {
  it('ranges, counts, grants and attaches as the gateway client does', async () => {
    const m = await startEtcd(version, await tmpDir(), { extraArgs: ['--max-txn-ops', '1000'] });
    const gw = new V3(httpClient(m.endpoint), parseVersion(version));
    const g = new V3Grpc(m.endpoint);
    onCleanup(async () => g.close());
    // Binary keys (0xff, a zero byte), an empty value, a key that sorts last.
    const keys = [
      Buffer.from('/a'),
      Buffer.from([0x2f, 0x00, 0x01]),
      Buffer.from([0xff, 0xfe]),
      ...Array.from({ length: 20 }, (_, i) => Buffer.from(`/k/${String(i).padStart(2, '0')}`)),
    ];
    const id = await g.grant(300);
    expect(await g.timeToLive(id)).toBeGreaterThan(295);
    // Values are put through the gateway, leases attached through gRPC (ignore_value keeps them).
    for (const [i, k] of keys.entries()) {
      await httpClient(m.endpoint).text(
        'POST',
        `${version.startsWith('3.3') ? '/v3beta' : '/v3'}/kv/put`,
        JSON.stringify({ key: b64(k), value: i === 0 ? '' : b64(`v${i}`) }),
      );
    }
    await g.txn(
      keys.slice(0, 5).map((k) => ({ request_put: { key: b64(k), lease: id, ignore_value: true as const } })),
    );
    // A lease with keys is not revoked (that would delete them); an empty one is, through either client.
    for (const api of [g, gw]) {
      expect(await api.revokeIfEmpty(id)).toBe(false);
      const empty = await g.grant(300);
      expect(await api.revokeIfEmpty(empty)).toBe(true);
      expect(await g.timeToLive(empty)).toBe(-1);
    }
    // One revision per put, one for the transaction: the store's revision, the same through both.
    expect(await g.revision()).toBe(1 + keys.length + 1);
    expect(await gw.revision()).toBe(await g.revision());

    const viaGrpc = await all(g.range(undefined, undefined, { pageSize: 4 }));
    const viaGateway = await all(gw.range());
    expect(viaGrpc).toEqual(viaGateway);
    expect(viaGrpc).toHaveLength(keys.length);
    expect(viaGrpc.filter((kv) => kv.lease === id)).toHaveLength(5);
    expect(await g.count()).toBe(keys.length);
    for (const api of [g, gw]) {
      const raw: Array<{ key: string; value?: string; lease?: true }> = [];
      for await (const page of api.rawRange())
        raw.push(
          ...page.map((kv) => ({
            key: b64(kv.key),
            ...(kv.value.length ? { value: b64(kv.value) } : {}),
            ...(kv.leased ? { lease: true as const } : {}),
          })),
        );
      expect(raw).toEqual(viaGrpc.map((kv) => ({ ...kv, ...(kv.lease ? { lease: true } : {}) })));
    }
    expect(await g.count(b64('/k/'), b64('/k0'))).toBe(20);

    await g.txn([{ request_delete_range: { key: b64(keys[1]!) } }]);
    expect(await g.count()).toBe(keys.length - 1);
  });

  it("recognises etcd's errors: unknown lease, ignore_value put on a missing key, too many operations", async () => {
    const m = await startEtcd(version, await tmpDir());
    await withGrpc(m.endpoint, async (g) => {
      const err = (p: Promise<unknown>) =>
        p.then(
          () => undefined,
          (e: unknown) => e as V3Error,
        );
      await httpClient(m.endpoint).text(
        'POST',
        `${version.startsWith('3.3') ? '/v3beta' : '/v3'}/kv/put`,
        JSON.stringify({ key: b64('/x'), value: b64('v') }),
      );
      const noLease = await err(g.txn([{ request_put: { key: b64('/x'), lease: '12345', ignore_value: true } }]));
      expect(noLease).toBeInstanceOf(V3Error);
      expect(noLease?.leaseNotFound).toBe(true);
      const noKey = await err(g.txn([{ request_put: { key: b64('/missing'), lease: '0', ignore_value: true } }]));
      expect(noKey?.keyNotFound).toBe(true);
      const tooMany = await err(
        g.txn(Array.from({ length: 200 }, (_, i) => ({ request_delete_range: { key: b64(`/d${i}`) } }))),
      );
      expect(tooMany?.message).toMatch(/gRPC status 3: etcdserver: too many operations in txn request/);
    });
  });
});

it('pages by bytes with no page size: 10,000 keys, then ~8 MiB; every key once, in order, 250 at a time', async () => {
  const m = await startEtcd('3.3.25', await tmpDir(), { extraArgs: ['--max-txn-ops', '1000'] });
  const put = (i: number) => ({ request_put: { key: b64(`/k/${String(i).padStart(6, '0')}`), value: b64(`v${i}`) } });
  for (let t = 0; t < 25; t++) {
    const r = await fetch(`${m.endpoint}/v3beta/kv/txn`, {
      method: 'POST',
      body: JSON.stringify({ success: Array.from({ length: 1000 }, (_, i) => put(t * 1000 + i)) }),
    });
    expect(r.status).toBe(200);
  }
  await withGrpc(m.endpoint, async (g) => {
    const sizes: number[] = [];
    let last = '';
    let n = 0;
    for await (const page of g.rawRange()) {
      sizes.push(page.length);
      for (const kv of page) {
        const k = kv.key.toString();
        expect(k > last).toBe(true);
        last = k;
        n++;
      }
    }
    expect(n).toBe(25_000);
    // Two requests (10,000 keys, then the 15,000 left: far below 8 MiB), decoded 250 keys at a time.
    expect(g.ranges).toBe(2);
    expect(sizes).toEqual(Array(100).fill(250));
  });
});

it('fails, without hanging, when nothing listens', async () => {
  const g = new V3Grpc(`http://127.0.0.1:${await freePort()}`);
  onCleanup(async () => g.close());
  await expect(g.count()).rejects.toThrow(/ECONNREFUSED/);
});
