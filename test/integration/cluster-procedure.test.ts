// The README's procedure for what a cluster member refuses (v2 -> v3, rollbacks, downgrades): one
// member becomes a cluster of its own (--force-new-cluster) and migrates alone; the others rejoin
// with empty data dirs through the entrypoint. A lone-member upgrade stands in for the refused
// step here: the cluster mechanics (force-new-cluster, a lone run on data of a 3-member cluster,
// member add, empty rejoin with --initial-cluster-state existing) are what this proves.
import { promises as fs } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/etcd/client.ts';
import { requireBinaries } from '../helpers/env.ts';
import { planCluster, put, range, readVersionTxt, sleep, startEntrypoint, startMember, waitServing, type Cluster, type Proc } from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

describe('one member migrates alone, the others rejoin empty', () => {
  it('follows the README procedure on a 3-member cluster and keeps every key', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const [a, b, m3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
    const procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.4.23' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.4.23', 60_000, procs[i])));
    for (let i = 0; i < 20; i++) expect(await put(c.nodes[i % 3]!.clientUrl, '3.4.23', undefined, `/registry/k${i}`, `v${i}`)).toBe(true);
    const before = await range(a.clientUrl, '3.4.23', undefined, '/registry/');
    for (const p of procs) await p.stop();

    // 2. A becomes a cluster of its own, keeping its data.
    const forced = startMember('3.4.23', c, a, ['--force-new-cluster']);
    await waitServing(a.clientUrl, undefined, '3.4.23', 30_000, forced);
    await forced.stop();

    // 3. A's entrypoint with INITIAL_CLUSTER naming A alone: a lone member's migration, then etcd.
    const alone: Cluster = { ...c, initialCluster: `${a.name}=${a.peerUrl}` };
    const pa = startEntrypoint(alone, a, { target: '3.5.30' });
    await waitServing(a.clientUrl, undefined, '3.5.30', 60_000, pa);
    expect(pa.output()).toMatch(/step 1\/1 done/);
    expect(pa.output()).not.toContain('member of a');

    // 4. B, then C: member add on A, an empty data dir, INITIAL_CLUSTER naming the members so far.
    let members = alone.initialCluster;
    for (const m of [b, m3]) {
      // etcd refuses an add until every member has been connected for 5 s ("unhealthy cluster"): retry.
      let add = await request(a.clientUrl, 'POST', '/v3/cluster/member/add', JSON.stringify({ peerURLs: [m.peerUrl] }), 10_000);
      for (let i = 0; i < 40 && add.body.includes('unhealthy cluster'); i++) {
        await sleep(250);
        add = await request(a.clientUrl, 'POST', '/v3/cluster/member/add', JSON.stringify({ peerURLs: [m.peerUrl] }), 10_000);
      }
      expect(add.status, add.body).toBe(200);
      await fs.rm(m.dataDir, { recursive: true });
      members = `${members},${m.name}=${m.peerUrl}`;
      const p = startEntrypoint({ ...c, initialCluster: members }, m, { target: '3.5.30', etcdExtra: ['--initial-cluster-state', 'existing'] });
      await waitServing(m.clientUrl, undefined, '3.5.30', 60_000, p);
      expect(p.output()).toMatch(/an empty data dir: nothing to migrate; version\.txt = 3\.5\.30\/etcd3|no data dir: nothing to migrate; version\.txt = 3\.5\.30\/etcd3/);
    }

    const list = await request(a.clientUrl, 'POST', '/v3/cluster/member/list', '{}', 5000);
    expect((JSON.parse(list.body) as { members: Array<{ name: string }> }).members.map((x) => x.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const m of c.nodes) {
      expect(await readVersionTxt(m)).toBe('3.5.30/etcd3');
      expect(await range(m.clientUrl, '3.5.30', undefined, '/registry/')).toEqual(before);
    }
  }, 180_000);
});
