// Issue 15: a 3-member cluster rolled 3.5.36 -> 3.6.17 -> 3.7.3, one member at a time through the
// entrypoint, under a bounded put loop: no acknowledged write lost. Then a member-by-member
// downgrade 3.7.3 -> 3.6.17 with etcd's own downgrade: IDs, keys and revisions kept.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import {
  exeOf,
  planCluster,
  range,
  readVersionTxt,
  startEntrypoint,
  waitServing,
  type Proc,
} from '../helpers/cluster.ts';
import { describeLoop, expectLoopRan, PutLoop, rollTo, waitClusterVersion } from '../helpers/rolling.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { request } from '../../src/etcd/client/probe.ts';

beforeAll(requireBinaries);

const memberIds = async (url: string): Promise<string[]> => {
  const r = await request(url, 'POST', '/v3/cluster/member/list', '{}');
  return [...r.body.matchAll(/"ID":"?(\d+)/g)].map((m) => m[1]!).sort();
};

describe('a 3-member cluster through 3.6 and 3.7', () => {
  it('rolls 3.5.36 -> 3.6.17 -> 3.7.3 a member at a time under a put loop, then back to 3.6.17 likewise', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.5.36' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.5.36', 60_000, procs[i])));
    const ids = await memberIds(c.nodes[0]!.clientUrl);

    // The gateway's /v3 paths are the same in 3.5, 3.6 and 3.7.
    const loop = new PutLoop(c, '/registry/rolling/', () => '3.5.36', 240_000);
    const to36 = await rollTo(c, procs, loop, '3.6.17');
    const cv36 = await waitClusterVersion(c, '3.6.17', '3.6');
    const to37 = await rollTo(c, procs, loop, '3.7.3');
    const cv37 = await waitClusterVersion(c, '3.7.3', '3.7');
    await loop.stop();
    const lost = await loop.lost('3.7.3');
    console.log(describeLoop('rolling 3.5.36 -> 3.6.17', loop, to36));
    console.log(describeLoop('rolling 3.6.17 -> 3.7.3', loop, to37));
    expect(lost).toEqual([]);
    expectLoopRan(loop, [...to36, ...to37]);
    expect(to36.map((w) => w.clusterVersionAfter.slice(0, 3))).toEqual([
      '3.5',
      '3.5',
      expect.stringMatching(/^3\.[56]$/),
    ]);
    expect(cv36).toBe('3.6.0');
    expect(cv37).toBe('3.7.0');
    for (const [i, m] of c.nodes.entries()) {
      expect(procs[i]!.output()).toMatch(/upgrade 3\.6\.17\/etcd3 -> 3\.7\.3\/etcd3/);
      expect(await exeOf(procs[i]!)).toBe(path.join(BIN_DIR, 'etcd-3.7.3'));
      expect(await readVersionTxt(m)).toBe('3.7.3/etcd3');
    }
    const before = await range(c.nodes[0]!.clientUrl, '3.7.3', undefined, '/registry/');

    // Member by member down to 3.6.17: the first member's entrypoint enables the downgrade (the
    // cluster version drops to 3.6 at once), each member then starts 3.6.17 on its own data.
    const downs: Proc[] = [];
    for (const [i, m] of c.nodes.entries()) {
      await procs[i]!.stop();
      procs[i] = startEntrypoint(c, m, { target: '3.6.17' });
      await waitServing(m.clientUrl, undefined, '3.6.17', 120_000, procs[i]);
      downs.push(procs[i]!);
    }
    for (const [i, m] of c.nodes.entries()) {
      const out = downs[i]!.output();
      expect(out, out).toMatch(/step 1\/1 downgrade 3\.7\.3\/etcd3 -> 3\.6\.17\/etcd3: .+, [\d.]+ s$/m);
      expect(out).toMatch(i === 0 ? /downgrade to 3\.6 enabled/ : /downgrade to 3\.6 already (enabled|done)/);
      expect(await readVersionTxt(m)).toBe('3.6.17/etcd3');
      expect(await range(m.clientUrl, '3.6.17', undefined, '/registry/')).toEqual(before);
    }
    expect(await memberIds(c.nodes[0]!.clientUrl)).toEqual(ids);
    expect(await waitClusterVersion(c, '3.6.17', '3.6')).toBe('3.6.0');
  }, 420_000);
});
