// Before etcd 3.6 or 3.7 first starts on the data: if v2 requests it cannot replay follow the WAL's
// last snapshot (3.6: any but the members' and version PUTs, such as 3.4's QGETs; 3.7: any), the
// previous minor's etcd `sealWith` runs first and seals it (etcd/process/seal.ts). The 3.6 step of this tool
// always seals; data that reached 3.6 another way may need it.
import { binPath } from '../bundled-versions.ts';
import { clusterVersionNeeded, isCluster } from '../cluster.ts';
import { SEAL_FLAGS, waitSealed } from '../etcd/process/seal.ts';
import { withTempEtcd } from '../etcd/process/server.ts';
import { V2ContentReader } from '../inspect/v2content.ts';
import { FIRST_V2_FREE_WAL_MINOR, type Step } from '../plan.ts';
import { compareMinor, fmt, type Version } from '../version.ts';
import type { StepContext } from './context.ts';

export async function sealIfNeeded(s: Step, sealWith: Version, ctx: StepContext): Promise<void> {
  const content = await v2Of(ctx).read();
  const into37 = compareMinor(s.to.version, FIRST_V2_FREE_WAL_MINOR) >= 0;
  const n = into37 ? content.v2EntriesAfterSnapshot : content.walRequests.length;
  if (n === 0) return;
  const t0 = Date.now();
  const cluster = isCluster(ctx.member.initialCluster);
  const snap = await withTempEtcd(
    {
      bin: binPath(ctx.binDir, 'etcd', sealWith),
      version: sealWith,
      dataDir: ctx.dataDir,
      member: ctx.member,
      storage: 'etcd3',
      env: ctx.env,
      timeoutMs: ctx.stepTimeoutMs,
      flags: SEAL_FLAGS,
      log: ctx.log,
      // It runs at the minor the data is at, as a step to that minor would.
      clusterAtLeast: clusterVersionNeeded({ ...s, to: s.from }, ctx.target.version, cluster),
    },
    (etcd) => waitSealed(etcd, ctx.dataDir, ctx.stepTimeoutMs),
  );
  ctx.log(
    `etcd ${fmt(sealWith)} sealed the WAL: ${n} v2 requests before its snapshot at index ${snap}, ` +
      `${Date.now() - t0} ms`,
    { fields: { etcd: fmt(sealWith), requests: n, index: snap } },
  );
}

/**
 * Whether a run of etcd `v` must seal the WAL as it goes. 3.6: always, since 3.7 cannot replay the
 * v2 requests 3.5 wrote. 3.5: only when the WAL already holds v2 requests that 3.6 cannot replay
 * (3.4's QGETs); the ones 3.5 writes itself, 3.6 replays.
 */
export async function mustSeal(v: Version, ctx: Pick<StepContext, 'dataDir' | 'v2Content'>): Promise<boolean> {
  if (v.major !== 3) return false;
  if (v.minor === 6) return true;
  return v.minor === 5 && (await v2Of(ctx).read()).walRequests.length > 0;
}

/** The run's reader of the v2 content, or one of this step's own. */
const v2Of = (ctx: Pick<StepContext, 'dataDir' | 'v2Content'>): V2ContentReader =>
  ctx.v2Content ?? new V2ContentReader(ctx.dataDir);
