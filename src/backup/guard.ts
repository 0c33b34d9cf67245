// The executor's backup hook: a space check before anything changes, one verified backup before
// the first step of a run changes the data (it covers every step of the run: each later step starts
// from data that this backup can give back), retention after it, and what to do when a step fails.
// One backup per run, not per step: a backup reads, compresses and reads back the whole member dir
// (0.3-0.8 s even for an empty one), which per step would multiply a pod start's downtime.
//
// What "restore" means after a failed step depends on how the step works:
// - 'in-place' (upgrade, patch): etcd ran on the live member dir and may have changed it (new WAL
//   entries, a newer cluster version that the older etcd refuses). The backup taken just before
//   is put back through the journaled swap: the member dir is byte for byte as it was. Not on a
//   member of a multi-member cluster: its temporary etcd was a voting member, and the leader
//   remembers the entries it acknowledged; with the older log back, etcd panics at its next start
//   (`tocommit(N) is out of range`). Its data stays as etcd left it, and the backup is kept.
// - 'rebuild' (downgrade, v2 <-> v3): the live member dir is never written before the swap; a
//   failure before the swap leaves it untouched (the work area is removed), so there is nothing
//   to restore. A failure inside the swap leaves its journal, and the next run completes the swap.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isCluster } from '../cluster.ts';
import { BackupError, StepError, UsageError } from '../errors.ts';
import { errno, removeFileDurably } from '../fsx.ts';
import type { Log } from '../log.ts';
import { MIB, type StartProgress } from '../progress.ts';
import { checkBackupDir, type Options } from '../options.ts';
import { describe, type Step } from '../plan.ts';
import { progressOf } from '../steps/context.ts';
import { runnerFor, type Runner } from '../steps/index.ts';
import { fmtData } from '../version.ts';
import { swapPending } from '../workdir.ts';
import { backupVanishes, inContainer } from './place.ts';
import { backupId, listBackups } from './retention.ts';
import { backupBound, checkSpace, defaultScratch, human, measureFree, measureMember } from './space.ts';
import {
  createBackup,
  existingSizes,
  prune,
  readKeyFile,
  restoreArchive,
  type Backup,
  type BackupDir,
} from './store.ts';

export class BackupGuard {
  readonly target: BackupDir;
  private readonly dataDir: string;
  private readonly log: Log;
  /** A member of a multi-member cluster: its raft log is never rolled back. */
  private readonly clusterMember: boolean;
  private last: Backup | undefined;
  /** The step under way is the one that makes the run's backup. */
  private making = false;
  /** After a failed step: what the run's last line adds (what the data dir holds, what to do). */
  failureNote: string | undefined;

  /** The member dir's bytes, from the space check: what the backup reads, then reads back. */
  private readonly memberBytes: number;
  private readonly progress: StartProgress;

  private constructor(
    target: BackupDir,
    dataDir: string,
    log: Log,
    clusterMember: boolean,
    memberBytes: number,
    progress: StartProgress | undefined,
  ) {
    this.target = target;
    this.dataDir = dataDir;
    this.log = log;
    this.clusterMember = clusterMember;
    this.memberBytes = memberBytes;
    this.progress = progressOf({ log, progress });
  }

  /** Checks everything a backup needs (key, place, free space) before anything changes. */
  static async prepare(
    opts: Options,
    steps: readonly Step[],
    log: Log,
    env: NodeJS.ProcessEnv = process.env,
    progress?: StartProgress,
  ): Promise<BackupGuard> {
    const key = opts.backupKeyFile ? await readKeyFile(opts.backupKeyFile) : undefined;
    const dataReal = await realish(opts.dataDir);
    const dir = await realish(opts.backupDir);
    checkBackupDir(dir, dataReal);
    await checkNotAFile(dir);
    const target = { dir, id: backupId(dataReal), keep: opts.keepBackups, key, codec: opts.backupCompression };
    const sizes = await measureMember(opts.dataDir);
    const guard = new BackupGuard(target, opts.dataDir, log, isCluster(opts.initialCluster), sizes.member, progress);

    const data = await measureFree(await nearestDir(opts.dataDir));
    const existingDir = await nearestDir(dir);
    await fs.access(existingDir, fs.constants.W_OK | fs.constants.X_OK).catch(() => {
      throw new UsageError(
        `the backup dir ${dir} cannot be ${existingDir === dir ? 'written' : `created in ${existingDir}`} ` +
          '(permission denied or read-only); choose a writable --backup-dir (BACKUP_DIR)',
      );
    });
    const backup = await measureFree(existingDir);
    const names = listBackups(await fs.readdir(dir).catch(() => [] as string[]), guard.target.id);
    const verdict = checkSpace({
      dataFree: data.free,
      backupFree: backup.free,
      sameFs: data.dev === backup.dev,
      existing: await existingSizes(guard.target, names),
      keep: opts.keepBackups,
      steps: steps.map((step, i) => {
        const runner = runnerFor(step)!;
        return {
          label: describe(step),
          backup: i === 0 ? backupBound(sizes) : 0,
          scratch: runner.space ? runner.space(step, sizes) : defaultScratch(runner.mode, sizes),
        };
      }),
    });
    if (!verdict.ok) {
      const where = verdict.what === 'backup' ? `its backup in ${dir}` : `its work in ${opts.dataDir}`;
      throw new UsageError(
        `not enough free space for step ${verdict.step + 1} (${verdict.label}): ` +
          `${where} needs up to ${human(verdict.need)}, ` +
          `${human(verdict.free)} is free (member dir ${human(sizes.member)}); ` +
          'free some space, put --backup-dir (BACKUP_DIR) on another disk, or lower --keep-backups',
      );
    }
    const root = await fs.stat('/');
    if (backupVanishes(inContainer(env), { root: root.dev, data: data.dev, backup: backup.dev })) {
      throw new UsageError(
        `the backup dir ${dir} is on this container's own file system, which vanishes with ` +
          `the container, while the data dir ${opts.dataDir} is on a volume; nothing was changed; ` +
          'set --backup-dir (BACKUP_DIR) to a dir on a persistent volume (not inside the data dir)',
      );
    }
    return guard;
  }

