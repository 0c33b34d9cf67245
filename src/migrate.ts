// The executor. prepare() reads and checks everything the plan needs and changes nothing; apply()
// then runs the steps one by one, recording each in version.txt as it completes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BackupGuard } from './backup/guard.ts';
import type { V2ContentReader } from './inspect/v2content.ts';
import { checkTools, discoverBundled } from './bundled-versions.ts';
import { checkClusterPlan, clusterNote, isCluster, memberNames } from './cluster.ts';
import { inspectDataDir, VERSION_FILE, writeVersionFile, type DataDirState } from './datadir.ts';
import { readIfExists } from './fsx.ts';
import { BackupError, ProcessError, StepError, UsageError, isBug, isUserFacing } from './errors.ts';
import { acquireLock, type Lock } from './lock.ts';
import { refuseRunningEtcd } from './etcd/process/running.ts';
import { stopLeftoverEtcds } from './etcd/process/leftovers.ts';
import { debug, seconds, secondsField, type Log } from './log.ts';
import { memberOf, type Options } from './options.ts';
import type { StartProgress } from './progress.ts';
import { describe, plan, planNotes, stepName, V2_FREE_MINOR, type Step } from './plan.ts';
import { checkEnvFlags, checkFlags } from './etcd/process/flags.ts';
import { checkPortsFree, checkWritable, fsUsageError } from './preflight.ts';
import type { Install, Runner, StepContext, StepReport, ToolNeed } from './steps/index.ts';
import { readDbEvidence, readEvidence, describeEvidence, v2StoreHasKeys, v2StoreVersion } from './inspect/evidence.ts';
import type { ClientTls } from './etcd/tls/config.ts';
import { compareMinor, fmt, fmtData, fmtMinor, type DataVersion, type Version } from './version.ts';
import {
  exists,
  newMemberDir,
  pendingTtlsFile,
  prepareWorkDir,
  recoverWorkDir,
  removeWorkDir,
  swapInNewMember,
} from './workdir.ts';

export interface Runtime {
  env: NodeJS.ProcessEnv;
  log: Log;
  /** Long work's progress (progress.ts); lines through `log` when not given. */
  progress?: StartProgress;
  install: Install;
  /** How long a temporary etcd may take to commit a write. */
  stepTimeoutMs?: number;
  /** Told after each step completes (rehearse reports each step's time). */
  onStep?: (done: { index: number; step: Step; ms: number; detail?: string }) => void;
}

export interface Outcome {
  /** What the data dir held before the run: its version, or why there was none (origin()). */
  from: DataVersion | undefined;
  origin: string;
  steps: Step[];
  /** A dry run's first action when there are steps: the backup it would make. */
  first?: string;
  /** What version.txt holds at the end (the target). */
  final: DataVersion;
  changed: boolean;
}

interface Prepared {
  state: DataDirState;
  current: DataVersion | undefined;
  steps: Step[];
  clientTls?: ClientTls;
  /** Loaded only when there are steps to run. */
  machinery?: Machinery;
  backups?: BackupGuard;
  /** The v2 content as read before the run (3.6 checks), for the steps to reuse while unchanged. */
  v2Content?: V2ContentReader;
}

/**
 * The step runners and the backup guard (execa, zstd, crypto, ...) are loaded only when a step
 * will run: a pod start with nothing to migrate, the common case, reads no more than it needs.
 */
type Machinery = Awaited<ReturnType<typeof loadMachinery>>;
async function loadMachinery() {
  const [{ runnerFor }, { BackupGuard }, { loadClientTls }] = await Promise.all([
    import('./steps/index.ts'),
    import('./backup/guard.ts'),
    import('./etcd/tls/load.ts'),
  ]);
  return { runnerFor, BackupGuard, loadClientTls };
}

/**
 * With `keepLock` (an exec of etcd follows) the lock is not released: the exec'd etcd keeps this
 * PID, so the lock stays live while etcd runs and no second entrypoint migrates under it.
 */
