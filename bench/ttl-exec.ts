// Benchmark: how far each lease ends from its key's etcd2 expiry as production sees it: the
// entrypoint converts 3.3.25/etcd2 -> 3.5.30/etcd3 and execs etcd 3.5.30 with the pod's flags, and
// the leases are measured on that etcd. Side by side, on copies of one data dir, in turns:
//   - this checkout (leases granted by the attach step at the end of the chain),
//   - a baseline commit (git archive; e.g. main before the attach step: leases granted at the conversion),
// each with etcd's default --election-timeout (1000 ms) and with 100 ms.
// Usage: node bench/ttl-exec.ts [keys=10000] [rounds=3] [baseline=22912d6] [bin-dir=.cache/etcd-bin] [port-base=23900]
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withTempEtcd } from '../src/etcd/process/server.ts';
import { httpClient } from '../src/etcd/client/http.ts';
import { V3 } from '../src/etcd/client/v3.ts';
import { k8sDataSet, writeV2 } from '../test/helpers/k8sdata.ts';
import { leaseExpiries } from '../test/helpers/lease-ends.ts';
import { machine } from './lib.ts';

const keys = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const baseline = process.argv[4] ?? '22912d6';
const binDir = path.resolve(process.argv[5] ?? '.cache/etcd-bin');
const portBase = Number(process.argv[6] ?? 23900);
const REPO = path.resolve(import.meta.dirname, '..');
const V3530 = { major: 3, minor: 5, patch: 30 };

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-ttl-exec-'));
try {
  // The baseline's sources, run the same way (bin/etcd-migrate.js runs src/ with this checkout's node_modules).
  const base = path.join(work, 'baseline');
  await fs.mkdir(base);
  await execa('sh', ['-c', `git archive ${baseline} | tar -x -C ${base}`], { cwd: REPO });
  await fs.symlink(path.join(REPO, 'node_modules'), path.join(base, 'node_modules'));
  const entries = { ours: path.join(REPO, 'bin/etcd-migrate.js'), baseline: path.join(base, 'bin/etcd-migrate.js') };

  // The data: written once; every copy keeps the absolute expiries etcd gave.
  const data = path.join(work, 'data');
  const peer = `http://127.0.0.1:${portBase + 1}`;
  const member = {
    name: 'm1',
    initialCluster: `m1=${peer}`,
    listenPeerUrls: peer,
    initialAdvertisePeerUrls: peer,
    port: portBase,
    extraArgs: [],
  };
  const set = k8sDataSet(keys);
  const expiries = await withTempEtcd(
    {
      bin: path.join(binDir, 'etcd-3.3.25'),
      version: { major: 3, minor: 3, patch: 25 },
      dataDir: data,
      storage: 'etcd2',
      member,
      env: {},
      timeoutMs: 30_000,
    },
    (e) => writeV2(e.endpoint, set),
  );
  await fs.writeFile(path.join(data, 'version.txt'), '3.3.25/etcd2');

  const results = new Map<string, number[][]>();
  for (let round = 0; round < rounds; round++) {
    for (const [which, entry] of Object.entries(entries)) {
      for (const election of [1000, 100]) {
        const dir = path.join(work, `${which}-${election}-${round}`);
        await fs.cp(data, dir, { recursive: true });
        const client = `http://127.0.0.1:${portBase + 2}`;
        const etcdPeer = `http://127.0.0.1:${portBase + 3}`;
        const etcdFlags = [
          '--name',
          'm1',
          '--listen-client-urls',
          client,
          '--advertise-client-urls',
          client,
          '--listen-peer-urls',
          etcdPeer,
          '--initial-advertise-peer-urls',
          etcdPeer,
          '--initial-cluster',
          `m1=${etcdPeer}`,
          ...(election === 1000 ? [] : ['--heartbeat-interval', '10', '--election-timeout', String(election)]),
        ];
        const p = execa(
          process.execPath,
          [
            entry,
            '--data-dir',
            dir,
            '--target-version',
            '3.5.30',
            '--bin-dir',
            binDir,
            '--name',
            'm1',
            '--port',
            String(portBase + 4),
            '--peer-port',
            String(portBase + 5),
            '--',
            ...etcdFlags,
          ],
          {
            reject: false,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.homedir() },
            extendEnv: false,
            all: true,
            stdin: 'ignore',
          },
        );
        try {
          const c = httpClient(client);
          const v3 = new V3(c, V3530);
          for (let i = 0; ; i++) {
            if (p.exitCode !== null) throw new Error(`${which} exited: ${(await p).all}`);
            const ok = await v3.count().then(
              () => true,
              () => false,
            );
            if (ok) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          const leaseOf = new Map<string, string>();
          for await (const page of v3.range(undefined, undefined, { keysOnly: true })) {
            for (const kv of page)
              if (kv.lease) leaseOf.set(Buffer.from(kv.key, 'base64').toString(), BigInt(kv.lease).toString(16));
          }
          c.close();
          const ends = await leaseExpiries(client, new Set(leaseOf.values()));
          const errors = [...expiries]
            .filter(([k, exp]) => leaseOf.has(k) && exp > Date.now() + 3000)
            .map(([k, exp]) => (ends.get(leaseOf.get(k)!)! - exp) / 1000);
          const label = `${which}, target etcd --election-timeout ${election} ms`;
          results.set(label, [...(results.get(label) ?? []), errors]);
          console.error(
            `round ${round + 1} ${label}: ${errors.length} keys, ` +
              `TTL error ${Math.min(...errors).toFixed(2)} to ${Math.max(...errors).toFixed(2)} s ` +
              `(load ${(await fs.readFile('/proc/loadavg', 'utf8')).split(' ')[0]})`,
          );
        } finally {
          p.kill('SIGTERM');
          await p;
          await fs.rm(dir, { recursive: true, force: true });
        }
      }
    }
  }
  console.log(`machine: ${machine()}; ${keys} keys, ${expiries.size} with a TTL; baseline ${baseline}`);
  console.log('| entrypoint | target etcd election timeout | TTL error per run (min to max, s) | worst |abs| |');
  console.log('|---|---|---|---|');
  for (const [label, runs] of results) {
    const [which, et] = label.split(', target etcd --election-timeout ');
    const worst = Math.max(...runs.flat().map(Math.abs));
    const who =
      which === 'ours' ? 'this branch (attach at the end)' : `baseline ${baseline} (leases at the conversion)`;
    const spans = runs.map((e) => `${Math.min(...e).toFixed(2)} to ${Math.max(...e).toFixed(2)}`).join('; ');
    console.log(`| ${who} | ${et} | ${spans} | ${worst.toFixed(2)} s |`);
  }
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
