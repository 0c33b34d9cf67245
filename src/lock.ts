// One entrypoint per data dir. The lock is a POSIX record lock on <data-dir>/.etcd-migrate.lock.db,
// taken through node:sqlite (Node has no flock or fcntl): the kernel keeps it for the holder's
// lifetime, across PID namespaces, drops it when the holder dies (killed, or a zombie: its files
// are closed), and gives it to exactly one of many contenders. A PID alone cannot say that: in two
// containers both entrypoints are PID 1. A file beside the lock says who holds it, for messages.
import { readdirSync, readFileSync, realpathSync, statSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { LOCK_FILE } from './datadir.ts';
import { UsageError } from './errors.ts';
import { readlinkOr, readOr } from './fsx.ts';

/** The locked file; never opened by anything else in this process (closing any fd of it drops the lock). */
export const LOCK_DB = `${LOCK_FILE}.db`;
/** Who holds the lock: written by the holder once it has it. */
export const LOCK_HOLDER = `${LOCK_FILE}.holder`;

export interface Lock {
  release: () => Promise<void>;
}

/** A process as the kernel knows it: the PID means something only with its boot and PID namespace. */
export interface Holder {
  pid: number;
  start?: string;
  pidns?: string;
  boot?: string;
  host: string;
  since: string;
}

const SQLITE_BUSY = 5;
const SQLITE_NOTADB = 26;

/** The kernel's start time of a process (clock ticks since boot), or undefined if it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Running (not a zombie: a zombie has closed its files and holds nothing). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function self(): Holder {
  return {
    pid: process.pid,
    start: processStart(process.pid),
    pidns: readlinkOr('/proc/self/ns/pid'),
    boot: readOr('/proc/sys/kernel/random/boot_id').trim() || undefined,
    host: os.hostname(),
    since: new Date().toISOString(),
  };
}

const sameNamespace = (h: Holder, me: Holder): boolean => h.boot === me.boot && h.pidns === me.pidns;

/** The holder's process, if it is visible here and still the same process (same boot, namespace and start). */
export function sameLiveProcess(h: Holder, me = self()): boolean {
  return sameNamespace(h, me) && h.pid !== me.pid && processStart(h.pid) === h.start && isRunning(h.pid);
}

export async function acquireLock(dataDir: string): Promise<Lock> {
  const file = path.join(dataDir, LOCK_DB);
  for (let attempt = 0; attempt < 5; attempt++) {
    const db = tryLock(file);
    if (!db) throw busy(dataDir, await currentHolder(dataDir));
    // A holder's release unlinks the file; a lock on the unlinked one keeps nobody out: again.
    if (!lockedFileIsCurrent(file)) {
      db.close();
      continue;
    }
    try {
      await checkPrevious(dataDir, await readHolder(dataDir));
    } catch (e) {
      db.close();
      throw e;
    }
    // A full disk, say: the lock's files go, as at a release (the previous holder is gone).
    await writeHolder(dataDir, self()).catch(async (e: unknown) => {
      await release(dataDir, db);
      throw e;
    });
    return { release: () => release(dataDir, db) };
  }
  throw new UsageError(`could not take the lock ${file}: it was replaced 5 times in a row; rerun`);
}

/** An exclusive transaction held open is the lock; SQLITE_BUSY: another process holds it. */
function tryLock(file: string): DatabaseSync | undefined {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { timeout: 0 });
    db.exec('PRAGMA journal_mode=MEMORY');
    db.exec('BEGIN EXCLUSIVE');
    return db;
  } catch (e) {
    db?.close();
    if ((e as { errcode?: number }).errcode === SQLITE_BUSY) return undefined;
    if ((e as { errcode?: number }).errcode === SQLITE_NOTADB) {
      throw new UsageError(
        `${file} is not a lock etcd-migrate made (those stay empty); ` +
          'if no etcd-migrate runs on this data dir, remove it',
      );
    }
    throw e;
  }
}

/**
 * Whether the descriptors this process has on `file` (there is one at least: the connection's) are
 * all the file now at that path, not one a release unlinked. /proc names them by their real path.
 */
export function lockedFileIsCurrent(file: string): boolean {
  let now: { dev: number; ino: number };
  let real: string;
  try {
    now = statSync(file);
    real = path.join(realpathSync(path.dirname(file)), path.basename(file));
  } catch {
    return false;
  }
  let seen = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    const target = readlinkOr(`/proc/self/fd/${fd}`);
    if (target !== real && target !== `${real} (deleted)`) continue;
    const st = (() => {
      try {
        return statSync(`/proc/self/fd/${fd}`);
      } catch {
        return undefined;
      }
    })();
    if (!st || st.ino !== now.ino || st.dev !== now.dev) return false;
    seen++;
  }
  return seen > 0;
}

/**
 * The previous holder may be alive without the lock: the exec'd etcd keeps the entrypoint's PID but
 * not its files. Visible here (same PID namespace), it refuses the run; etcd's own locks on its
 * data (etcd/process/running.ts) cover one in another namespace.
 */
async function checkPrevious(dataDir: string, prev: Holder | undefined): Promise<void> {
  if (!prev || !sameLiveProcess(prev)) return;
  const exe = path.basename(readlinkOr(`/proc/${prev.pid}/exe`));
  if (exe.startsWith('etcd')) {
    throw new UsageError(`etcd (pid ${prev.pid}, ${exe}) is running on ${dataDir}; stop it before migrating its data`);
  }
  throw new UsageError(`another etcd-migrate (pid ${prev.pid}) is working on ${dataDir}; ${WAIT}`);
}

const WAIT = 'wait for it to finish, or stop it';

function busy(dataDir: string, h: Holder | undefined): UsageError {
  if (!h) return new UsageError(`another etcd-migrate holds the lock ${path.join(dataDir, LOCK_DB)}; ${WAIT}`);
  const where = sameNamespace(h, self()) ? '' : ` in another PID namespace (host ${h.host}, since ${h.since})`;
  return new UsageError(`another etcd-migrate (pid ${h.pid}${where}) is working on ${dataDir}; ${WAIT}`);
}

/**
 * The record of the process that holds the lock now. A new holder writes it just after it takes
 * the lock, so a record naming a process that is gone here is the previous one's: read it again.
 */
async function currentHolder(dataDir: string): Promise<Holder | undefined> {
  const me = self();
  for (let i = 0; i < 20; i++) {
    const h = await readHolder(dataDir);
    if (h && (!sameNamespace(h, me) || sameLiveProcess(h, me))) return h;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

async function readHolder(dataDir: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await fs.readFile(path.join(dataDir, LOCK_HOLDER), 'utf8')) as Holder;
    return typeof h.pid === 'number' ? h : undefined;
  } catch {
    return undefined;
  }
}

async function writeHolder(dataDir: string, h: Holder): Promise<void> {
  const file = path.join(dataDir, LOCK_HOLDER);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    await fs.writeFile(tmp, `${JSON.stringify(h)}\n`, { mode: 0o600 });
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/**
 * Only its own lock: the files go while it still holds it, so no later holder's files can be
 * removed; a second call does nothing.
 */
async function release(dataDir: string, db: DatabaseSync): Promise<void> {
  if (!db.isOpen) return;
  try {
    await fs.rm(path.join(dataDir, LOCK_HOLDER), { force: true });
    await fs.rm(path.join(dataDir, LOCK_DB), { force: true });
  } finally {
    db.close();
  }
}
