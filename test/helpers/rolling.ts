// A rolling migration of a cluster under a bounded put loop: members taken out of the loop one at a
// time, their etcd stopped and their entrypoint run to the next version, then put back.
import { expect } from 'vitest';
import { put, range, sleep, startEntrypoint, waitServing, type Cluster, type Proc } from './cluster.ts';

const MAX_PUTS = 20_000;
const PAUSE_MS = 5;

export interface Put {
  key: string;
  value: string;
  at: number;
  ok: boolean;
  error?: string;
}
export interface Window {
  member: string;
  from: number;
  to: number;
  clusterVersionAfter: string;
}

/**
 * 3 workers of sequential puts, round robin over the members that serve, bounded in count and time.
 * A put a follower forwards while the leader hands over can be dropped by etcd and time out: that
 * is a failed put, counted, never retried. `version` is the gateway version to speak.
 */
export class PutLoop {
  readonly puts: Put[] = [];
  readonly serving: Set<number>;
  private readonly inFlight = new Map<number, number>();
  private stopped = false;
  private next = 0;
  private readonly done: Promise<unknown>;
  private readonly c: Cluster;
  private readonly prefix: string;

  constructor(c: Cluster, prefix: string, version: () => string, maxMs: number) {
    this.c = c;
    this.prefix = prefix;
    this.serving = new Set(c.nodes.map((_, i) => i));
    const end = Date.now() + maxMs;
    const worker = async (w: number) => {
      while (!this.stopped && this.next < MAX_PUTS && Date.now() < end) {
        const n = this.next++;
        const targets = [...this.serving];
        const i = targets[n % targets.length]!;
        const p: Put = {
          key: `${prefix}${String(n).padStart(5, '0')}`,
          value: `value-${n}`,
          at: Date.now(),
          ok: false,
        };
        this.puts.push(p);
        this.inFlight.set(w, i);
        try {
          p.ok = await put(c.nodes[i]!.clientUrl, version(), c.tls, p.key, p.value, undefined, 5000);
          if (!p.ok) p.error = `m${i + 1}: not acknowledged`;
        } catch (e) {
          p.error = `m${i + 1}: ${(e as Error).message}`;
        }
        this.inFlight.delete(w);
        await sleep(PAUSE_MS);
      }
    };
    this.done = Promise.all([0, 1, 2].map(worker));
  }

  /** Takes member i out of the loop once no put is in flight to it. */
  async drain(i: number): Promise<void> {
    this.serving.delete(i);
    while ([...this.inFlight.values()].includes(i)) await sleep(1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Every acknowledged put must be readable (through member 0, speaking `version`). */
  async lost(version: string): Promise<Put[]> {
    const stored = new Map(
      (await range(this.c.nodes[0]!.clientUrl, version, this.c.tls, this.prefix)).map((kv) => [kv.key, kv.value]),
    );
    return this.puts.filter((p) => p.ok && stored.get(p.key) !== p.value);
  }
}

/** One member at a time to `target` through its entrypoint, the others serving; 3 s between members. */
export async function rollTo(
  c: Cluster,
  procs: Proc[],
  loop: PutLoop,
  target: string,
  env: Record<string, string> = {},
): Promise<Window[]> {
  const windows: Window[] = [];
  for (const [i, m] of c.nodes.entries()) {
    await sleep(i === 0 ? 1000 : 3000);
    await loop.drain(i);
    const from = Date.now();
    await procs[i]!.stop();
    procs[i] = startEntrypoint(c, m, { target, env });
    await waitServing(m.clientUrl, c.tls, target, 120_000, procs[i]);
    const to = Date.now();
    loop.serving.add(i);
    const other = c.nodes[(i + 1) % c.nodes.length]!;
    windows.push({
      member: m.name,
      from,
      to,
      clusterVersionAfter: (await waitServing(other.clientUrl, c.tls, undefined, 5000)).cluster,
    });
  }
  return windows;
}

/** Waits (bounded) until the cluster version is `minor`.0, as etcd sets it once every member runs it. */
export async function waitClusterVersion(c: Cluster, version: string, minor: string): Promise<string> {
  let cv = '';
  for (let i = 0; i < 100 && cv !== `${minor}.0`; i++) {
    cv = (await waitServing(c.nodes[0]!.clientUrl, c.tls, version, 5000)).cluster;
    if (cv !== `${minor}.0`) await sleep(200);
  }
  return cv;
}

/** The loop's figures, for the test's log. */
export function describeLoop(name: string, loop: PutLoop, windows: Window[]): string {
  const acked = loop.puts.filter((p) => p.ok);
  const during = windows.map((w) => loop.puts.filter((p) => p.at >= w.from && p.at < w.to));
  return (
    `${name}: ${loop.puts.length} puts, ${acked.length} acknowledged, ${loop.puts.length - acked.length} failed; ` +
    'per member: ' +
    windows
      .map(
        (w, k) =>
          `${w.member} ${((w.to - w.from) / 1000).toFixed(1)} s down, ` +
          `${during[k]!.filter((p) => p.ok).length}/${during[k]!.length} acknowledged, ` +
          `cluster version then ${w.clusterVersionAfter}`,
      )
      .join('; ')
  );
}

export function expectLoopRan(loop: PutLoop, windows: Window[]): void {
  expect(loop.puts.filter((p) => p.ok).length).toBeGreaterThan(100);
  for (const w of windows) expect(loop.puts.filter((p) => p.at >= w.from && p.at < w.to).length).toBeGreaterThan(0);
}
