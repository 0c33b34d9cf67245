// The executor: inspect, plan, check everything the plan needs, then run the steps one by one,
// recording each in version.txt as it completes.
import net from 'node:net';
import { promises as fs } from 'node:fs';
import { BackupGuard } from './backup/guard.ts';
import { checkTools, discoverBundled } from './bundle.ts';
import { inspectDataDir, writeVersionFile } from './datadir.ts';
import { UsageError } from './errors.ts';
import { seconds, type Log } from './log.ts';
import type { MemberConfig } from './etcd/server.ts';
import type { Options } from './options.ts';
import { describe, plan, type Step } from './plan.ts';
import { acquireLock, type Lock } from './lock.ts';
import { runnerFor, type StepContext, type StepReport, type ToolNeed } from './steps/index.ts';
import { newMemberDir, prepareWorkDir, recoverWorkDir, removeWorkDir, swapInNewMember } from './workdir.ts';
import { fmtData, type DataVersion } from './version.ts';

export interface Runtime {
  env: NodeJS.ProcessEnv;
  log: Log;
  /** How long a temporary etcd may take to commit a write. */
  stepTimeoutMs?: number;
}

export interface Outcome {
  steps: Step[];
  /** What version.txt holds at the end (the target). */
  final: DataVersion;
  changed: boolean;
}

export async function migrate(opts: Options, rt: Runtime): Promise<Outcome> {
  // A data dir that exists gets the lock and any interrupted swap finished before it is read.
  let lock: Lock | undefined;
  if (!opts.dryRun && (await isDir(opts.dataDir))) {
    lock = await acquireLock(opts.dataDir);
    const recovered = await recoverWorkDir(opts.dataDir);
    if (recovered) rt.log(recovered);
  }
  try {
    return await migrateLocked(opts, rt);
  } finally {
    await lock?.release();
  }
}

async function migrateLocked(opts: Options, rt: Runtime): Promise<Outcome> {
  const state = await inspectDataDir(opts.dataDir);
  const bundled = opts.bundled ?? (await discoverBundled(opts.binDir));
  const current = state.kind === 'data' ? state.version : undefined;
  const steps = plan(current, opts.target, bundled);

  const needs: ToolNeed[] = [];
  for (const s of steps) {
    const runner = runnerFor(s);
    if (!runner) throw new UsageError(`the plan needs a step this build cannot run yet: ${describe(s)}`);
    runner.check?.(s, memberOf(opts));
    needs.push(...runner.needs(s));
  }
  if (opts.etcdArgs) needs.push({ tool: 'etcd', version: opts.target.version });
  await checkTools(opts.binDir, needs);
  // Backups: the key, the place and the free space are checked here, before anything changes.
  const backups = steps.length ? await BackupGuard.prepare(opts, steps.map((step) => ({ step, runner: runnerFor(step)! })), rt.log) : undefined;

  const from = current ? fmtData(current) : state.kind === 'missing' ? 'no data dir' : 'an empty data dir';
  if (opts.dryRun) {
    rt.log(`plan (dry run, nothing changed): ${from} -> ${fmtData(opts.target)}: ${steps.length ? `${steps.length} step(s)` : 'nothing to migrate'}`);
    steps.forEach((s, i) => rt.log(`  ${i + 1}. ${describe(s)}`));
    if (backups) rt.log(`  before each step: ${backups.describe()}`);
    return { steps, final: opts.target, changed: false };
  }
  if (steps.length) await checkPortsFree(opts);

  if (state.kind === 'missing') await fs.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  if (!current) {
    const same = state.kind === 'empty' && state.version && fmtData(state.version) === fmtData(opts.target);
    if (!same) await writeVersionFile(opts.dataDir, opts.target);
    rt.log(`${from}: nothing to migrate; version.txt = ${fmtData(opts.target)}`);
    return { steps, final: opts.target, changed: !same };
  }

  const ctx: StepContext = {
    dataDir: opts.dataDir,
    binDir: opts.binDir,
    member: memberOf(opts),
    dataPrefix: opts.dataPrefix,
    ttlKeysDirectory: opts.ttlKeysDirectory,
    env: rt.env,
    log: rt.log,
    stepTimeoutMs: rt.stepTimeoutMs ?? 120_000,
    newMember: newMemberDir(opts.dataDir),
  };
  const started = Date.now();
  for (const [i, s] of steps.entries()) {
    const runner = runnerFor(s)!;
    await backups!.before(s);
    const t0 = Date.now();
    let report: StepReport | void;
    try {
      if (runner.mode === 'rebuild') {
        await prepareWorkDir(opts.dataDir);
        try {
          report = await runner.run(s, ctx);
        } catch (e) {
          await removeWorkDir(opts.dataDir);
          throw e;
        }
        await swapInNewMember(opts.dataDir, s.to);
      } else {
        report = await runner.run(s, ctx);
        await writeVersionFile(opts.dataDir, s.to);
      }
    } catch (e) {
      await backups!.afterFailure(s, runner.mode);
      throw e;
    }
    const detail = report?.detail ? `; ${report.detail}` : '';
    rt.log(`step ${i + 1}/${steps.length} done in ${seconds(Date.now() - t0)}: ${describe(s)}${detail}; version.txt = ${fmtData(s.to)}`);
  }
  const last = steps.at(-1)?.to ?? current;
  if (fmtData(last) !== fmtData(opts.target)) await writeVersionFile(opts.dataDir, opts.target);
  rt.log(steps.length
    ? `migrated ${fmtData(current)} -> ${fmtData(opts.target)} in ${seconds(Date.now() - started)}`
    : `${fmtData(current)}: nothing to migrate for ${fmtData(opts.target)}${fmtData(last) !== fmtData(opts.target) ? '; version.txt updated' : ''}`);
  return { steps, final: opts.target, changed: steps.length > 0 || fmtData(last) !== fmtData(opts.target) };
}

function memberOf(opts: Options): MemberConfig {
  return {
    name: opts.name,
    initialCluster: opts.initialCluster,
    listenPeerUrls: opts.listenPeerUrls,
    initialAdvertisePeerUrls: opts.initialAdvertisePeerUrls,
    port: opts.port,
    extraArgs: opts.extraArgs,
    initialClusterToken: opts.initialClusterToken,
  };
}

/** The temporary etcd's loopback ports must be free; say so before anything changes. */
async function checkPortsFree(opts: Options): Promise<void> {
  const ports: Array<[number, string]> = [[opts.port, '--port (the hidden client port)']];
  for (const u of opts.listenPeerUrls.split(',')) {
    const url = new URL(u);
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') ports.push([Number(url.port), 'the peer port (--peer-port / LISTEN_PEER_URLS)']);
  }
  for (const [port, what] of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (!free) throw new UsageError(`127.0.0.1:${port} is already in use, and ${what} needs it for the temporary etcd; stop whatever holds it (is etcd already running on this data?) or choose another port`);
  }
}

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}
