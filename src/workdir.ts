// Steps that rewrite data never touch the live member dir: they build a new one in the work area
// `<data-dir>/.etcd-migrate/` (same file system, so renames are atomic) and the swap puts it in
// place under a journal. A crash at any moment leaves either the old data or the new, and the
// next run finishes or undoes the swap before it does anything else.
//
// Beside the member dir, `new/` may hold files that belong with it (the TTLs a conversion leaves
// pending): the swap moves every entry of `new/` to its place in the data dir, each by one rename.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from './errors.ts';
import { PENDING_TTLS_FILE, WORK_DIR, writeVersionFile } from './datadir.ts';
import { errno, fsyncDir, readIfExists, writeFileAtomic } from './fsx.ts';
import { fmtData, parseVersionFile, type DataVersion } from './version.ts';

const JOURNAL = 'swap.journal';
const NEW = 'new';
const PENDING_TTLS_NEW = 'pending-ttls.tsv';

/** What `new/` may hold, and where the swap puts each entry (relative to the data dir). */
const SWAPPED: ReadonlyMap<string, string> = new Map([
  ['member', 'member'],
  [PENDING_TTLS_NEW, PENDING_TTLS_FILE],
]);

export const workDir = (dataDir: string): string => path.join(dataDir, WORK_DIR);
/** Where a rewriting step builds the new member dir. */
export const newMemberDir = (dataDir: string): string => path.join(workDir(dataDir), NEW, 'member');
/** Where a v2-to-v3 step writes the TTLs it leaves pending; the swap moves it to pendingTtlsFile. */
export const newPendingTtlsFile = (dataDir: string): string => path.join(workDir(dataDir), NEW, PENDING_TTLS_NEW);
/** The TTLs pending for an attach-ttls step. */
export const pendingTtlsFile = (dataDir: string): string => path.join(dataDir, PENDING_TTLS_FILE);
const oldMemberDir = (dataDir: string): string => path.join(workDir(dataDir), 'old', 'member');
const liveMember = (dataDir: string): string => path.join(dataDir, 'member');

/** Empties the work area (what a crashed run left) and makes `new/` ready; keeps nothing inside. */
export async function prepareWorkDir(dataDir: string): Promise<string> {
  await fs.rm(workDir(dataDir), { recursive: true, force: true });
  await fs.mkdir(path.dirname(newMemberDir(dataDir)), { recursive: true, mode: 0o700 });
  return newMemberDir(dataDir);
}

export async function removeWorkDir(dataDir: string): Promise<void> {
  await fs.rm(workDir(dataDir), { recursive: true, force: true });
}

/**
 * Puts the new member dir (and what lies beside it in `new/`) in place of the live one and
 * records `to` in version.txt. Journal first, then the renames, then version.txt, then the old dir
 * goes. The caller has made every file in `new/` durable (fsync); the directory is synced here.
 */
export async function swapInNewMember(dataDir: string, to: DataVersion): Promise<void> {
  const fresh = path.join(workDir(dataDir), NEW);
  const unknown = (await fs.readdir(fresh)).filter((e) => !SWAPPED.has(e));
  if (unknown.length)
    throw new StepError(
      `the work area ${fresh} holds ${unknown.join(', ')}, which the swap does not know where to put; ` +
        'the live data was not changed',
    );
  await fsyncDir(fresh);
  await writeFileAtomic(path.join(workDir(dataDir), JOURNAL), fmtData(to), 0o600);
  await finishSwap(dataDir, to);
}

/**
 * Moves each entry still in `new/`: the files beside the member dir first, the member dir last
 * (the live one aside to `old/` first). Each rename happens once: after a crash, a rerun moves
 * what is left, so any order of interruption ends in the same state.
 */
async function finishSwap(dataDir: string, to: DataVersion): Promise<void> {
  const fresh = path.join(workDir(dataDir), NEW);
  const entries = await fs.readdir(fresh).catch((e: unknown) => {
    if (errno(e) === 'ENOENT') return [] as string[];
    throw e;
  });
  for (const e of entries) {
    const dest = SWAPPED.get(e);
    if (dest && dest !== 'member') {
      await fs.rename(path.join(fresh, e), path.join(dataDir, dest));
      await fsyncDir(dataDir);
    }
  }
  if (entries.includes('member')) {
    const live = liveMember(dataDir);
    const old = oldMemberDir(dataDir);
    if (await exists(live)) {
      await fs.mkdir(path.dirname(old), { recursive: true, mode: 0o700 });
      await fs.rename(live, old);
      await fsyncDir(dataDir);
    }
    await fs.rename(newMemberDir(dataDir), live);
    await fsyncDir(dataDir);
  }
  await writeVersionFile(dataDir, to);
  await removeWorkDir(dataDir);
  await fsyncDir(dataDir);
}

/**
 * Run first, before reading version.txt: completes a swap whose journal exists (the new dir was
 * complete when the journal was written), or clears a work area with no journal (a step that
 * crashed before its swap: the live data was never touched). Returns what it did, for the log.
 */
export async function recoverWorkDir(dataDir: string): Promise<string | undefined> {
  let journalText: string | undefined;
  try {
    journalText = await readIfExists(path.join(workDir(dataDir), JOURNAL));
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw e;
  }
  if (journalText !== undefined) {
    const to = parseVersionFile(journalText, path.join(workDir(dataDir), JOURNAL));
    await finishSwap(dataDir, to);
    return `finished the swap to ${fmtData(to)} that an interrupted run had started`;
  }
  if (await exists(workDir(dataDir))) {
    await removeWorkDir(dataDir);
    return 'removed the unfinished work of an interrupted run (the data was not touched)';
  }
  return undefined;
}

/** A swap whose journal is written but not finished: the next run completes it. */
export async function swapPending(dataDir: string): Promise<boolean> {
  return exists(path.join(workDir(dataDir), JOURNAL));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return false;
    throw e;
  }
}
