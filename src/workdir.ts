// Steps that rewrite data never touch the live member dir: they build a new one in the work area
// `<data-dir>/.etcd-migrate/` (same file system, so renames are atomic) and the swap puts it in
// place under a journal. A crash at any moment leaves either the old data or the new, and the
// next run finishes or undoes the swap before it does anything else.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WORK_DIR, writeVersionFile } from './datadir.ts';
import { errno, fsyncDir, readIfExists, writeFileAtomic } from './fsx.ts';
import { fmtData, parseVersionFile, type DataVersion } from './version.ts';

const JOURNAL = 'swap.journal';

export const workDir = (dataDir: string): string => path.join(dataDir, WORK_DIR);
/** Where a rewriting step builds the new member dir. */
export const newMemberDir = (dataDir: string): string => path.join(workDir(dataDir), 'new', 'member');
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
 * Puts the new member dir in place of the live one and records `to` in version.txt.
 * Journal first, then two renames, then version.txt, then the old dir goes.
 */
export async function swapInNewMember(dataDir: string, to: DataVersion): Promise<void> {
  const journal = path.join(workDir(dataDir), JOURNAL);
  await fsyncDir(path.dirname(newMemberDir(dataDir)));
  await writeFileAtomic(journal, fmtData(to), 0o600);
  await finishSwap(dataDir, to);
}

async function finishSwap(dataDir: string, to: DataVersion): Promise<void> {
  const live = liveMember(dataDir);
  const fresh = newMemberDir(dataDir);
  const old = oldMemberDir(dataDir);
  if (await exists(fresh)) {
    if (await exists(live)) {
      await fs.mkdir(path.dirname(old), { recursive: true, mode: 0o700 });
      await fs.rename(live, old);
      await fsyncDir(dataDir);
    }
    await fs.rename(fresh, live);
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

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw e;
  }
}
