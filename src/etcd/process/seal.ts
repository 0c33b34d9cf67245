// etcd 3.7 reads every WAL entry after the newest snapshot record as a v3 request and panics on the
// v2 requests that 3.5 wrote (its publish and cluster version at every start); 3.6 panics on any v2
// request but those two, such as the QGET that 3.4 sends through raft for each /health: both
// confirmed with the real binaries (docs/upgrades.md). An etcd started with --snapshot-count=1
// snapshots at its next applied entries, which puts a snapshot record past every older entry: the
// WAL is "sealed".
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../../errors.ts';
import { fmt } from '../../version.ts';
import { gatewayPrefix, probeWriteV3, request } from '../client/probe.ts';
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
  const deadline = Date.now() + timeoutMs;
  let applied: number | undefined;
  let last = 'no answer';
  // A write or a status a cluster member forwards can time out while the leader changes: polled again.
  while (Date.now() < deadline) {
    try {
      applied ??= await appliedIndex(etcd);
      await probeWriteV3(etcd.endpoint, version, member.clientTls);
      const snap = await newestSnapIndex(dataDir);
      if (snap >= applied) return snap;
      last = `newest snapshot at ${snap}, waiting for ${applied}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
  throw new StepError(
    `etcd ${fmt(version)} took no snapshot past every entry it had applied within ` +
      `${timeoutMs / 1000} s (last: ${last})`,
  );
}

/** The raft index this member has applied (maintenance/status). */
async function appliedIndex(etcd: TempEtcd): Promise<number> {
  const r = await request(
    etcd.endpoint,
    'POST',
    `${gatewayPrefix(etcd.opts.version)}/maintenance/status`,
    '{}',
    5000,
    etcd.opts.member.clientTls,
  );
  const status = (r.status === 200 ? JSON.parse(r.body) : {}) as { raftAppliedIndex?: string; raftIndex?: string };
  const applied = Number(status.raftAppliedIndex ?? status.raftIndex);
  if (!Number.isSafeInteger(applied)) throw new Error(`no raft index in its status (HTTP ${r.status})`);
  return applied;
}
