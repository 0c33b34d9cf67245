// Is an etcd running on a data dir? A running member holds a lock on its bbolt db (flock) and its
// WAL files (OFD locks); the kernel lists them in /proc/locks by device and inode.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** "maj:min:inode" as /proc/locks prints it (hex device numbers). */
export function lockId(dev: number, ino: number): string {
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
}

/** The device:inode ids of every lock in a /proc/locks text. */
export function lockedIds(procLocks: string): Set<string> {
  const ids = new Set<string>();
  for (const line of procLocks.split('\n')) {
    const m = /\s([0-9a-f]+:[0-9a-f]+:\d+)\s/.exec(line);
    if (m) ids.add(m[1]!);
  }
  return ids;
}

/** True when some process holds a lock on the data dir's db or WAL files (on this kernel). */
export async function heldByProcess(dataDir: string, procLocks?: string): Promise<boolean> {
  const files = [path.join(dataDir, 'member', 'snap', 'db')];
  const wal = path.join(dataDir, 'member', 'wal');
  for (const n of await fs.readdir(wal).catch(() => [] as string[]))
    if (n.endsWith('.wal')) files.push(path.join(wal, n));
  const text = procLocks ?? (await fs.readFile('/proc/locks', 'utf8').catch(() => ''));
  const ids = lockedIds(text);
  for (const f of files) {
    const st = await fs.stat(f).catch(() => undefined);
    if (st && ids.has(lockId(st.dev, st.ino))) return true;
  }
  return false;
}