export async function migrate(opts: Options, rt: Runtime, keepLock = false): Promise<Outcome> {
  if (opts.dryRun) {
    // The caller prints the plan (cli.ts: on stdout, as text or JSON).
    const p = await prepare(opts, rt);
    const first = p.machinery?.BackupGuard.describePlan(opts);
    return { from: p.current, origin: origin(p), steps: p.steps, first, final: opts.target, changed: false };
  }
  // A data dir that exists is locked, and an interrupted swap finished, before it is read.
  let lock: Lock | undefined;
  if (await isDir(opts.dataDir)) {
    await checkWritable(opts.dataDir);
    lock = await acquireLock(opts.dataDir).catch((e: unknown) => {
      throw isUserFacing(e) ? e : fsUsageError(e, opts.dataDir);
    });
  }
  try {
    if (lock) {
      await stopLeftoverEtcds(opts.dataDir, rt.log);
      refuseRunningEtcd(opts.dataDir);
      const recovered = await recoverWorkDir(opts.dataDir);
      if (recovered) rt.log(recovered);
    }
    const outcome = await apply(opts, rt, await prepare(opts, rt));
    if (!keepLock) await lock?.release();
    return outcome;
  } catch (e) {
    await lock?.release();
    throw e;
  }
}

/** Everything that can be known and checked before a change: a UsageError here means nothing changed. */
async function prepare(opts: Options, rt?: Runtime): Promise<Prepared> {
  const state = await inspectDataDir(opts.dataDir);
  if (state.kind === 'data') await checkVersionFile(opts.dataDir, state.version, opts);
  const bundled = opts.bundled ?? (await discoverBundled(opts.binDir));
  const current =
    state.kind === 'unversioned'
      ? await assumedVersion(opts, bundled)
      : state.kind === 'data'
        ? state.version
        : undefined;
  if (state.kind === 'data' && opts.assumeCurrent && fmtData(opts.assumeCurrent) !== fmtData(state.version)) {
    throw new UsageError(
      `version.txt says ${fmtData(state.version)} but --assume-current-version says ${fmtData(opts.assumeCurrent)}; ` +
        'drop the flag (version.txt is the record) or fix version.txt',
    );
  }
  const pendingTtls = await exists(pendingTtlsFile(opts.dataDir));
  let steps = plan(current, opts.target, bundled, { pendingTtls });
  const v2 = current ? await customV2Blocks(opts, current, steps) : undefined;
  if (v2?.drop) steps = plan(current!, opts.target, bundled, { pendingTtls, dropV2: true });
  checkClusterPlan(steps, opts.initialCluster, opts.target);
  const machinery = steps.length ? await loadMachinery() : undefined;

  const needs: ToolNeed[] = [];
  for (const s of steps) {
    const runner = machinery!.runnerFor(s);
    if (!runner) throw new UsageError(`the plan needs a step this build cannot run yet: ${describe(s)}`);
    runner.check?.(s, opts);
    needs.push(...runner.needs(s));
  }
  const temps = needs.filter((n) => n.tool === 'etcd').map((n) => n.version);
  checkFlags(temps, opts.extraArgs, opts.etcdArgs, opts.target.version);
  // The exec'd etcd gets the pod's whole environment.
  if (opts.etcdArgs && rt) checkEnvFlags(rt.env, opts.target.version);
  if (opts.etcdArgs) needs.push({ tool: 'etcd', version: opts.target.version });
  await checkTools(opts.binDir, needs);
  const clientTls = machinery ? await machinery.loadClientTls(opts.clientTls) : undefined;
  if (!opts.dryRun && steps.length) {
    await checkPortsFree(opts);
  }
  // Backups: the key, the place and the free space for backups and steps, checked before any change.
  const backups =
    !opts.dryRun && machinery
      ? await machinery.BackupGuard.prepare(opts, steps, rt?.log ?? (() => {}), rt?.env, rt?.progress)
      : undefined;
  return { state, current, steps, clientTls, machinery, backups, v2Content: v2?.reader };
}

