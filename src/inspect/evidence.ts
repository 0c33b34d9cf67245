// What a data dir without version.txt says about itself. etcd records only the cluster's
// major.minor: in bbolt (bucket "cluster", key "clusterVersion") and in the v2 store (/0/version,
// found in the WAL's raft entries and in .snap files). Whether v3 keys exist tells etcd3 storage.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Bbolt } from './bbolt.ts';

export interface Evidence {
  /** major.minor, e.g. "3.4", with where it was read. */
  clusterVersion?: { minor: string; from: string };
  /** Whether bbolt's key bucket holds v3 keys (undefined: no readable db). */
  v3Keys?: boolean;
}

export async function readEvidence(dataDir: string): Promise<Evidence> {
  const member = path.join(dataDir, 'member');
  const ev: Evidence = {};
  try {
    const db = new Bbolt(path.join(member, 'snap', 'db'));
    try {
      const cv = db.get(['cluster'], 'clusterVersion')?.toString('latin1');
      const m = cv && /^(\d+\.\d+)\.\d+$/.exec(cv);
      if (m) ev.clusterVersion = { minor: m[1]!, from: 'member/snap/db' };
      ev.v3Keys = db.hasKeys(['key']);
    } finally {
      db.close();
    }
  } catch {
    // no db, or not readable: fall back to the v2 store
  }
  if (!ev.clusterVersion) {
    const v2 = await v2StoreVersion(member);
    if (v2) ev.clusterVersion = v2;
  }
  return ev;
}

/** The last /0/version the WAL or a .snap file records. */
async function v2StoreVersion(member: string): Promise<{ minor: string; from: string } | undefined> {
  // A raft entry holds a v2 PUT as protobuf: field 3 (path) "/0/version", field 4 (value) "x.y.z".
  const walPattern = /\x1a\x0a\/0\/version\x22[\x05-\x0a](\d+\.\d+)\.\d+/g;
  const snapPattern = /"Path":"\/0\/version"[^}]*?"Value":"(\d+\.\d+)\.\d+"/g;
  let found: { minor: string; from: string } | undefined;
  for (const [sub, pattern] of [['snap', snapPattern], ['wal', walPattern]] as const) {
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
  if (ev.v3Keys !== undefined) parts.push(ev.v3Keys ? 'v3 keys present (etcd3 storage)' : 'no v3 keys (etcd2 storage, or no data)');
  return parts.length ? `the data shows ${parts.join(', ')}` : 'the data shows no version';
}
