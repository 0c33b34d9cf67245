// Before etcd 3.7 first starts on the data: if v2 requests (written by 3.5) follow the WAL's last
// snapshot record, the 3.6 etcd `sealWith` runs first and seals it (etcd/seal.ts). The 3.6 step of
// this tool always seals; data that reached 3.6 another way may need it.
import { binPath } from '../bundle.ts';
import { clusterVersionNeeded, isCluster } from '../cluster.ts';
import { SEAL_FLAGS, waitSealed } from '../etcd/seal.ts';
import { withTempEtcd } from '../etcd/server.ts';
import { readV2Content } from '../inspect/v2content.ts';
import type { Step } from '../plan.ts';
import { fmt, type Version } from '../version.ts';
import type { StepContext } from './context.ts';

export async function sealIfNeeded(s: Step, sealWith: Version, ctx: StepContext): Promise<void> {
  const { v2EntriesAfterSnapshot: n } = await readV2Content(ctx.dataDir);
  if (n === 0) return;
  const t0 = Date.now();
  const snap = await withTempEtcd({
    bin: binPath(ctx.binDir, 'etcd', sealWith), version: sealWith, dataDir: ctx.dataDir, member: ctx.member,
    storage: 'etcd3', env: ctx.env, timeoutMs: ctx.stepTimeoutMs, flags: SEAL_FLAGS, log: ctx.log,
    clusterAtLeast: clusterVersionNeeded({ ...s, to: s.from }, ctx.target.version, isCluster(ctx.member.initialCluster)),
  }, (etcd) => waitSealed(etcd, ctx.dataDir, ctx.stepTimeoutMs));
  ctx.log(`etcd ${fmt(sealWith)} sealed the WAL: ${n} v2 requests before its snapshot at index ${snap}, ${Date.now() - t0} ms`);
}
