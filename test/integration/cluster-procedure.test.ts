// The procedures of docs/clusters.md for what a cluster member refuses on its own, run on 3 members:
// - a conversion (etcd2 -> etcd3): one member becomes a cluster of its own (--force-new-cluster)
//   and migrates alone; the others rejoin with empty data dirs through the entrypoint;
// - a downgrade: one snapshot of the running cluster (etcd-migrate backup), restored on every
//   member (etcd-migrate restore), then every entrypoint finds nothing to migrate.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/etcd/client/probe.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { runCli } from '../helpers/cli.ts';
import {
  planCluster,
  put,
  range,
  readVersionTxt,
  sleep,
  startEntrypoint,
  startMember,
  waitServing,
  type Cluster,
  type Node,
  type Proc,
} from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

/**
 * `etcdctl member add` through the gateway; etcd refuses it for 5 s after the last member joined ("unhealthy cluster"):
 * retried.
 */
async function memberAdd(url: string, peerUrl: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await request(url, 'POST', '/v3/cluster/member/add', JSON.stringify({ peerURLs: [peerUrl] }), 10_000);
    if (r.status === 200) return;
    if (!r.body.includes('unhealthy cluster') || i > 60) throw new Error(`member add failed: ${r.body}`);
    await sleep(250);
  }
}

/**
 * Waits until a member's own v2 store (a local read) holds `n` keys under `dir`: a follower acknowledges writes late.
 */
async function waitLocalKeys(url: string, dir: string, n: number): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await request(url, 'GET', `/v2/keys${dir}`, undefined, 5000);
    const nodes = r.status === 200 ? ((JSON.parse(r.body) as { node: { nodes?: unknown[] } }).node.nodes ?? []) : [];
    if (nodes.length === n) return;
    if (i > 200) throw new Error(`${url} holds ${nodes.length} of ${n} keys under ${dir}`);
    await sleep(50);
  }
}

async function memberNames(url: string): Promise<string[]> {
  const r = await request(url, 'POST', '/v3/cluster/member/list', '{}', 5000);
  return (JSON.parse(r.body) as { members: Array<{ name: string }> }).members.map((m) => m.name).sort();
}

