// Upgrade (or patch) step: start the newer etcd on the data until it is ready (in a cluster: with its
// peers, see cluster.ts) and a write commits, then stop it.
import { binPath } from '../bundled-versions.ts';
import { clusterVersionNeeded, isCluster } from '../cluster.ts';
import { SEAL_FLAGS, waitSealed } from '../etcd/process/seal.ts';
import { withTempEtcd } from '../etcd/process/server.ts';
import type { Step } from '../plan.ts';
import type { StepContext, ToolNeed } from './context.ts';
import { mustSeal, sealIfNeeded } from './seal.ts';

type UpgradeStep = Extract<Step, { kind: 'upgrade' | 'patch' }>;

export const mode = 'in-place';

export const needs = (s: UpgradeStep): ToolNeed[] => [
  { tool: 'etcd', version: s.to.version },
  ...(s.kind === 'upgrade' && s.sealWith ? [{ tool: 'etcd' as const, version: s.sealWith }] : []),
];

export async function run(s: UpgradeStep, ctx: StepContext): Promise<void> {
  const seal = await mustSeal(s.to.version, ctx);
  if (s.kind === 'upgrade' && s.sealWith) await sealIfNeeded(s, s.sealWith, ctx);
  await withTempEtcd(
    {
      bin: binPath(ctx.binDir, 'etcd', s.to.version),
      version: s.to.version,
      dataDir: ctx.dataDir,
      member: ctx.member,
      storage: s.to.storage,
      env: ctx.env,
      timeoutMs: ctx.stepTimeoutMs,
      clusterAtLeast: clusterVersionNeeded(s, ctx.target.version, isCluster(ctx.member.initialCluster)),
      log: ctx.log,
      flags: seal ? SEAL_FLAGS : undefined,
    },
    async (etcd) => {
      if (seal) await waitSealed(etcd, ctx.dataDir, ctx.stepTimeoutMs);
    },
  );
}
