// Free space: what the steps need, measured from the member dir, against what the file systems have.
// `checkSpace` is pure; `measure*` read the disk.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** etcd preallocates each WAL segment to this size: any step may add one. */
export const WAL_SEGMENT = 64_000_000;

export interface MemberSizes {
  /** Every file under member/ (WAL segments count their preallocated size). */
  member: number;
  /** member/snap/db, the bbolt file; a snapshot is this size (+ 32 bytes). */
  db: number;
}

/** An upper bound of a backup archive of `sizes`: zstd never grows data by more than 1/128, plus headers. */
export const backupBound = (sizes: MemberSizes): number => sizes.member + Math.ceil(sizes.member / 128) + (1 << 20);

/**
 * Scratch space a step needs in the data dir's file system when its runner does not say:
 * 'in-place' steps may add a WAL segment, and restoring the backup after a failure rebuilds the
 * member dir beside the live one; 'rebuild' steps build a new member dir beside a copy.
 */
export function defaultScratch(mode: 'in-place' | 'rebuild', s: MemberSizes): number {
  return mode === 'in-place' ? s.member + WAL_SEGMENT : 2 * s.member + WAL_SEGMENT;
}

export interface SpacePlan {
  /** Bytes available to this process on the data dir's and the backup dir's file systems. */
  dataFree: number;
  backupFree: number;
  /** Both on one file system: they share its free space. */
  sameFs: boolean;
  /** Sizes of this data dir's existing backups, newest first (retention may delete them). */
  existing: readonly number[];
  keep: number;
  steps: ReadonlyArray<{ label: string; backup: number; scratch: number }>;
}

export type SpaceVerdict =
  { ok: true } | { ok: false; step: number; label: string; what: 'backup' | 'scratch'; need: number; free: number };

/**
 * Walks the steps as the executor runs them: write a backup, run the step with its scratch space
 * (freed after it), then delete the backups retention drops (only once the step has run: a step
 * that refuses keeps the older backups). The first shortfall is returned.
 */
export function checkSpace(p: SpacePlan): SpaceVerdict {
  let backupUsed = 0;
  const kept = [...p.existing];
  for (const [i, s] of p.steps.entries()) {
    const backupAvail = p.backupFree - backupUsed;
    if (s.backup > backupAvail)
      return { ok: false, step: i, label: s.label, what: 'backup', need: s.backup, free: Math.max(backupAvail, 0) };
    backupUsed += s.backup;
    kept.unshift(s.backup);
    const dataAvail = p.dataFree - (p.sameFs ? backupUsed : 0);
    if (s.scratch > dataAvail)
      return { ok: false, step: i, label: s.label, what: 'scratch', need: s.scratch, free: Math.max(dataAvail, 0) };
    for (const gone of kept.splice(Math.max(p.keep, 1))) backupUsed -= gone;
  }
  return { ok: true };
}

export async function measureMember(dataDir: string): Promise<MemberSizes> {
  let member = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await fs.lstat(p);
    if (st.isDirectory()) for (const e of await fs.readdir(p)) await walk(path.join(p, e));
    else member += st.size;
  };
  const root = path.join(dataDir, 'member');
  await walk(root).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  const db = await fs.stat(path.join(root, 'snap', 'db')).then(
    (s) => s.size,
    () => 0,
  );
  return { member, db };
}

/** Bytes available to an unprivileged writer on the file system holding `dir`, and its device. */
export async function measureFree(dir: string): Promise<{ free: number; dev: number }> {
  const s = await fs.statfs(dir);
  const st = await fs.stat(dir);
  return { free: s.bavail * s.bsize, dev: st.dev };
}

export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}
