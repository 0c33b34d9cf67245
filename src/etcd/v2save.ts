// The whole v2 store in one snapshot file, written by etcd itself: the only complete view of it.
// The v2 API and `etcdctl migrate` both walk the store with etcd's v2 Get, which skips hidden nodes
// (names starting with `_`) in every listing; a snapshot file holds the store's whole node tree.
// etcd writes one once it has applied more than --snapshot-count entries since its last: started
// with 1 on a copy of the member dir, it writes one as it applies its WAL and each write after.
// The copy is etcd's to write (its WAL grows); the live member dir is never run.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import type { Version } from '../version.ts';
import { probeWriteV2, request } from './client.ts';
import { withTempEtcd, type MemberConfig } from './server.ts';

export interface SaveOptions {
  bin: string;
  version: Version;
  /** A copy of the data dir (its member dir), for etcd to run on. */
  dataDir: string;
  member: MemberConfig;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  log?: (line: string) => void;
}

const POLL_MS = 10;

/** Runs etcd on the copy until it has saved a snapshot of everything it committed; returns that file. */
export async function saveV2Snapshot(o: SaveOptions): Promise<string> {
  const snapDir = path.join(o.dataDir, 'member', 'snap');
  const tls = o.member.clientTls;
  await withTempEtcd({
    bin: o.bin, version: o.version, dataDir: o.dataDir, member: o.member, storage: 'etcd2', env: o.env,
    timeoutMs: o.timeoutMs, flags: ['--snapshot-count=1'], log: o.log,
  }, async (e) => {
    // Ready: it has applied its WAL and a write after it. Its raft index now covers all of that.
    const r = await request(e.endpoint, 'GET', '/v2/keys/', undefined, 2000, tls);
    const committed = Number(r.headers['x-raft-index']);
    if (r.status !== 200 || !Number.isSafeInteger(committed)) throw new StepError(`etcd ${e.opts.version.major}.${e.opts.version.minor} gave no raft index for its v2 store (HTTP ${r.status})`);
    const deadline = Date.now() + o.timeoutMs;
    // Each probe is one more entry applied, so one more snapshot.
    while ((await newestSnapIndex(snapDir)) < committed) {
      if (Date.now() > deadline) throw new StepError(`etcd saved no snapshot of its v2 store up to raft index ${committed} in ${o.timeoutMs / 1000} s`);
      await probeWriteV2(e.endpoint, tls);
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
  });
  // Stopped: etcd waits for a snapshot it is writing before it exits.
  const newest = await newestSnap(snapDir);
  if (!newest) throw new StepError('etcd left no snapshot file of its v2 store');
  return path.join(snapDir, newest.name);
}

/** The snapshot file with the highest raft index (named <term>-<index>.snap, both 16 hex digits). */
async function newestSnap(snapDir: string): Promise<{ name: string; index: number } | undefined> {
  let best: { name: string; index: number } | undefined;
  for (const name of await fs.readdir(snapDir)) {
    const m = /^[0-9a-f]{16}-([0-9a-f]{16})\.snap$/.exec(name);
    if (!m) continue;
    const index = Number.parseInt(m[1]!, 16);
    if (!best || index > best.index) best = { name, index };
  }
  return best;
}

const newestSnapIndex = async (snapDir: string): Promise<number> => (await newestSnap(snapDir))?.index ?? 0;
