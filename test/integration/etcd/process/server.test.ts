// The temporary etcd's start (src/etcd/process/server.ts), with a fake etcd (a lifecycle case, no data)
// that answers at once but says its cluster version is the minor below for a while, as etcd does
// when its version monitor misses the leader's first commit (then it decides 4 s later):
// - a lone member still below 300 ms after its first answer is stopped and started again, once;
// - how long the start took is kept apart from what it waited for after, and it is the start that
//   counted (the attach step takes it as the target etcd's start).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withTempEtcd } from '../../../../src/etcd/process/server.ts';
import { parseVersion } from '../../../../src/version.ts';
import { fixtureBinDir } from '../../../helpers/fixtures.ts';
import { freePort, tmpDir } from '../../../helpers/tmp.ts';

// FAKE_DECIDE_MS: for each spawn in turn, how long after its start it still reports 3.4 (the last
// value for any later spawn). Each spawn appends a line to <data-dir>/spawns.
const FAKE = `
const a = process.argv;
const arg = (f) => a[a.indexOf(f) + 1];
const fs = require("fs");
const spawns = require("path").join(arg("--data-dir"), "spawns");
fs.appendFileSync(spawns, "spawn\\n");
const n = fs.readFileSync(spawns, "utf8").trim().split("\\n").length;
const plan = process.env.FAKE_DECIDE_MS.split(",").map(Number);
const decideMs = plan[Math.min(n, plan.length) - 1];
const t0 = Date.now();
require("http").createServer((q, r) => {
  q.resume();
  q.on("end", () => r.end(q.url === "/version"
    ? JSON.stringify({ etcdserver: "3.5.30", etcdcluster: Date.now() - t0 < decideMs ? "3.4.0" : "3.5.0" })
    : JSON.stringify({ header: { revision: "1" } })));
}).listen(Number(new URL(arg("--listen-client-urls")).port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
`;

async function start(decideMs: string) {
  const fake = path.join(await tmpDir(), 'fake-etcd.cjs');
  await fs.writeFile(fake, FAKE);
  const bin = await fixtureBinDir({ 'etcd-3.5.30': `exec ${process.execPath} ${fake} "$@"` });
  const [port, peer, dataDir] = [await freePort(), await freePort(), await tmpDir()];
  const lines: string[] = [];
  const t0 = Date.now();
  const r = await withTempEtcd(
    {
      bin: path.join(bin, 'etcd-3.5.30'),
      version: parseVersion('3.5.30'),
      dataDir,
      storage: 'etcd3',
      env: { FAKE_DECIDE_MS: decideMs },
      timeoutMs: 10_000,
      log: (l, x) => lines.push(`${x?.level ?? 'info'}: ${l}`),
      member: {
        name: 'm1',
        initialCluster: `m1=http://127.0.0.1:${peer}`,
        listenPeerUrls: `http://127.0.0.1:${peer}`,
        initialAdvertisePeerUrls: `http://127.0.0.1:${peer}`,
        port,
        extraArgs: [],
      },
    },
    async (e) => ({ start: e.answeredAt! - e.spawnedAt, ready: Date.now() - t0 }),
  );
  const spawns = (await fs.readFile(path.join(dataDir, 'spawns'), 'utf8')).trim().split('\n').length;
  return { ...r, spawns, lines };
}

describe('TempEtcd', () => {
  it('starts a lone member again when its cluster version is not decided 300 ms after it first answered', async () => {
    // The first start would decide after 4 s, the second at once.
    const r = await start('4000,0');
    expect(r.spawns).toBe(2);
    expect(r.ready).toBeLessThan(2500);
    expect(r.lines).toEqual([
      'info: etcd 3.5.30 still had cluster version 3.4 300 ms after it first answered: started again',
      "debug: its version monitor missed the leader's first commit and would look again 4 s after its start",
    ]);
  });

  it('starts it again only once; the start kept is the one that counted, except what it waited for after', async () => {
    const r = await start('1500');
    expect(r.spawns).toBe(2);
    expect(r.ready).toBeGreaterThanOrEqual(1500 + 300);
    // Its own start, not the first one's, nor the wait for the cluster version.
    expect(r.start).toBeLessThan(1000);
  });

  it('does not start it again when it decides in time', async () => {
    const r = await start('100');
    expect(r.spawns).toBe(1);
    expect(r.lines).toEqual([]);
  });
});
