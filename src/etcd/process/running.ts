// An etcd running on a data dir, whatever flags or ETCD_* variables started it, found by the locks
// etcd holds while it runs: a write lock on its WAL files (an OFD lock, fcntl: etcd 3.x on Linux)
// and bbolt's flock on member/snap/db. The kernel keeps one lock table for every PID namespace:
// /proc/locks lists the OFD locks of every namespace (without a PID) but a flock only when its
// holder is in this one (then with its PID, for the message). A read lock on a WAL file, asked for
// through node:sqlite (Node has no fcntl), is refused while etcd holds its lock, in any namespace:
// the check that needs no /proc.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { UsageError } from '../../errors.ts';
import { readlinkOr, readOr } from '../../fsx.ts';

export interface RunningEtcd {
  /** The locked file, relative to the data dir. */
  file: string;
  /** The holder, when it is visible here. */
  pid?: number;
}

const SQLITE_BUSY = 5;

export function findRunningEtcd(dataDir: string): RunningEtcd | undefined {
  const member = path.join(dataDir, 'member');
  const wal = path.join(member, 'wal');
  const walFiles = readdirOr(wal)
    .filter((f) => f.endsWith('.wal') || f.endsWith('.tmp'))
    .map((f) => path.join(wal, f));
  const files = [path.join(member, 'snap', 'db'), ...walFiles];
  const visible = lockHolders(files);
  const seen = files.find((f) => visible.has(f));
  if (seen) return { file: path.relative(dataDir, seen), pid: visible.get(seen) };
  const locked = walFiles.find(recordLocked);
  return locked ? { file: path.relative(dataDir, locked) } : undefined;
}

/** Refuses a data dir an etcd runs on (exit 2, nothing changed), with `fix` as the way out. */
export function refuseRunningEtcd(dataDir: string, fix = 'stop it before migrating its data'): void {
  const r = findRunningEtcd(dataDir);
  if (!r) return;
  const exe = r.pid && (path.basename(readlinkOr(`/proc/${r.pid}/exe`)) || 'exe unknown');
  const who = r.pid ? `etcd (pid ${r.pid}, ${exe})` : 'an etcd in another PID namespace (another container)';
  throw new UsageError(`${who} is running on ${dataDir} (it holds the lock on ${r.file}); ${fix}`);
}

/** Whether another process holds a record lock on `file` that a reader's lock conflicts with. */
export function recordLocked(file: string): boolean {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: true, timeout: 0 });
    db.prepare('PRAGMA schema_version').get();
    return false;
  } catch (e) {
    // Not a database (a WAL segment is not): the read lock was granted first.
    return (e as { errcode?: number }).errcode === SQLITE_BUSY;
  } finally {
    db?.close();
  }
}

/** The files among `files` that /proc/locks shows locked, with the holder's PID when it is visible here. */
function lockHolders(files: readonly string[]): Map<string, number | undefined> {
  const byInode = new Map<string, string>();
  for (const f of files) {
    try {
      const st = statSync(f);
      byInode.set(`${devName(st.dev)}:${st.ino}`, f);
    } catch {
      // not there
    }
  }
  const out = new Map<string, number | undefined>();
  if (byInode.size === 0) return out;
  for (const lock of procLocks(readOr('/proc/locks'))) {
    const f = byInode.get(lock.id);
    if (f && !out.get(f)) out.set(f, lock.pid);
  }
  return out;
}

/** The locks of a /proc/locks text: "maj:min:inode" and the holder's PID (none for OFD locks, -1 there). */
export function procLocks(text: string): Array<{ id: string; pid?: number }> {
  const locks: Array<{ id: string; pid?: number }> = [];
  for (const line of text.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 17083 fe:00:9986084 0 EOF"; a blocked waiter's line starts with "->".
    const m = /^\d+: (?:->\s+)?\S+\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+:[0-9a-f]+:\d+)\s/.exec(line);
    if (m) locks.push({ id: m[2]!, ...(Number(m[1]) > 0 ? { pid: Number(m[1]) } : {}) });
  }
  return locks;
}

/** A device number as /proc/locks writes it: major:minor in hex, two digits at least. */
export function devName(dev: number): string {
  const major = Number((BigInt(dev) >> 8n) & 0xfffn) | Number((BigInt(dev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(dev) & 0xffn) | Number((BigInt(dev) >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

function readdirOr(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}
