// What a data dir without version.txt says about itself. etcd records only the cluster's
// major.minor: in bbolt (bucket "cluster", key "clusterVersion") and in the v2 store (/0/version,
// found in the WAL's raft entries and in .snap files). Whether v3 keys exist tells etcd3 storage.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Bbolt } from '../etcd/disk/bbolt.ts';

export interface Evidence {
  /** major.minor, e.g. "3.4", with where it was read. */
  clusterVersion?: { minor: string; from: string };
  /** Whether bbolt's key bucket holds v3 keys (undefined: no readable db). */
  v3Keys?: boolean;
}

export async function readEvidence(dataDir: string): Promise<Evidence> {
  const ev = readDbEvidence(dataDir);
  if (!ev.clusterVersion) {
    const v2 = await v2StoreVersion(dataDir);
    if (v2) ev.clusterVersion = v2;
  }
  return ev;
}

/** What bbolt records (a few page reads): its cluster version, whether it holds v3 keys; nothing without a db. */
export function readDbEvidence(dataDir: string): Evidence {
  const ev: Evidence = {};
  try {
    const db = new Bbolt(path.join(dataDir, 'member', 'snap', 'db'));
    try {
      const cv = db.get(['cluster'], 'clusterVersion')?.toString('latin1');
      const m = cv && /^(\d+\.\d+)\.\d+$/.exec(cv);
      if (m) ev.clusterVersion = { minor: m[1]!, from: 'member/snap/db' };
      ev.v3Keys = db.hasKeys(['key']);
    } finally {
      db.close();
    }
  } catch {
    // no db, or not readable
  }
  return ev;
}

/**
 * Whether the v2 store ever held a key of its own (under /1/, not etcd's /0/): a node in a .snap
 * file, or a v2 request for one in the WAL. A v3 value can look like such a request, so a "yes" may
 * be wrong, a "no" never is.
 */
export async function v2StoreHasKeys(dataDir: string): Promise<boolean> {
  const member = path.join(dataDir, 'member');
  // oxlint-disable-next-line no-control-regex -- protobuf bytes in a WAL, matched on purpose
  const patterns = { snap: /"Path":"\/1\//, wal: /\x1a(?:[\x01-\x7f]|[\x80-\xff][\x01-\x7f])\/1\// };
  for (const sub of ['snap', 'wal'] as const) {
    const dir = path.join(member, sub);
    for (const f of (await fs.readdir(dir).catch(() => [] as string[])).filter((x) => x.endsWith(`.${sub}`))) {
      if (patterns[sub].test((await fs.readFile(path.join(dir, f))).toString('latin1'))) return true;
    }
  }
  return false;
}

/** The last /0/version the WAL or a .snap file records: what etcd 3.3-3.5 read at their start. */
export async function v2StoreVersion(dataDir: string): Promise<{ minor: string; from: string } | undefined> {
  const member = path.join(dataDir, 'member');
  // A raft entry holds a v2 PUT as protobuf: field 3 (path) "/0/version", field 4 (value) "x.y.z".
  // oxlint-disable-next-line no-control-regex -- protobuf bytes in a WAL, matched on purpose
  const walPattern = /\x1a\x0a\/0\/version\x22[\x05-\x0a](\d+\.\d+)\.\d+/g;
  const snapPattern = /"Path":"\/0\/version"[^}]*?"Value":"(\d+\.\d+)\.\d+"/g;
  let found: { minor: string; from: string } | undefined;
  for (const [sub, pattern] of [
    ['snap', snapPattern],
    ['wal', walPattern],
  ] as const) {
    const dir = path.join(member, sub);
    const files = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(`.${sub}`)).sort();
    for (const f of files) {
      const text = (await fs.readFile(path.join(dir, f))).toString('latin1');
      for (const m of text.matchAll(pattern)) found = { minor: m[1]!, from: `member/${sub}/${f}` };
    }
  }
  return found;
}

export function describeEvidence(ev: Evidence): string {
  const parts: string[] = [];
  if (ev.clusterVersion) parts.push(`cluster version ${ev.clusterVersion.minor} (from ${ev.clusterVersion.from})`);
  if (ev.v3Keys !== undefined)
    parts.push(ev.v3Keys ? 'v3 keys present (etcd3 storage)' : 'no v3 keys (etcd2 storage, or no data)');
  return parts.length ? `the data shows ${parts.join(', ')}` : 'the data shows no version';
}
