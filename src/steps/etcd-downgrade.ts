// etcd-downgrade step (3.6+, one minor down): etcd's own downgrade, as its downgrade guides describe.
//   1. etcd `enableWith` (the current minor) starts on the data; unless the cluster already has a
//      downgrade to the target enabled, `etcdctl downgrade validate` then `enable` the target minor;
//      wait until this member reports the target minor as both cluster and storage version;
//   2. stop it, start etcd `to` on the same data until a write commits, stop it.
// Member and cluster IDs, revisions, leases and the raft log stay. In a cluster the enable is done
// once (by the first member whose entrypoint runs) and each member then steps down on its own, as
// etcd documents; its leader ends the downgrade once every member runs the older minor.
import { binPath } from '../bundled-versions.ts';
import { isCluster } from '../cluster.ts';
import { StepError } from '../errors.ts';
import { versions } from '../etcd/client/probe.ts';
import { describeFacts, factsFields, factsFigures, memberFacts, sameFacts } from '../etcd/client/facts.ts';
import { withTempEtcd, type StartOptions, type TempEtcd } from '../etcd/process/server.ts';
import { etcdctlTlsArgs } from '../etcd/tls/config.ts';
import { ctlEnv, runTool } from '../etcd/process/tool.ts';
import { seconds } from '../log.ts';
import { FIRST_ETCD_DOWNGRADE_MINOR, type Step } from '../plan.ts';
import { compareMinor, fmt, fmtMinor, type Version } from '../version.ts';
import type { StepContext, StepReport, ToolNeed } from './context.ts';

type EtcdDowngradeStep = Extract<Step, { kind: 'etcd-downgrade' }>;

export const mode = 'in-place';

export const needs = (s: EtcdDowngradeStep): ToolNeed[] => [
  { tool: 'etcd', version: s.enableWith },
  { tool: 'etcdctl', version: s.enableWith },
  { tool: 'etcd', version: s.to.version },
  { tool: 'etcdctl', version: s.to.version },
];

const POLL_MS = 50;

export async function run(s: EtcdDowngradeStep, ctx: StepContext): Promise<StepReport> {
  const lone = !isCluster(ctx.member.initialCluster);
  // Both etcds are done at the target's minor: the enable lowers the cluster version at once.
  const temp = (version: Version): StartOptions => ({
    bin: binPath(ctx.binDir, 'etcd', version),
    version,
    dataDir: ctx.dataDir,
    member: ctx.member,
    storage: 'etcd3',
    env: ctx.env,
    timeoutMs: ctx.stepTimeoutMs,
    clusterAtLeast: s.to.version,
    log: ctx.log,
  });
  const facts = (etcd: TempEtcd) =>
    memberFacts(etcd.endpoint, etcd.opts.version, ctx.binDir, ctx.env, ctx.member.clientTls);

  const t0 = Date.now();
  let how = '';
  const before = await withTempEtcd(temp(s.enableWith), async (etcd) => {
    const f = lone ? await facts(etcd) : undefined;
    how = await enable(etcd, s.to.version, ctx);
    // etcd's leader lowers the cluster version at its next check (every 4 s) or at the first commit
    // of a new term: a lone member gets there sooner by a start of its own.
    if (!lone) await waitDowngraded(etcd, s.to.version, ctx.stepTimeoutMs);
    return f;
  });
  if (lone) await withTempEtcd(temp(s.enableWith), (etcd) => waitDowngraded(etcd, s.to.version, ctx.stepTimeoutMs));
  const minor = fmtMinor(s.to.version);
  const took = seconds(Date.now() - t0);
  ctx.log(
    `etcd ${fmt(s.enableWith)}: downgrade to ${minor} ${how}; cluster and storage version ${minor} after ` + took,
    { fields: { etcd: fmt(s.enableWith), minor } },
  );

  // A lone member ends the downgrade job at once (etcd's leader checks every --downgrade-check-time),
  // so that a next downgrade can be enabled; 3.5 cannot report the job, and ends it once it runs.
  const ends = lone && compareMinor(s.to.version, FIRST_ETCD_DOWNGRADE_MINOR) >= 0;
  const older = { ...temp(s.to.version), flags: ends ? ['--downgrade-check-time=100ms'] : undefined };
  const after = await withTempEtcd(older, async (etcd) => {
    if (ends) await waitJobEnded(etcd, ctx);
    return lone ? facts(etcd) : undefined;
  });
  if (before && after && !sameFacts(before, after)) {
    throw new StepError(
      `etcd ${fmt(s.to.version)} serves ${describeFacts(after)} after the downgrade, but etcd ` +
        `${fmt(s.enableWith)} served ${describeFacts(before)}; restore the backup taken before this run`,
    );
  }
  const kept = after ? `${describeFacts(after)} kept` : 'every key kept';
  return {
    figures: after ? `${factsFigures(after)}, same IDs` : 'same keys and IDs',
    fields: after ? factsFields(after) : undefined,
    detail: `${kept}; member and cluster IDs, leases and the raft log kept`,
  };
}