  /** For --dry-run: what would be backed up where. */
  static describePlan(opts: Options): string {
    return (
      `one verified backup of the data, before the first step changes it, in ${opts.backupDir} ` +
      `(keep ${opts.keepBackups}${opts.backupKeyFile ? ', encrypted' : ''})`
    );
  }

  /**
   * The run's backup before its first step changes anything, then the step; when the step fails,
   * what afterFailure says. The step calls `backedUp` before it changes the live data. Mostly the
   * backup comes first. A rebuild step only reads the live data until its swap: one that leaves a
   * core idle (`backupBeside`) has the backup run beside its work (both only read the member dir),
   * and its swap waits for the backup to be written and verified.
   *
   * Retention runs once the step that made the backup has run or failed. A step that refuses
   * (UsageError: nothing was changed) leaves no backup behind and deletes no older one.
   */
  async around<T>(
    s: Step,
    runner: Pick<Runner<Step>, 'mode' | 'backupBeside'>,
    step: (backedUp: () => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const makes = !this.last;
    this.making = makes;
    try {
      const result = await this.withBackup(s, runner, step);
      if (makes) await this.retain();
      return result;
    } catch (e) {
      if (makes && this.last) {
        if (refused(e) && runner.mode === 'rebuild' && !(await swapPending(this.dataDir))) await this.discard();
        else await this.retain();
      }
      throw e;
    }
  }

  private async withBackup<T>(
    s: Step,
    runner: Pick<Runner<Step>, 'mode' | 'backupBeside'>,
    step: (backedUp: () => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const mode = runner.mode;
    if (this.last || mode === 'in-place' || !runner.backupBeside) {
      if (!this.last) await this.before(s);
      return this.failing(s, mode, () => step(async () => {}));
    }
    const backup = this.before(s);
    let failed: { error: unknown } | undefined;
    backup.catch((error: unknown) => {
      failed = { error };
    });
    try {
      return await step(async () => {
        await backup;
      });
    } catch (e) {
      await backup.catch(() => {});
      // No backup: the step stopped before its swap; the backup's own error says what is wrong.
      if (failed) throw failed.error;
      await this.afterFailure(s, mode, e);
      throw e;
    }
  }

  private async failing<T>(s: Step, mode: Runner<Step>['mode'], step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      await this.afterFailure(s, mode, e);
      throw e;
    }
  }

  async before(s: Step): Promise<Backup> {
    this.last = undefined;
    const t0 = Date.now();
    // Each byte is read, then read back: twice the member dir.
    const progress = this.progress('backup', (2 * this.memberBytes) / MIB, 'MiB');
    const b = await createBackup(this.dataDir, s.from, this.target, new Date(), (n) => progress.add(n / MIB))
      .catch((e: unknown) => {
        throw backupFailure(e, this.target.dir);
      })
      .finally(() => progress.end());
    this.last = b;
    const files = b.manifest.entries.filter((e) => e.type === 'file').length;
    const took = ((Date.now() - t0) / 1000).toFixed(2);
    const fields = { file: b.file, files, bytes: b.manifest.bytes, size: b.size, seconds: Number(took) };
    const line = `backup of ${fmtData(s.from)}: ${human(b.manifest.bytes)} in ${files} files, verified, ${took} s`;
    this.log(`${line}: ${b.file}`, { fields });
    return b;
  }

  /**
   * Retention, once the run's backup is known to be needed. It runs after the step, so a failure
   * here must not turn a step that completed into a failed one: older backups then stay, and the log says so.
   */
  private async retain(): Promise<void> {
    try {
      const gone = await prune(this.target);
      if (gone.length) this.log(`removed ${gone.length} older backup(s), keeping ${this.target.keep}`);
    } catch (e) {
      this.log(
        `could not remove older backups from ${this.target.dir} (${(e as Error).message}); they stay until a later run`,
      );
    }
  }

  /** A refusal changed nothing: its backup is not needed, and none is left behind. */
  private async discard(): Promise<void> {
    const b = this.last!;
    this.last = undefined;
    await removeFileDurably(b.file);
    this.log(`the step refused before changing anything; its backup ${b.file} was removed`);
  }

  /** After a step failed: put the data back when the step may have changed it, and say what happened. */
  async afterFailure(s: Step, mode: Runner<Step>['mode'], error: unknown): Promise<void> {
    const b = this.last;
    this.failureNote = undefined;
    if (!b) return;
    if (mode === 'rebuild') {
      // A refusal by the step that made the backup: around() removes it and says so.
      if (this.making && refused(error) && !(await swapPending(this.dataDir))) return;
      this.log(
        (await swapPending(this.dataDir))
          ? `the swap to ${fmtData(s.to)} was interrupted; the next run completes it (backup ${b.file})`
          : `the data dir was not changed: the step builds its result aside and it was removed (backup ${b.file} kept)`,
      );
      return;
    }
    if (this.clusterMember) {
      this.keepClusterLog(s, b);
      return;
    }
    this.log(`the step failed after etcd ran on the live data; restoring ${b.file}`);
    try {
      const v = await restoreArchive(b.file, this.target.key, this.dataDir);
      this.log(
        "restored the data dir from the backup taken before this run's first step: " +
          `it is as it was then (version.txt = ${fmtData(v)})`,
      );
      this.failureNote =
        "the data dir was put back from the backup taken before the run's first step; " +
        'fix the cause and rerun to repeat its steps';
    } catch (e) {
      this.log(
        `could not restore the backup automatically (${(e as Error).message}); ` +
          `the data dir may hold changes by etcd ${fmtData(s.to)} while version.txt says ${fmtData(s.from)}: ` +
          `rerun to retry the step, or restore by hand with: etcd-migrate restore ${b.file} --data-dir <an empty dir>`,
      );
    }
  }

  /**
   * A cluster member's temporary etcd acknowledged entries its leader remembers: putting the older
   * log back would make etcd panic at its next start. Rerunning the step is safe: etcd starts on the
   * log it wrote, and the member catches up from its peers.
   */
  private keepClusterLog(s: Step, b: Backup): void {
    this.log(
      `the step failed after etcd ${fmtData(s.to)} was started on the live data of a cluster member; ` +
        `the data dir is left as etcd left it, not put back from ${b.file} (kept): a cluster member's raft log ` +
        'is never rolled back, since its peers remember the entries it acknowledged',
    );
    this.failureNote =
      `the member dir holds what etcd ${fmtData(s.to)} left (a cluster member's raft log is never ` +
      `rolled back; backup ${b.file} kept); fix the cause and rerun: the member rejoins the cluster with its own log`;
  }
}

/** A refusal found during a step: bad input, nothing changed (a StepError is a failure). */
const refused = (e: unknown): boolean => e instanceof UsageError && !(e instanceof StepError);

/**
 * The backup could not be written: said as the backup's problem, with nothing changed (the step has
 * not started, or stops before its swap). A full, read-only or missing place is the operator's to fix.
 */
function backupFailure(e: unknown, dir: string): Error {
  if (e instanceof UsageError) return e;
  const code = errno(e);
  const why = (e as Error).message;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new UsageError(
      `the backup in ${dir} could not be written: its file system is full (${code}); ` +
        'nothing was changed; free space there, put --backup-dir (BACKUP_DIR) on another disk, ' +
        'or lower --keep-backups',
    );
  }
  if (code && ['EROFS', 'EACCES', 'EPERM', 'ENOTDIR', 'EEXIST', 'EISDIR'].includes(code)) {
    return new UsageError(
      `the backup in ${dir} could not be written (${why}); nothing was changed; ` +
        'point --backup-dir (BACKUP_DIR) at a writable directory',
    );
  }
  return new BackupError(`the backup in ${dir} failed (${why}); nothing was changed`);
}

/** The absolute path with symlinks resolved as far as it exists. */
async function realish(p: string): Promise<string> {
  const abs = path.resolve(p);
  let head = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await fs.realpath(head), ...rest.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      rest.push(path.basename(head));
      head = up;
    }
  }
}

/** The backup dir, or the first of its parents that exists, must be a directory. */
async function checkNotAFile(dir: string): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = await fs.stat(d).catch(() => undefined);
    if (st && !st.isDirectory()) {
      throw new UsageError(
        `the backup dir ${dir} cannot be made: ${d} is a file, not a directory; ` +
          'nothing was changed; point --backup-dir (BACKUP_DIR) at a directory',
      );
    }
    if (st || path.dirname(d) === d) return;
  }
}

async function nearestDir(p: string): Promise<string> {
  let d = path.resolve(p);
  for (;;) {
    const ok = await fs.stat(d).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (ok) return d;
    const up = path.dirname(d);
    if (up === d) return d;
    d = up;
  }
}