async function apply(
  opts: Options,
  rt: Runtime,
  { state, current, steps, clientTls, machinery, backups, v2Content }: Prepared,
): Promise<Outcome> {
  if (!current) {
    const same = state.kind === 'empty' && state.version && fmtData(state.version) === fmtData(opts.target);
    try {
      if (state.kind === 'missing') await fs.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
      if (!same) await writeVersionFile(opts.dataDir, opts.target);
    } catch (e) {
      throw fsUsageError(e, opts.dataDir);
    }
    const from = origin({ state, current, steps });
    rt.log(`${from}: nothing to migrate; version.txt = ${fmtData(opts.target)}`);
    return { from: current, origin: from, steps, final: opts.target, changed: !same };
  }

  const ctx: StepContext = {
    dataDir: opts.dataDir,
    binDir: opts.binDir,
    member: {
      ...memberOf(opts),
      clientTls,
      initialClusterToken: opts.initialClusterToken,
    },
    dataPrefix: opts.dataPrefix,
    ttlKeysDirectory: opts.ttlKeysDirectory,
    env: rt.env,
    log: rt.log,
    progress: rt.progress,
    stepTimeoutMs: rt.stepTimeoutMs ?? opts.stepTimeoutMs,
    target: opts.target,
    newMember: newMemberDir(opts.dataDir),
    targetElectionTimeoutMs: opts.targetElectionTimeoutMs,
    install: rt.install,
    v2Content,
  };
  // A patch older than etcd's guide advises runs all the same: said as a warning.
  for (const line of planNotes(steps)) rt.log(line, { level: 'warn' });
  const note = clusterNote(steps, opts.target.version, opts.initialCluster);
  if (note) {
    const names = memberNames(opts.initialCluster);
    rt.log(`member of a ${names.length}-member cluster (${names.join(', ')}): each step waits for its peers`);
    debug(rt.log, note);
  }
  const started = Date.now();
  let at = current;
  for (const [i, s] of steps.entries()) {
    debug(rt.log, `step ${i + 1}/${steps.length} ${describe(s)}`);
    // The step's own time, without the run's backup (logged on its own line before it).
    let t0 = Date.now();
    let report: StepReport | void;
    try {
      const runner = machinery!.runnerFor(s)!;
      report = await backups!.around(s, runner, (backedUp) => {
        t0 = Date.now();
        return runStep(s, runner, ctx, backedUp);
      });
    } catch (e) {
      if ((e instanceof UsageError && !(e instanceof StepError)) || e instanceof BackupError || isBug(e)) throw e;
      // A child's last lines stay at the end, after the whole of our line (errors.ts ProcessError).
      const why = e instanceof ProcessError ? e.headline : (e as Error).message;
      const shown = e instanceof ProcessError ? e.shown : '';
      const after = await afterwards(opts.dataDir, at, backups!.failureNote);
      throw new StepError(`step ${i + 1}/${steps.length} (${describe(s)}) failed: ${why}; ${after}${shown}`);
    }
    at = s.to;
    logStep(rt.log, { index: i, of: steps.length, step: s, ms: Date.now() - t0 }, report);
    rt.onStep?.({ index: i, step: s, ms: Date.now() - t0, detail: report?.detail });
  }
  const updated = fmtData(at) !== fmtData(opts.target);
  if (updated) await writeVersionFile(opts.dataDir, opts.target);
  const ms = Date.now() - started;
  rt.log(
    steps.length
      ? `migrated ${fmtData(current)} -> ${fmtData(opts.target)} in ${seconds(ms)}`
      : `${fmtData(current)}: nothing to migrate for ${fmtData(opts.target)}${updated ? '; version.txt updated' : ''}`,
    { fields: { from: fmtData(current), to: fmtData(opts.target), steps: steps.length, seconds: secondsField(ms) } },
  );
  return { from: current, origin: fmtData(current), steps, final: opts.target, changed: steps.length > 0 || updated };
}

/**
 * A step's line, its key figures and time: "step 1/3 convert 3.3.25/etcd2 -> 3.3.25/etcd3: 6,061
 * keys, 2,026 TTLs pending, 0.43 s"; the checks behind them on a debug line.
 */
