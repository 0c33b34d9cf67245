// Members of a cluster restarting with nothing to migrate: no temporary etcd, no quorum needed, an
// immediate exec of etcd, and version.txt left alone.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBinaries } from '../helpers/env.ts';
import {
  planCluster,
  put,
  range,
  readVersionTxt,
  sleep,
  startEntrypoint,
  waitServing,
  type Proc,
} from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

describe('a cluster member restart with nothing to migrate', () => {
  it('execs etcd at once, even while no peer runs, and the cluster comes back with every key', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    let procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.5.30' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.5.30', 60_000, procs[i])));
    for (let i = 0; i < 20; i++)
      expect(await put(c.nodes[i % 3]!.clientUrl, '3.5.30', undefined, `/registry/k${i}`, `v${i}`)).toBe(true);
    const before = await range(c.nodes[0]!.clientUrl, '3.5.30', undefined, '/registry/');
    expect(before).toHaveLength(20);
    for (const p of procs) await p.stop();
    const stat = await Promise.all(c.nodes.map((m) => fs.stat(path.join(m.dataDir, 'version.txt'))));

    // m1 alone: nothing to migrate, so no temporary etcd waits for a quorum; etcd is exec'd at once.
    const t0 = Date.now();
    procs = [startEntrypoint(c, c.nodes[0]!, { target: '3.5.30' })];
    while (!procs[0]!.output().includes('exec etcd') && Date.now() - t0 < 20_000) await sleep(20);
    const execMs = Date.now() - t0;
    expect(procs[0]!.output()).toMatch(/3\.5\.30\/etcd3: nothing to migrate for 3\.5\.30\/etcd3\n/);
    expect(procs[0]!.output()).toContain('exec etcd 3.5.30');
    expect(procs[0]!.output()).not.toContain('step 1');
    // Its etcd runs and waits for peers: the process is alive and holds no answer yet.
    await sleep(500);
    expect(procs[0]!.proc.exitCode).toBeNull();

    // The others follow, 1 s apart; the cluster serves every key again.
    for (const m of c.nodes.slice(1)) {
      await sleep(1000);
      procs.push(startEntrypoint(c, m, { target: '3.5.30' }));
    }
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.5.30', 60_000, procs[i])));
    for (const m of c.nodes) expect(await range(m.clientUrl, '3.5.30', undefined, '/registry/')).toEqual(before);
    for (const [i, m] of c.nodes.entries()) {
      expect(await readVersionTxt(m)).toBe('3.5.30/etcd3');
      expect((await fs.stat(path.join(m.dataDir, 'version.txt'))).mtimeMs).toBe(stat[i]!.mtimeMs);
    }
    console.log(`restart with nothing to migrate: exec after ${execMs} ms with no peer running`);
    expect(execMs).toBeLessThan(5000);
  }, 120_000);
});