/**
 * Enables the downgrade unless the cluster already has it enabled (a rerun, or another member did).
 * A job to another minor (the previous step's, in a cluster whose other members have not all
 * stepped down yet) is waited for.
 */
async function enable(etcd: TempEtcd, target: Version, ctx: StepContext): Promise<string> {
  const v = fmt(etcd.opts.version);
  const minor = fmtMinor(target);
  const deadline = Date.now() + ctx.stepTimeoutMs;
  for (let job = await downgradeJob(etcd, ctx); job; job = await downgradeJob(etcd, ctx)) {
    if (job === `${minor}.0`) return 'already enabled';
    if (Date.now() > deadline) {
      throw new StepError(
        `the cluster's downgrade to ${job} has not ended within ${ctx.stepTimeoutMs / 1000} s; ` +
          'every member must run it first (etcdctl downgrade cancel undoes it)',
      );
    }
    await sleep(POLL_MS);
  }
  const now = await versions(etcd.endpoint, ctx.member.clientTls);
  if (now?.cluster && compareMinor(now.cluster, target) === 0) return 'already done';
  await etcdctl(etcd, ctx, ['downgrade', 'validate', minor], `etcdctl ${v} downgrade validate ${minor}`);
  await etcdctl(etcd, ctx, ['downgrade', 'enable', minor], `etcdctl ${v} downgrade enable ${minor}`);
  return 'enabled';
}

function etcdctl(etcd: TempEtcd, ctx: StepContext, cmd: string[], what: string): Promise<string> {
  const args = ['--endpoints', etcd.endpoint, ...etcdctlTlsArgs(ctx.member.clientTls), ...cmd];
  return runTool(ctx.binDir, 'etcdctl', etcd.opts.version, args, ctlEnv(ctx.env), what, 60_000);
}

/** The target of the cluster's enabled downgrade job ("3.6.0"), or undefined when there is none. */
async function downgradeJob(etcd: TempEtcd, ctx: StepContext): Promise<string | undefined> {
  const what = `etcdctl ${fmt(etcd.opts.version)} endpoint status`;
  const status = await etcdctl(etcd, ctx, ['endpoint', 'status', '-w', 'json'], what);
  const info = /"downgradeInfo":\{([^}]*)\}/.exec(status)?.[1] ?? '';
  return info.includes('"enabled":true') ? /"targetVersion":"([^"]*)"/.exec(info)?.[1] : undefined;
}

async function waitJobEnded(etcd: TempEtcd, ctx: StepContext): Promise<void> {
  const deadline = Date.now() + ctx.stepTimeoutMs;
  while (await downgradeJob(etcd, ctx)) {
    if (Date.now() > deadline) {
      const within = ctx.stepTimeoutMs / 1000;
      throw new StepError(`etcd ${fmt(etcd.opts.version)} did not end the downgrade job within ${within} s`);
    }
    await sleep(POLL_MS);
  }
}

/** Waits until the member reports `target`'s minor as both cluster and storage version. */
async function waitDowngraded(etcd: TempEtcd, target: Version, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const at = (v: Version | undefined) => v !== undefined && compareMinor(v, target) === 0;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const v = await versions(etcd.endpoint, etcd.opts.member.clientTls).catch(() => undefined);
    if (v && at(v.cluster) && at(v.storage)) return;
    if (v) {
      last =
        `cluster version ${v.cluster ? fmtMinor(v.cluster) : 'not decided'}, ` +
        `storage version ${v.storage ? fmtMinor(v.storage) : 'none'}`;
    }
    await sleep(POLL_MS);
  }
  throw new StepError(
    `etcd ${fmt(etcd.opts.version)} did not reach cluster and storage version ${fmtMinor(target)} ` +
      `within ${timeoutMs / 1000} s (last: ${last})`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
