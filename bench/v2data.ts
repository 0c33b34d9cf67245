// Makes a 3.3.25 etcd2 data dir holding the Kubernetes-shaped data set (test/helpers/k8sdata.ts),
// written through the v2 API. Usage: node bench/v2data.ts <data-dir> <keys> <bin-dir> <port> <peer-port>
import { promises as fs } from 'node:fs';
import { withTempEtcd } from '../src/etcd/process/server.ts';
import { k8sDataSet, writeV2 } from '../test/helpers/k8sdata.ts';

export async function makeV2DataDir(
  dir: string,
  n: number,
  binDir: string,
  port: number,
  peerPort: number,
): Promise<void> {
  const peer = `http://127.0.0.1:${peerPort}`;
  await withTempEtcd(
    {
      bin: `${binDir}/etcd-3.3.25`,
      version: { major: 3, minor: 3, patch: 25 },
      dataDir: dir,
      storage: 'etcd2',
      member: {
        name: 'm1',
        initialCluster: `m1=${peer}`,
        listenPeerUrls: peer,
        initialAdvertisePeerUrls: peer,
        port,
        extraArgs: [],
      },
      env: {},
      timeoutMs: 30_000,
    },
    async (e) => {
      await writeV2(e.endpoint, k8sDataSet(n));
    },
  ).catch((e: unknown) => {
    // At a million keys a stop can fall in one of etcd's snapshots of the whole v2 store and outlast
    // the 10 s grace: every write was acknowledged after its WAL fsync, so the data is all there.
    if (!/ignored SIGTERM/.test(String((e as Error).message))) throw e;
    console.error('data: etcd was killed while it wrote a snapshot after the last write; the WAL holds every write');
  });
  await fs.writeFile(`${dir}/version.txt`, '3.3.25/etcd2');
}

if (import.meta.main) {
  const [dir, n, binDir, port, peerPort] = process.argv.slice(2);
  const t0 = Date.now();
  await makeV2DataDir(dir!, Number(n), binDir!, Number(port), Number(peerPort));
  console.log(`wrote ${n} keys in ${Date.now() - t0} ms`);
}
