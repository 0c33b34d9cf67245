// etcd 3.7 reads every WAL entry after the newest snapshot record as a v3 request and panics on the
// v2 requests that 3.5 wrote (its publish and cluster version at every start): confirmed with the
// real binaries (docs/upgrades.md). A 3.6 etcd started with --snapshot-count=1 snapshots at its
// next applied entries, which puts a snapshot record past every older entry: the WAL is "sealed".
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import { fmt } from '../version.ts';
import { gatewayPrefix, probeWriteV3, request } from './client.ts';
import type { TempEtcd } from './server.ts';

/** Flags for an etcd that must seal the WAL: a snapshot after every applied entry. */
export const SEAL_FLAGS: readonly string[] = ['--snapshot-count=1'];

const POLL_MS = 10;

/** The raft index of the newest snapshot file (`<term>-<index>.snap`, hex), 0 when there is none. */
export async function newestSnapIndex(dataDir: string): Promise<number> {
  const names = await fs.readdir(path.join(dataDir, 'member', 'snap')).catch(() => [] as string[]);
  let newest = 0;
  for (const n of names) {
    const m = /^[0-9a-f]{16}-([0-9a-f]{16})\.snap$/.exec(n);
    if (m) newest = Math.max(newest, Number.parseInt(m[1]!, 16));
  }
  return newest;
}

/**
 * With `etcd` started with SEAL_FLAGS and ready: waits until a snapshot covers every entry it had
 * applied when it became ready (one more write makes it take one), within `timeoutMs`.
 */
export async function waitSealed(etcd: TempEtcd, dataDir: string, timeoutMs: number): Promise<number> {
  const { version, member } = etcd.opts;
  const r = await request(etcd.endpoint, 'POST', `${gatewayPrefix(version)}/maintenance/status`, '{}', 5000,
    member.clientTls);
  const status = (r.status === 200 ? JSON.parse(r.body) : {}) as { raftAppliedIndex?: string; raftIndex?: string };
  const applied = Number(status.raftAppliedIndex ?? status.raftIndex);
  if (!Number.isSafeInteger(applied)) throw new StepError(`etcd ${fmt(version)} gave no raft index (HTTP ${r.status})`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await probeWriteV3(etcd.endpoint, version, member.clientTls);
    const snap = await newestSnapIndex(dataDir);
    if (snap >= applied) return snap;
    if (Date.now() > deadline) {
      throw new StepError(`etcd took no snapshot past raft index ${applied} within ${timeoutMs / 1000} s (newest: ${snap})`);
    }
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}
