// A rolling upgrade of a 3-member cluster, 3.4.23 -> 3.5.16, one member at a time through the
// entrypoint, while a bounded put loop writes to the members that serve. Every acknowledged write
// must be readable afterwards; the failed puts are counted and reported.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { exeOf, planCluster, put, range, readVersionTxt, sleep, startEntrypoint, waitServing, type Proc } from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const MAX_PUTS = 20_000;
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

    // The put loop: 3 workers of sequential puts, round robin over the members that serve, bounded
    // in count and time. A put a follower forwards while the leader hands over can be dropped by
    // etcd and time out: that is a failed put, counted, never retried.
    const serving = new Set([0, 1, 2]);
    const puts: Array<{ key: string; value: string; at: number; ok: boolean; error?: string }> = [];
    const inFlight = new Map<number, number>();
    let stop = false;
    let next = 0;
    const end = Date.now() + LOOP_MS;
    const worker = async (w: number) => {
      while (!stop && next < MAX_PUTS && Date.now() < end) {
        const n = next++;
        const targets = [...serving];
        const i = targets[n % targets.length]!;
        const p = { key: `/registry/rolling/${String(n).padStart(5, '0')}`, value: `value-${n}`, at: Date.now(), ok: false, error: undefined as string | undefined };
        puts.push(p);
        inFlight.set(w, i);
        try {
          p.ok = await put(c.nodes[i]!.clientUrl, '3.4.23', undefined, p.key, p.value, undefined, 5000);
          if (!p.ok) p.error = `m${i + 1}: not acknowledged`;
        } catch (e) {
          p.error = `m${i + 1}: ${(e as Error).message}`;
        }
        inFlight.delete(w);
        await sleep(PAUSE_MS);
      }
    };
    const loop = Promise.all([0, 1, 2].map(worker));

    // One member at a time: take it out of the loop, stop its etcd, run its entrypoint to 3.5.16,
    // wait until it serves, put it back, and give the cluster 3 s before the next.
    const windows: Array<{ member: string; from: number; to: number; clusterVersionAfter: string }> = [];
    for (const [i, m] of c.nodes.entries()) {
      await sleep(i === 0 ? 1000 : 3000);
      serving.delete(i);
      while ([...inFlight.values()].includes(i)) await sleep(1);
      const from = Date.now();
      await procs[i]!.stop();
      procs[i] = startEntrypoint(c, m, { target: '3.5.16' });
      await waitServing(m.clientUrl, undefined, '3.5.16', 120_000, procs[i]);
      const to = Date.now();
      serving.add(i);
      const other = c.nodes[(i + 1) % 3]!;
      windows.push({ member: m.name, from, to, clusterVersionAfter: (await waitServing(other.clientUrl, undefined, undefined, 5000)).cluster });
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
    const acked = puts.filter((p) => p.ok);
    const failed = puts.filter((p) => !p.ok);
    const lost = acked.filter((a) => stored.get(a.key) !== a.value);
    const phase = (at: number) => {
      const w = windows.find((x) => at >= x.from - 1000 && at < x.to + 1000);
      return w ? `${((at - w.from) / 1000).toFixed(1)} s after ${w.member} was stopped` : 'while all members served';
    };
    const during = windows.map((w) => puts.filter((p) => p.at >= w.from && p.at < w.to));
    console.log(`rolling 3.4.23 -> 3.5.16: ${puts.length} puts, ${acked.length} acknowledged, ${failed.length} failed, `
      + `${lost.length} acknowledged but not readable; per member: ${windows.map((w, k) => `${w.member} ${((w.to - w.from) / 1000).toFixed(1)} s down, `
      + `${during[k]!.filter((p) => p.ok).length}/${during[k]!.length} puts sent meanwhile acknowledged, cluster version then ${w.clusterVersionAfter}`).join('; ')}`
      + `${failed.length ? `\nfailed: ${failed.slice(0, 10).map((p) => `${p.key} on ${p.error} (sent ${phase(p.at)})`).join(' | ')}` : ''}`);

    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(100);
    // The loop ran while each member was down. (Whether those puts are acknowledged is what the log
    // reports: puts that followers forward while the stopped leader hands over can all be dropped.)
    for (const d of during) expect(d.length).toBeGreaterThan(0);
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
