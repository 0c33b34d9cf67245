// A rolling upgrade of a 3-member cluster, 3.4.23 -> 3.5.16, one member at a time through the
// entrypoint, while a bounded put loop writes to the members that serve. Every acknowledged write
// must be readable afterwards; the failed puts are counted and reported.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { exeOf, planCluster, put, range, readVersionTxt, sleep, startEntrypoint, waitServing, type Proc } from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const MAX_PUTS = 4000;
const LOOP_MS = 150_000;
const PAUSE_MS = 5;

describe('a rolling upgrade of a 3-member cluster', () => {
  it('3.4.23 -> 3.5.16 one member at a time under a bounded put loop: every acknowledged write is kept', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);

    // The cluster starts from empty data dirs through the entrypoint (version.txt = 3.4.23, exec etcd).
    const procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.4.23' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.4.23', 60_000, procs[i])));
    for (const m of c.nodes) expect(await readVersionTxt(m)).toBe('3.4.23/etcd3');

    // The put loop: sequential puts, round robin over the members that serve, bounded in count and time.
    const serving = new Set([0, 1, 2]);
    const acked: Array<{ key: string; value: string }> = [];
    const failures: string[] = [];
    let inFlight = -1;
    let stop = false;
    const loop = (async () => {
      const end = Date.now() + LOOP_MS;
      for (let n = 0; n < MAX_PUTS && !stop && Date.now() < end; n++) {
        const targets = [...serving];
        const i = targets[n % targets.length]!;
        const key = `/registry/rolling/${String(n).padStart(5, '0')}`;
        const value = `value-${n}`;
        inFlight = i;
        try {
          if (await put(c.nodes[i]!.clientUrl, '3.4.23', undefined, key, value, undefined, 5000)) acked.push({ key, value });
          else failures.push(`${key} on m${i + 1}: not acknowledged`);
        } catch (e) {
          failures.push(`${key} on m${i + 1}: ${(e as Error).message}`);
        }
        inFlight = -1;
        await sleep(PAUSE_MS);
      }
    })();

    // One member at a time: take it out of the loop, stop its etcd, run its entrypoint to 3.5.16.
    const windows: Array<{ member: string; ms: number; putsDuring: number; clusterVersionAfter: string }> = [];
    for (const [i, m] of c.nodes.entries()) {
      await sleep(1000);
      serving.delete(i);
      while (inFlight === i) await sleep(1);
      const before = acked.length;
      const t0 = Date.now();
      await procs[i]!.stop();
      procs[i] = startEntrypoint(c, m, { target: '3.5.16' });
      await waitServing(m.clientUrl, undefined, '3.5.16', 120_000, procs[i]);
      serving.add(i);
      const other = c.nodes[(i + 1) % 3]!;
      windows.push({ member: m.name, ms: Date.now() - t0, putsDuring: acked.length - before, clusterVersionAfter: (await waitServing(other.clientUrl, undefined, undefined, 5000)).cluster });
    }
    // The cluster version moves to 3.5 once the last member runs it (etcd checks every few seconds).
    let cv = '';
    for (let i = 0; i < 100 && cv !== '3.5.0'; i++) {
      cv = (await waitServing(c.nodes[0]!.clientUrl, undefined, '3.5.16', 5000)).cluster;
      if (cv !== '3.5.0') await sleep(200);
    }
    await sleep(1000);
    stop = true;
    await loop;

    const stored = new Map((await range(c.nodes[0]!.clientUrl, '3.5.16', undefined, '/registry/rolling/')).map((kv) => [kv.key, kv.value]));
    const lost = acked.filter((a) => stored.get(a.key) !== a.value);
    console.log(`rolling 3.4.23 -> 3.5.16: ${acked.length + failures.length} puts, ${acked.length} acknowledged, ${failures.length} failed, `
      + `${lost.length} acknowledged but not readable; per member: ${windows.map((w) => `${w.member} ${(w.ms / 1000).toFixed(1)} s down, ${w.putsDuring} puts acknowledged meanwhile, cluster version then ${w.clusterVersionAfter}`).join('; ')}`
      + `${failures.length ? `\nfailed: ${failures.slice(0, 10).join(' | ')}` : ''}`);

    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(300);
    for (const w of windows) expect(w.putsDuring).toBeGreaterThan(10);
    // While a member moved to 3.5, the others served 3.4: the cluster version stayed 3.4 until the last one.
    expect(windows.map((w) => w.clusterVersionAfter.slice(0, 3))).toEqual(['3.4', '3.4', expect.stringMatching(/^3\.[45]$/)]);
    expect(cv).toBe('3.5.0');
    for (const [i, m] of c.nodes.entries()) {
      const out = procs[i]!.output();
      expect(out, out).toMatch(/step 1\/1 done in [\d.]+ s: upgrade 3\.4\.23\/etcd3 -> 3\.5\.16\/etcd3/);
      expect(out).toContain('exec etcd 3.5.16');
      expect(await exeOf(procs[i]!)).toBe(path.join(BIN_DIR, 'etcd-3.5.16'));
      expect(await readVersionTxt(m)).toBe('3.5.16/etcd3');
    }
  }, 300_000);
});
