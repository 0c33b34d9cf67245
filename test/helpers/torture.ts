// Kill the entrypoint at random moments of a migration, rerun, repeat; check after every kill that
// version.txt never claims a state the data is not in. Shared by the CI test and bench/torture.ts.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Bbolt } from '../../src/etcd/disk/bbolt.ts';
import { parseVersionFile, fmtData, type DataVersion } from '../../src/version.ts';
import { ENTRY } from './env.ts';

export interface TortureResult {
  kills: number;
  /** Fresh copies of the data migrated to the end (each through some of the kills). */
  episodes: number;
  orphans: number;
  runs: number;
  converged: boolean;
  violations: string[];
  seed: number;
  /** The data dir of the last episode, migrated to the end when converged. */
  lastDataDir: string;
}

/** Mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TortureOptions {
  /** A fresh copy of the data to migrate, for each episode. */
  freshDataDir: () => Promise<string>;
  args: (dataDir: string) => string[];
  kills: number;
  seed: number;
  /** Kill moments are drawn from [0, maxDelayMs). */
  maxDelayMs: number;
  /** Checks a state after a kill; returns a violation or undefined. */
  check?: (dataDir: string, claimed: DataVersion) => Promise<string | undefined>;
}

export async function torture(o: TortureOptions): Promise<TortureResult> {
  const rand = prng(o.seed);
  const result: TortureResult = {
    kills: 0,
    episodes: 0,
    orphans: 0,
    runs: 0,
    converged: false,
    violations: [],
    seed: o.seed,
    lastDataDir: '',
  };
  const check = o.check ?? checkClusterVersion;
  let dataDir = '';
  // Episodes: a fresh copy, killed at random moments until a run completes; then another copy,
  // until the kills are spent and the last copy has converged.
  for (let attempt = 0; attempt < o.kills * 6 + 20; attempt++) {
    if (!dataDir) {
      dataDir = await o.freshDataDir();
      result.episodes++;
      result.converged = false;
    }
    result.runs++;
    const proc = execa(process.execPath, [ENTRY, ...o.args(dataDir)], {
      detached: true,
      reject: false,
      stdin: 'ignore',
      all: true,
    });
    const killing = result.kills < o.kills;
    const delay = rand() * o.maxDelayMs;
    const orphan = result.kills % 4 === 3; // every 4th kill orphans the temporary etcd
    let killed = false;
    const timer = killing
      ? setTimeout(() => {
          killed = true;
          // Mostly the whole process group (a pod killed); sometimes the entrypoint alone, orphaning its etcd.
          try {
            process.kill(orphan ? proc.pid! : -proc.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, delay)
      : undefined;
    const r = await proc;
    clearTimeout(timer);
    if (killed && r.signal === 'SIGKILL') {
      result.kills++;
      if (orphan) result.orphans++;
    } else if (r.exitCode === 0) {
      result.converged = true;
      result.lastDataDir = dataDir;
      if (result.kills >= o.kills) break;
      dataDir = '';
      continue;
    } else if (!killed || r.signal !== 'SIGKILL') {
      result.violations.push(
        `run ${result.runs} failed (exit ${r.exitCode ?? r.signal}): ` +
          String(r.all).split('\n').filter(Boolean).slice(-3).join(' | '),
      );
      if (result.violations.length > 3) break;
    }
    const text = await fs.readFile(path.join(dataDir, 'version.txt'), 'utf8').catch(() => undefined);
    if (text === undefined) {
      result.violations.push(`after kill ${result.kills}: version.txt missing`);
      continue;
    }
    let claimed: DataVersion;
    try {
      claimed = parseVersionFile(text);
    } catch (e) {
      result.violations.push(`after kill ${result.kills}: version.txt unreadable: ${(e as Error).message}`);
      continue;
    }
    const v = await check(dataDir, claimed);
    if (v) result.violations.push(`after kill ${result.kills}: ${v}`);
  }
  return result;
}

/** etcd3: the cluster version bbolt records is at least the minor version.txt claims. */
export async function checkClusterVersion(dataDir: string, claimed: DataVersion): Promise<string | undefined> {
  let cv: string | undefined;
  try {
    const db = new Bbolt(path.join(dataDir, 'member/snap/db'));
    try {
      cv = db.get(['cluster'], 'clusterVersion')?.toString();
    } finally {
      db.close();
    }
  } catch (e) {
    return `member/snap/db unreadable while version.txt says ${fmtData(claimed)}: ${(e as Error).message}`;
  }
  const [maj, min] = (cv ?? '0.0').split('.').map(Number);
  if (maj! < claimed.version.major || (maj === claimed.version.major && min! < claimed.version.minor)) {
    return `version.txt says ${fmtData(claimed)} but the data's cluster version is ${cv}`;
  }
  return undefined;
}

/**
 * etcd2 data on its way to etcd3: besides the cluster version, the storage version.txt claims is
 * the one the live member holds (etcd2: no v3 key yet, so no write reached v3 before the
 * conversion; etcd3: the converted keys). A swap interrupted under its journal is the next run's
 * to finish, so its state is not judged.
 */
export async function checkStorage(dataDir: string, claimed: DataVersion): Promise<string | undefined> {
  // Judged first: mid-swap the live member dir may be moved aside, so not even the db is there.
  if (
    await fs.stat(path.join(dataDir, '.etcd-migrate', 'swap.journal')).then(
      () => true,
      () => false,
    )
  )
    return undefined;
  const cv = await checkClusterVersion(dataDir, claimed);
  if (cv) return cv;
  const db = new Bbolt(path.join(dataDir, 'member/snap/db'));
  let v3Keys: boolean;
  try {
    v3Keys = db.hasKeys(['key']);
  } finally {
    db.close();
  }
  if (claimed.storage === 'etcd2' && v3Keys)
    return `version.txt says ${fmtData(claimed)} but the live member holds v3 keys`;
  if (claimed.storage === 'etcd3' && !v3Keys)
    return `version.txt says ${fmtData(claimed)} but the live member holds no v3 key`;
  return undefined;
}

/**
 * Fresh copies of `pristine` under `root` (run0, run1, ...), one per torture episode; copies older
 * than the last two, and their backups, are removed as it goes.
 */
export function copier(pristine: string, root: string): () => Promise<string> {
  let n = 0;
  return async () => {
    const d = path.join(root, `run${n++}`);
    await fs.cp(pristine, d, { recursive: true });
    const old = path.join(root, `run${n - 3}`);
    await fs.rm(old, { recursive: true, force: true });
    await fs.rm(`${old}.backups`, { recursive: true, force: true });
    return d;
  };
}
