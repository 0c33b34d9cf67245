// The data dir: what it holds (nothing, or data with a version.txt) and the version file.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from './errors.ts';
import { errno, readIfExists, writeFileAtomic } from './fsx.ts';
import { fmtData, formatVersionFile, parseVersionFile, type DataVersion } from './version.ts';

export const VERSION_FILE = 'version.txt';
/** Work area of rewriting steps (see workdir.ts). */
export const WORK_DIR = '.etcd-migrate';
/** One entrypoint per data dir: the prefix of the lock's files (lock.ts), and older versions' lock file. */
export const LOCK_FILE = '.etcd-migrate.lock';
/**
 * The TTLs a v2-to-v3 step leaves for the attach-ttls step at the end of the chain (see
 * etcd2/convert/pending.ts). It is data: a data dir holding it is not empty.
 */
export const PENDING_TTLS_FILE = '.etcd-migrate.pending-ttls';

/** Entries that do not make a data dir hold data: our own files and a file system's lost+found. */
const IGNORED = new Set([VERSION_FILE, `${VERSION_FILE}.next`, 'lost+found', WORK_DIR, LOCK_FILE]);

export type DataDirState =
  | { kind: 'missing' }
  | { kind: 'empty'; version: DataVersion | undefined }
  | { kind: 'data'; version: DataVersion }
  /** Data but no version.txt: the caller decides (never guess). */
  | { kind: 'unversioned' };

export async function inspectDataDir(dir: string): Promise<DataDirState> {
  let entries: string[];
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory())
      throw new UsageError(
        `the data dir ${dir} is not a directory; point --data-dir (DATA_DIRECTORY) at etcd's data directory`,
      );
    entries = await fs.readdir(dir);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (errno(e) === 'ENOENT') return { kind: 'missing' };
    if (errno(e) === 'EACCES')
      throw new UsageError(`the data dir ${dir} cannot be read (permission denied); run as its owner or fix its mode`);
    if (errno(e) === 'ENOTDIR')
      throw new UsageError(
        `the data dir ${dir} is not a directory; point --data-dir (DATA_DIRECTORY) at etcd's data directory`,
      );
    throw e;
  }
  const file = path.join(dir, VERSION_FILE);
  let text: string | undefined;
  try {
    text = await readIfExists(file);
  } catch (e) {
    if (errno(e) === 'EACCES')
      throw new UsageError(`${file} cannot be read (permission denied); run as its owner or fix its mode`);
    if (errno(e) === 'EISDIR')
      throw new UsageError(
        `${file} is a directory; remove it and write "<x.y.z>/<etcd2|etcd3>" into a file of that name`,
      );
    throw e;
  }
  const version = text === undefined ? undefined : parseVersionFile(text, file);
  const hasData = entries.some((e) => !IGNORED.has(e) && !e.startsWith(`${LOCK_FILE}.`));
  if (!hasData) return { kind: 'empty', version };
  if (!version) return { kind: 'unversioned' };
  return { kind: 'data', version };
}

export async function writeVersionFile(dir: string, v: DataVersion): Promise<void> {
  await writeFileAtomic(path.join(dir, VERSION_FILE), formatVersionFile(v));
}

export { fmtData };