describe('cluster procedures (docs/clusters.md)', () => {
  it('etcd2 -> etcd3: one member converts alone, the others rejoin empty; every key and TTL kept', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const [a, ...others] = c.nodes as [Node, Node, Node];
    // A 3.3.25 cluster in etcd2 storage: keys written through the v2 API, three of them with a TTL.
    const old = c.nodes.map((m) => startMember('3.3.25', c, m));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.3.25', 30_000, old[i])));
    for (let i = 0; i < 20; i++) {
      const w = await request(
        c.nodes[i % 3]!.clientUrl,
        'PUT',
        `/v2/keys/registry/pods/p${i}${i < 3 ? '?ttl=3600' : ''}`,
        `value=v${i}`,
        5000,
      );
      expect(w.status, w.body).toBe(201);
    }
    // 1. Every member holds every write before any stops (docs/clusters.md: the same raft index on each).
    for (const m of c.nodes) await waitLocalKeys(m.clientUrl, '/registry/pods', 20);
    for (const p of old) await p.stop();
    for (const m of c.nodes) await fs.writeFile(path.join(m.dataDir, 'version.txt'), '3.3.25/etcd2');

    // 2. A becomes a cluster of its own, keeping its data; 3. A converts and upgrades alone.
    const forced = startMember('3.3.25', c, a, ['--force-new-cluster']);
    await waitServing(a.clientUrl, undefined, '3.3.25', 30_000, forced);
    await forced.stop();
    const alone: Cluster = { ...c, initialCluster: `${a.name}=${a.peerUrl}` };
    const pa = startEntrypoint(alone, a, { target: '3.5.30', env: { TARGET_STORAGE: 'etcd3' } });
    await waitServing(a.clientUrl, undefined, '3.5.30', 120_000, pa);
    expect(pa.output()).toMatch(/step 1\/3 convert 3\.3\.25\/etcd2 -> 3\.3\.25\/etcd3: .+, [\d.]+ s$/m);
    expect(pa.output()).toMatch(
      /step 3\/3 attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: 3 keys on \d+ leases?, [\d.]+ s$/m,
    );

    // 4. The others, one at a time: member add on A, an empty data dir, INITIAL_CLUSTER naming the members so far.
    let members = alone.initialCluster;
    const procs: Proc[] = [pa];
    for (const m of others) {
      await memberAdd(a.clientUrl, m.peerUrl);
      await fs.rm(m.dataDir, { recursive: true });
      members = `${members},${m.name}=${m.peerUrl}`;
      const p = startEntrypoint({ ...c, initialCluster: members }, m, {
        target: '3.5.30',
        etcdExtra: ['--initial-cluster-state', 'existing'],
      });
      procs.push(p);
      await waitServing(m.clientUrl, undefined, '3.5.30', 60_000, p);
      expect(p.output()).toMatch(/no data dir: nothing to migrate; version\.txt = 3\.5\.30\/etcd3/);
    }

    expect(await memberNames(a.clientUrl)).toEqual(['m1', 'm2', 'm3']);
    for (const m of c.nodes) {
      expect(await readVersionTxt(m)).toBe('3.5.30/etcd3');
      const kvs = await range(m.clientUrl, '3.5.30', undefined, '/registry/');
      expect(kvs.map((kv) => `${kv.key}=${kv.value}`).sort()).toEqual(
        [...Array(20).keys()].map((i) => `/registry/pods/p${i}=v${i}`).sort(),
      );
      expect(
        kvs
          .filter((kv) => kv.lease !== '0')
          .map((kv) => kv.key)
          .sort(),
      ).toEqual(['/registry/pods/p0', '/registry/pods/p1', '/registry/pods/p2']);
    }
  }, 240_000);

  it('a downgrade 3.5.30 -> 3.4.23: one snapshot of the running cluster restored on every member', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const token = ['--initial-cluster-token', 'etcd-migrate-test'];
    let procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.5.30' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.5.30', 60_000, procs[i])));
    for (let i = 0; i < 20; i++)
      expect(await put(c.nodes[i % 3]!.clientUrl, '3.5.30', undefined, `/registry/k${i}`, `v${i}`)).toBe(true);
    const before = await range(c.nodes[0]!.clientUrl, '3.5.30', undefined, '/registry/');

    // A member refuses the downgrade on its own, before anything changes.
    await procs[0]!.stop();
    const refused = await runCli([
      '--data-dir',
      c.nodes[0]!.dataDir,
      '--target-version',
      '3.4.23',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--initial-cluster',
      c.initialCluster,
      '--port',
      String(c.nodes[0]!.hiddenPort),
    ]);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(
      /cannot downgrade 3\.5\.30\/etcd3 -> 3\.4\.23\/etcd3 for a member of a multi-member cluster/,
    );

    // 1. One snapshot from a member that serves; 2. every member stopped, its data dir moved aside.
    const snap = path.join(root, 'cluster.snapshot');
    const b = await runCli(['backup', snap, '--endpoints', c.nodes[1]!.clientUrl, '--bin-dir', BIN_DIR]);
    expect(b.exitCode, b.stderr).toBe(0);
    for (const p of procs) await p.stop();
    for (const m of c.nodes) await fs.rename(m.dataDir, `${m.dataDir}.old`);

    // 3. The snapshot restored on every member with the older version and the whole cluster's flags.
    for (const m of c.nodes) {
      const r = await runCli([
        'restore',
        snap,
        '--data-dir',
        m.dataDir,
        '--target-version',
        '3.4.23',
        '--bin-dir',
        BIN_DIR,
        '--name',
        m.name,
        '--initial-cluster',
        c.initialCluster,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        ...token,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await readVersionTxt(m)).toBe('3.4.23/etcd3');
    }
    // 4. Every entrypoint: nothing to migrate, exec etcd 3.4.23; the cluster serves every key.
    procs = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.4.23' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.4.23', 60_000, procs[i])));
    for (const [i, m] of c.nodes.entries()) {
      expect(procs[i]!.output()).toMatch(/3\.4\.23\/etcd3: nothing to migrate for 3\.4\.23\/etcd3/);
      expect(await range(m.clientUrl, '3.4.23', undefined, '/registry/')).toEqual(before);
    }
    expect(await memberNames(c.nodes[0]!.clientUrl)).toEqual(['m1', 'm2', 'm3']);
  }, 240_000);
});
