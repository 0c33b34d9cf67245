// How fast etcd itself attaches keys to a lease: 25,000 keys (300-byte values) put with a lease,
// 1,000 per transaction, over gRPC, on a fresh etcd of each version (the ceiling of the attach-ttls
// step's pass, which uses 8 in flight): with ignore_value (etcd reads each value) at 4, 8 and 16
// transactions in flight, and with the value itself at 8 (what the step does since the pending file
// holds the values), in the same rounds.
// Usage: node bench/attach-limit.ts [bin-dir=.cache/etcd-bin] [port=24300]
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withGrpc } from '../src/etcd/client/grpc.ts';
import { withTempEtcd } from '../src/etcd/process/server.ts';
import { parseVersion } from '../src/version.ts';
import { machine, median } from './lib.ts';

const binDir = path.resolve(process.argv[2] ?? '.cache/etcd-bin');
const port = Number(process.argv[3] ?? 24300);
const N = 25_000;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const keys = Array.from({ length: N }, (_, i) =>
  b64(`/registry/events/ns-${i % 40}/event-${String(i).padStart(6, '0')}`),
);

console.log(`machine: ${machine()}`);
for (const v of ['3.3.25', '3.5.30']) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-attach-'));
  const peer = `http://127.0.0.1:${port + 1}`;
  try {
    await withTempEtcd(
      {
        bin: path.join(binDir, `etcd-${v}`),
        version: parseVersion(v),
        dataDir: dir,
        storage: 'etcd3',
        env: {},
        timeoutMs: 30_000,
        flags: ['--max-txn-ops=1000'],
        member: {
          name: 'm1',
          initialCluster: `m1=${peer}`,
          listenPeerUrls: peer,
          initialAdvertisePeerUrls: peer,
          port,
          extraArgs: [],
        },
      },
      (e) =>
        withGrpc(e.endpoint, async (g) => {
          const value = b64('x'.repeat(300));
          for (let t = 0; t < N / 1000; t++) {
            const r = await fetch(`${e.endpoint}${v.startsWith('3.3') ? '/v3beta' : '/v3'}/kv/txn`, {
              method: 'POST',
              body: JSON.stringify({
                success: keys.slice(t * 1000, (t + 1) * 1000).map((key) => ({ request_put: { key, value } })),
              }),
            });
            if (r.status !== 200) throw new Error(await r.text());
          }
          const rates = new Map<string, number[]>();
          for (let round = 0; round < 3; round++) {
            for (const [name, inFlight, withValue] of [
              ['ignore_value, 4 in flight', 4, false],
              ['ignore_value, 8 in flight', 8, false],
              ['ignore_value, 16 in flight', 16, false],
              ['with the value, 8 in flight', 8, true],
            ] as const) {
              const id = await g.grant(3600);
              const ops = keys.map((key) => ({
                request_put: withValue ? { key, lease: id, value } : { key, lease: id, ignore_value: true as const },
              }));
              let next = 0;
              const t0 = performance.now();
              await Promise.all(
                Array.from({ length: inFlight }, async () => {
                  while (next < N) {
                    const from = next;
                    next += 1000;
                    await g.txn(ops.slice(from, from + 1000));
                  }
                }),
              );
              rates.set(name, [...(rates.get(name) ?? []), N / ((performance.now() - t0) / 1000)]);
            }
          }
          for (const [name, r] of rates)
            console.log(`etcd ${v}: ${name}: median ${Math.round(median(r))} keys/s (${r.map(Math.round).join(', ')})`);
        }),
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