function logStep(
  log: Log,
  done: { index: number; of: number; step: Step; ms: number },
  report: StepReport | void,
): void {
  const { index, of, step: s, ms } = done;
  const figures = report?.figures ? `${report.figures}, ` : '';
  log(`step ${index + 1}/${of} ${stepName(s)}: ${figures}${seconds(ms)}`, {
    fields: {
      step: index + 1,
      steps: of,
      kind: s.kind,
      from: fmtData(s.from),
      to: fmtData(s.to),
      ...report?.fields,
      seconds: secondsField(ms),
    },
  });
  if (report?.detail) debug(log, `step ${index + 1}/${of}: ${report.detail}; version.txt = ${fmtData(s.to)}`);
}

/**
 * Runs one step and records it: an in-place step in version.txt, a rebuilt one through the journaled
 * swap, which waits for `backedUp` (the run's backup, which may still be running beside the build).
 */
async function runStep(
  s: Step,
  runner: Runner<Step>,
  ctx: StepContext,
  backedUp: () => Promise<void>,
): Promise<StepReport | void> {
  if (runner.mode === 'in-place') {
    await backedUp();
    const report = await runner.run(s, ctx);
    await writeVersionFile(ctx.dataDir, s.to);
    return report;
  }
  await prepareWorkDir(ctx.dataDir);
  let report: StepReport | void;
  try {
    report = await runner.run(s, ctx);
    await backedUp();
  } catch (e) {
    await removeWorkDir(ctx.dataDir);
    throw e;
  }
  await swapInNewMember(ctx.dataDir, s.to);
  return report;
}

/**
 * The end of a failed run's last line: the version.txt that is there now (a put-back may have
 * changed it), and what to do.
 */
async function afterwards(dataDir: string, lastDone: DataVersion, note: string | undefined): Promise<string> {
  const text = await readIfExists(path.join(dataDir, VERSION_FILE)).catch(() => undefined);
  const now = text?.trim();
  const said =
    now === fmtData(lastDone)
      ? `version.txt says ${now}, the last step that completed`
      : `version.txt says ${now ?? 'nothing (it is missing)'}`;
  return note ? `${said}; ${note}` : `${said}; fix the cause and rerun to repeat this step`;
}

/**
 * etcd 3.6 refuses custom v2 content (keys other than the members and the version, in the v2
 * snapshot or the WAL after it): a plan from etcd3 data below 3.6 to 3.6 or later reads it first.
 * Refused with what it holds and the ways out; with --drop-v2-content, drop (the plan drops it).
 * Returns the reader that read it, for the steps.
 */
async function customV2Blocks(
  opts: Options,
  current: DataVersion,
  steps: readonly Step[],
): Promise<{ drop: boolean; reader: V2ContentReader } | undefined> {
  const below = current.storage === 'etcd3' && compareMinor(current.version, V2_FREE_MINOR) < 0;
  if (!below || !steps.some((s) => compareMinor(s.to.version, V2_FREE_MINOR) >= 0)) return undefined;
  const { V2ContentReader, describeCustomV2 } = await import('./inspect/v2content.ts');
  const reader = new V2ContentReader(opts.dataDir);
  const found = describeCustomV2(await reader.read());
  if (!found) return { drop: false, reader };
  if (opts.dropV2Content) return { drop: true, reader };
  throw new UsageError(
    `the v2 store holds custom content, which etcd 3.6 refuses: ${found}; ` +
      `delete those keys through etcd ${fmtMinor(current.version)} started with --enable-v2 and rerun, ` +
      'or rerun with --drop-v2-content ' +
      '(a lone member: the v3 data is kept, the v2 keys dropped, new member and cluster IDs), ' +
      'or stay below 3.6; nothing was changed',
  );
}

