// Issue 16, item 1: a cluster member whose in-place step fails keeps its raft log as etcd left it.
// Its temporary etcd was a voting member and acknowledged entries that the leader remembers; the
// run's backup holds an older log, and etcd panics on it at its next start (`tocommit(N) is out of
// range`). The cluster takes writes all along; the member is started again and must rejoin.
import { promises as fs } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBinaries } from '../helpers/env.ts';
import {
  planCluster,
  put,
  range,
  readVersionTxt,
  sleep,
  startEntrypoint,
  startMember,
  waitServing,
  type Proc,
} from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

const MAX_PUTS = 10_000;
const LOOP_MS = 120_000;
const PAUSE_MS = 5;
const STEP_TIMEOUT_S = 8;

describe('a cluster member whose in-place step fails', () => {
  it('keeps what etcd left (no put-back), exits 1, rejoins without panic on restart; no acked write lost', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const procs: Proc[] = c.nodes.map((m) => startEntrypoint(c, m, { target: '3.3.25' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.3.25', 60_000, procs[i])));

    // Two workers of sequential puts to m1 and m2, bounded in count and time, never retried.
    const puts: Array<{ key: string; value: string; at: number; ok: boolean }> = [];
    let stop = false;
    let next = 0;
    const end = Date.now() + LOOP_MS;
    const worker = async (w: number) => {
      while (!stop && next < MAX_PUTS && Date.now() < end) {
        const n = next++;
        const p = {
          key: `/registry/failed-step/${String(n).padStart(5, '0')}`,
          value: `value-${n}`,
          at: Date.now(),
          ok: false,
        };
        puts.push(p);
        p.ok = await put(c.nodes[w]!.clientUrl, '3.3.25', undefined, p.key, p.value, undefined, 5000).catch(
          () => false,
        );
        await sleep(PAUSE_MS);
      }
    };
    const loop = Promise.all([0, 1].map(worker));

    // m3 is asked for two minors at once while m1 and m2 serve 3.3: its 3.4 step joins the cluster
    // as a voting member, waits for a 3.4 cluster version that cannot come, and times out.
    const m3 = c.nodes[2]!;
    await sleep(1000);
    await procs[2]!.stop();
    const from = Date.now();
    const failed = startEntrypoint(c, m3, { target: '3.5.30', env: { STEP_TIMEOUT: String(STEP_TIMEOUT_S) } });
    const r = await failed.proc;
    const to = Date.now();
    const out = failed.output();
    expect(r.exitCode, out).toBe(1);
    expect(out).toMatch(/etcd 3\.4\.23 was not ready within 8 s/);
    expect(out).not.toContain('restoring');
    expect(out).toMatch(
      /left as etcd left it, not put back from \S+\.backup \(kept\): a cluster member's raft log is never rolled back/,
    );
    // The error, then etcd's last lines, each on its own line and named, is the run's last output.
    const last = out.slice(out.lastIndexOf('etcd-migrate: error: ')).trim();
    expect(last).toMatch(
      joinedRegex(
        /^etcd-migrate: error: step 1\/2 \(upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3.*\) failed: .*; /,
        /version\.txt says 3\.3\.25\/etcd3, the last step that completed; /,
        /the member dir holds what etcd 3\.4\.23\/etcd3 left .*; /,
        /fix the cause and rerun: the member rejoins the cluster with its own log/,
        /(; its last lines:(\n  etcd-3\.4\.23\| .*)+)?$/,
      ),
    );
    expect(await readVersionTxt(m3)).toBe('3.3.25/etcd3');
    const backups = await fs.readdir(`${m3.dataDir}.backups`);
    expect(backups.filter((n) => n.endsWith('.backup'))).toHaveLength(1);
    const during = puts.filter((p) => p.at >= from && p.at < to);
    expect(during.filter((p) => p.ok).length).toBeGreaterThan(0);

    // The etcd that version.txt names runs on what etcd 3.4 left (the cluster version is still 3.3)
    // and rejoins without panic.
    const plain = startMember('3.3.25', c, m3);
    await waitServing(m3.clientUrl, undefined, '3.3.25', 60_000, plain);
    await sleep(1000);
    await plain.stop();
    expect(plain.output()).not.toMatch(/out of range|panic/);

    // The cause fixed (one minor at a time), the entrypoint runs again on that log: its temporary
    // etcd and then the exec'd etcd rejoin with it.
    procs[2] = startEntrypoint(c, m3, { target: '3.4.23' });
    await waitServing(m3.clientUrl, undefined, '3.4.23', 90_000, procs[2]);
    await sleep(1000);
    stop = true;
    await loop;

    const stored = new Map(
      (await range(m3.clientUrl, '3.4.23', undefined, '/registry/failed-step/')).map((kv) => [kv.key, kv.value]),
    );
    const acked = puts.filter((p) => p.ok);
    const lost = acked.filter((a) => stored.get(a.key) !== a.value);
    console.log(
      `failed cluster step: ${puts.length} puts, ${acked.length} acknowledged ` +
        `(${during.filter((p) => p.ok).length} while m3's step ran), ${lost.length} lost`,
    );
    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(100);
    for (const p of procs) expect(p.output()).not.toMatch(/out of range|panic/);
    expect(procs[2]!.output()).toContain('exec etcd 3.4.23');
    expect(await readVersionTxt(m3)).toBe('3.4.23/etcd3');
  }, 240_000);
});
