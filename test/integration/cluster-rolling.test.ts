// A rolling upgrade of a 3-member cluster, 3.4.23 -> 3.5.16, one member at a time through the
// entrypoint, while a bounded put loop writes to the members that serve. Every acknowledged write
// must be readable afterwards; the failed puts are counted and reported.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { exeOf, planCluster, readVersionTxt, startEntrypoint, waitServing, type Proc } from '../helpers/cluster.ts';
import { describeLoop, expectLoopRan, PutLoop, rollTo, waitClusterVersion } from '../helpers/rolling.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

describe('a rolling upgrade of a 3-member cluster', () => {
  it('3.4.23 -> 3.5.16 one member at a time under a bounded put loop: every acknowledged write is kept', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);

    // The cluster starts from empty data dirs through the entrypoint (version.txt = 3.4.23, exec etcd).
    const procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.4.23' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.4.23', 60_000, procs[i])));
    for (const m of c.nodes) expect(await readVersionTxt(m)).toBe('3.4.23/etcd3');

    const loop = new PutLoop(c, '/registry/rolling/', () => '3.4.23', 150_000);
    const windows = await rollTo(c, procs, loop, '3.5.16');
    // The cluster version moves to 3.5 once the last member runs it (etcd checks every few seconds).
    const cv = await waitClusterVersion(c, '3.5.16', '3.5');
    await loop.stop();
    const lost = await loop.lost('3.5.16');
    console.log(describeLoop('rolling 3.4.23 -> 3.5.16', loop, windows));

    expect(lost).toEqual([]);
    // The loop ran while each member was down. (Whether those puts are acknowledged is what the log
    // reports: puts that followers forward while the stopped leader hands over can all be dropped.)
    expectLoopRan(loop, windows);
    // While a member moved to 3.5, the others served 3.4: the cluster version stayed 3.4 until the last one.
    expect(windows.map((w) => w.clusterVersionAfter.slice(0, 3))).toEqual([
      '3.4',
      '3.4',
      expect.stringMatching(/^3\.[45]$/),
    ]);
    expect(cv).toBe('3.5.0');
    for (const [i, m] of c.nodes.entries()) {
      const out = procs[i]!.output();
      expect(out, out).toMatch(/step 1\/1 upgrade 3\.4\.23\/etcd3 -> 3\.5\.16\/etcd3: [\d.]+ s$/m);
      expect(out).toContain('exec etcd 3.5.16');
      expect(await exeOf(procs[i]!)).toBe(path.join(BIN_DIR, 'etcd-3.5.16'));
      expect(await readVersionTxt(m)).toBe('3.5.16/etcd3');
    }
  }, 300_000);
});