/** A data dir without version.txt: what the data records, and the operator's word for the rest. */
async function assumedVersion(opts: Options, bundled: readonly Version[]): Promise<DataVersion> {
  const ev = await readEvidence(opts.dataDir);
  const shown = describeEvidence(ev);
  const a = opts.assumeCurrent;
  if (!a) {
    const minor = ev.clusterVersion?.minor;
    const example =
      (minor &&
        bundled
          .filter((v) => fmtMinor(v) === minor)
          .map(fmt)
          .at(-1)) ??
      (minor ? `${minor}.0` : '3.4.23');
    const storage = ev.v3Keys === false ? 'etcd2' : 'etcd3';
    throw new UsageError(
      `${opts.dataDir} holds data but no version.txt; ${shown}; ` +
        `if that is right, pass --assume-current-version ${example}/${storage} ` +
        '(or write it into version.txt); nothing is guessed',
    );
  }
  if (ev.clusterVersion && ev.clusterVersion.minor !== fmtMinor(a.version)) {
    throw new UsageError(
      `--assume-current-version ${fmtData(a)} contradicts the data: ${shown}; pass the version the data records`,
    );
  }
  if (ev.v3Keys === true && a.storage === 'etcd2') {
    throw new UsageError(
      `--assume-current-version ${fmtData(a)} contradicts the data: ${shown}; pass ${fmt(a.version)}/etcd3`,
    );
  }
  return a;
}

/**
 * version.txt against what the data records (the reader used when version.txt is missing). Refused
 * with both facts, before anything changes: etcd2 storage whose db holds v3 keys while its v2 store
 * never held one; a recorded cluster version that agrees with neither version.txt nor a state a
 * run leaves (see agreement). bbolt's record is read first (a few pages). When it disagrees, the
 * v2 store's /0/version decides: etcd 3.3-3.5 read that one at their start, and a snapshot restored
 * for an older minor keeps the newer one's in bbolt until its etcd first runs (its v2 store then
 * records none yet).
 */
async function checkVersionFile(dataDir: string, v: DataVersion, opts: Options): Promise<void> {
  const db = readDbEvidence(dataDir);
  const file = path.join(dataDir, VERSION_FILE);
  if (v.storage === 'etcd2' && db.v3Keys && !(await v2StoreHasKeys(dataDir))) {
    throw new UsageError(
      `${file} says ${fmtData(v)}, but the data is in etcd3 storage: member/snap/db holds v3 keys ` +
        'and the v2 store none; nothing was changed; ' +
        `if the data is right, write ${fmt(v.version)}/etcd3 into version.txt`,
    );
  }
  const cluster = isCluster(opts.initialCluster);
  const target = opts.target.version;
  if (!db.clusterVersion || agreement(db.clusterVersion.minor, v.version, target, cluster) === 'ok') return;
  const recorded = await v2StoreVersion(dataDir);
  const how = recorded && agreement(recorded.minor, v.version, target, cluster);
  if (!recorded || how === 'ok') return;
  throw new UsageError(
    `${file} says ${fmtData(v)}, but the data records cluster version ${recorded.minor} ` +
      `(${recorded.from}), ${how} ${fmtMinor(v.version)}; nothing was changed; ` +
      `write the version the data was last run with into version.txt (its minor is ${recorded.minor})`,
  );
}

/**
 * How a recorded cluster version (major.minor) stands to version.txt's. Besides equal, a run leaves
 * two states: one minor below in a cluster (a member after its last step of a rolling upgrade), and
 * one minor above when an upgrade step was killed after its etcd moved the cluster version and
 * before version.txt recorded the step: its rerun repeats that step, which the target still needs.
 */
function agreement(recordedMinor: string, v: Version, target: Version, cluster: boolean): 'ok' | 'above' | 'below' {
  const [major, minor] = recordedMinor.split('.').map(Number) as [number, number];
  const recorded = { major, minor, patch: 0 };
  const diff = major === v.major ? minor - v.minor : (major - v.major) * 1000;
  if (diff === 0 || (cluster && diff === -1)) return 'ok';
  if (diff === 1 && compareMinor(target, recorded) >= 0) return 'ok';
  return diff > 0 ? 'above' : 'below';
}

function origin(p: Prepared): string {
  return p.current ? fmtData(p.current) : p.state.kind === 'missing' ? 'no data dir' : 'an empty data dir';
}

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
