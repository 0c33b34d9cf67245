// The temporary etcd's start (src/etcd/server.ts): how long it took to answer is kept apart from
// what it waited for after. A fake etcd (a lifecycle case, no data) answers at once but says its
// cluster version is not decided for 1.5 s, as etcd does when it misses its forced version check
// (up to 4 s): the attach step takes the answer time, not the ready time, as the target's start.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withTempEtcd } from '../../src/etcd/server.ts';
import { parseVersion } from '../../src/version.ts';
import { fixtureBinDir } from '../helpers/fixtures.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';

const FAKE = `
const a = process.argv;
const port = Number(new URL(a[a.indexOf("--listen-client-urls") + 1]).port);
const t0 = Date.now();
require("http").createServer((q, r) => {
  q.resume();
  q.on("end", () => r.end(q.url === "/version"
    ? JSON.stringify({ etcdserver: "3.5.30", etcdcluster: Date.now() - t0 < 1500 ? "not_decided" : "3.5.0" })
    : JSON.stringify({ header: { revision: "1" } })));
}).listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
`;

describe('TempEtcd', () => {
  it('keeps when it first answered apart from when it was ready (its cluster version decided late)', async () => {
    const fake = path.join(await tmpDir(), 'fake-etcd.cjs');
    await fs.writeFile(fake, FAKE);
    const bin = await fixtureBinDir({ 'etcd-3.5.30': `exec ${process.execPath} ${fake} "$@"` });
    const [port, peer] = [await freePort(), await freePort()];
    const t0 = Date.now();
    const { answered, ready } = await withTempEtcd({
      bin: path.join(bin, 'etcd-3.5.30'), version: parseVersion('3.5.30'), dataDir: await tmpDir(), storage: 'etcd3', env: {}, timeoutMs: 10_000,
      member: { name: 'm1', initialCluster: `m1=http://127.0.0.1:${peer}`, listenPeerUrls: `http://127.0.0.1:${peer}`, initialAdvertisePeerUrls: `http://127.0.0.1:${peer}`, port, extraArgs: [] },
    }, async (e) => ({ answered: e.answeredAt! - t0, ready: Date.now() - t0 }));
    expect(ready).toBeGreaterThanOrEqual(1500);
    expect(answered).toBeLessThan(1000);
  });
});
