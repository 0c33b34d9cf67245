// The whole v2 store in one snapshot file, written by etcd itself: the only complete view of it.
// The v2 API and `etcdctl migrate` both walk the store with etcd's v2 Get, which skips hidden nodes
// (names starting with `_`) in every listing; a snapshot file holds the store's whole node tree.
// When the WAL holds no entry past the newest snapshot file, that file is the store. Otherwise etcd
// runs on a copy of the member dir (it writes its WAL; the live member dir is never run) with
// --snapshot-count set to the entries its WAL holds past that snapshot: it snapshots once it has
// applied more than that many, so at the first entry of its own (its election), once, and not
// again and again as it replays (each snapshot serializes the whole store).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import { copyMemberDir } from '../steps/copy.ts';
import { fmt, type Version } from '../version.ts';
import { probeWriteV2 } from '../etcd/client/probe.ts';
import { withTempEtcd, type MemberConfig } from '../etcd/process/server.ts';
import { lastWalIndex } from '../etcd/disk/wal.ts';
import type { Log } from '../log.ts';

export interface SaveOptions {
  bin: string;
  version: Version;
  /** The live data dir: only read. */
  dataDir: string;
  /** An empty dir for the copy etcd runs on. */
  scratch: string;
  member: MemberConfig;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  log?: Log;
}

const POLL_MS = 20;
const PROBE_EVERY_MS = 1000;

/** A snapshot file of the whole v2 store as the member dir holds it, and whether etcd had to write it. */
export async function v2StoreSnapshot(o: SaveOptions): Promise<{ file: string; etcdRan: boolean }> {
  const member = path.join(o.dataDir, 'member');
  const last = await lastWalIndex(path.join(member, 'wal'));
  const newest = await newestSnap(path.join(member, 'snap'));
  if (newest && newest.index >= last) return { file: path.join(member, 'snap', newest.name), etcdRan: false };
  await copyMemberDir(member, path.join(o.scratch, 'member'));
  return { file: await saveV2Snapshot(o, last, last - (newest?.index ?? 0)), etcdRan: true };
}

/** Runs etcd on the copy until it has saved a snapshot at or past raft index `last`; returns that file. */
async function saveV2Snapshot(o: SaveOptions, last: number, count: number): Promise<string> {
  const snapDir = path.join(o.scratch, 'member', 'snap');
  const tls = o.member.clientTls;
  // The count must be this one: a --snapshot-count among the member's extra flags (they come last) is left out.
  const member = { ...o.member, extraArgs: withoutFlag(o.member.extraArgs, '--snapshot-count') };
  await withTempEtcd(
    {
      bin: o.bin,
      version: o.version,
      dataDir: o.scratch,
      member,
      storage: 'etcd2',
      env: o.env,
      timeoutMs: o.timeoutMs,
      flags: [`--snapshot-count=${Math.max(1, count)}`],
      log: o.log,
    },
    async (e) => {
      const deadline = Date.now() + o.timeoutMs;
      let probed = Date.now();
      // Ready: its election's entry is applied, which triggered the snapshot; etcd is writing it. When
      // etcd loaded an older snapshot than the newest (a damaged file), it needs more entries for the
      // next: a probe now and then is one. Not more often: every `count` entries is one more snapshot
      // of the whole store, all written at once.
      while (((await newestSnap(snapDir))?.index ?? 0) < last) {
        if (Date.now() > deadline) {
          const what = `snapshot of its v2 store up to raft index ${last}`;
          throw new StepError(`etcd ${fmt(o.version)} saved no ${what} in ${o.timeoutMs / 1000} s`);
        }
        await new Promise((res) => setTimeout(res, POLL_MS));
        if (Date.now() - probed >= PROBE_EVERY_MS) {
          probed = Date.now();
          await probeWriteV2(e.endpoint, tls).catch(() => false);
        }
      }
    },
  );
  // Stopped: etcd waits for a snapshot it is writing before it exits.
  const newest = await newestSnap(snapDir);
  if (!newest || newest.index < last) {
    throw new StepError(`etcd ${fmt(o.version)} left no snapshot file of its v2 store up to raft index ${last}`);
  }
  return path.join(snapDir, newest.name);
}

/** `args` without `flag` (as `--flag=value`, or `--flag value`), and without it spelt with one dash. */
export function withoutFlag(args: readonly string[], flag: string): string[] {
  const names = [flag, flag.slice(1)];
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (names.includes(a)) i++;
    else if (!names.some((n) => a.startsWith(`${n}=`))) out.push(a);
  }
  return out;
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
