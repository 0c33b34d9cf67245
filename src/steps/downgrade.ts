// Downgrade step (one minor down, etcd3 storage): etcd refuses to start an older minor on newer
// data, so the data goes through a snapshot.
//   1. copy the live member dir into the work area and start etcd `snapshotWith` on the copy
//      (the live dir is never opened by etcd); record its key count, revision and HashKV;
//   2. `etcdctl snapshot save`, then check the file: its sha256 trailer, and `snapshot status`
//      with the older tool shows the same revision;
//   3. `snapshot restore` with the older version's tool (etcdutl from 3.5, etcdctl before) into a
//      fresh dir with the member flags, and move its member dir to ctx.newMember;
//   4. start etcd `to` on it: key count, revision and HashKV must equal the source's.
// The executor then swaps it in. Kept: every key, value, lease, and the revision. Changed: the
// member and cluster IDs (restore makes a new cluster), lease TTLs restart at their full length,
// the raft log starts afresh, and a v2 store (left over from a v2 -> v3 conversion) is dropped.
import { debug } from '../log.ts';
import { constants, promises as fs } from 'node:fs';
import fse from 'fs-extra';
import path from 'node:path';
import { binPath } from '../bundled-versions.ts';
import { isCluster, memberNames } from '../cluster.ts';
import { StepError, UsageError } from '../errors.ts';
import { describeFacts, factsFields, factsFigures, memberFacts, sameFacts } from '../etcd/client/facts.ts';
import { withTempEtcd } from '../etcd/process/session.ts';
import type { Options } from '../options.ts';
import { checkSnapshotFile, restoreSnapshot, saveSnapshot, snapshotStatus } from '../etcd/process/snapshot.ts';
import { ctlEnv, offlineTool } from '../etcd/process/tool.ts';
import { etcdctlTls } from '../etcd/tls/config.ts';
import { human, WAL_SEGMENT, type MemberSizes } from '../backup/space.ts';
import type { Step } from '../plan.ts';
import { fmt, fmtData } from '../version.ts';
import type { StepContext, StepReport, ToolNeed } from './context.ts';

type DowngradeStep = Extract<Step, { kind: 'downgrade' }>;

export const mode = 'rebuild';

/** Its snapshot save and restore wait on etcd and the disk: the run's backup goes beside them. */
export const backupBeside = true;

export const needs = (s: DowngradeStep): ToolNeed[] => [
  { tool: 'etcd', version: s.snapshotWith },
  { tool: 'etcdctl', version: s.snapshotWith },
  { tool: 'etcd', version: s.to.version },
  { tool: 'etcdctl', version: s.to.version },
  { tool: offlineTool(s.to.version), version: s.to.version },
];

/** A restored member starts a new cluster: each member of a real cluster would get its own. */
export function check(s: DowngradeStep, opts: Pick<Options, 'initialCluster'>): void {
  if (isCluster(opts.initialCluster)) {
    const n = memberNames(opts.initialCluster).length;
    throw new UsageError(
      `cannot downgrade ${fmtData(s.from)} -> ${fmtData(s.to)} for a member of a multi-member ` +
        `cluster (INITIAL_CLUSTER names ${n}): a downgrade restores a snapshot, which makes a new cluster; ` +
        'take one snapshot with "etcd-migrate backup" and restore it on every member with "etcd-migrate restore"',
    );
  }
}

/** Peak scratch: the copy and the snapshot, then the snapshot and the restored member. */
export const space = (_s: DowngradeStep, sizes: MemberSizes): number =>
  Math.max(sizes.member + sizes.db, 2 * sizes.db + WAL_SEGMENT) + (1 << 20);

export async function run(s: DowngradeStep, ctx: StepContext): Promise<StepReport> {
  const work = path.dirname(path.dirname(ctx.newMember));
  const copy = path.join(work, 'source');
  const snapshot = path.join(work, 'snapshot.db');
  const restored = path.join(work, 'restored');
  const env = ctlEnv(ctx.env);
  const temp = (version: typeof s.to.version, dataDir: string) => ({
    bin: binPath(ctx.binDir, 'etcd', version),
    version,
    dataDir,
    member: ctx.member,
    storage: s.to.storage,
    env: ctx.env,
    timeoutMs: ctx.stepTimeoutMs,
  });

  // 1-2. Snapshot a copy with the current minor's etcd.
  await fs.mkdir(copy, { mode: 0o700 });
  await fs.cp(path.join(ctx.dataDir, 'member'), path.join(copy, 'member'), {
    recursive: true,
    mode: constants.COPYFILE_FICLONE,
  });
  const source = await withTempEtcd(temp(s.snapshotWith, copy), async (endpoint) => {
    const facts = await memberFacts(endpoint, s.snapshotWith, ctx.binDir, ctx.env, ctx.member.clientTls);
    await saveSnapshot({
      binDir: ctx.binDir,
      version: s.snapshotWith,
      endpoint,
      file: snapshot,
      env,
      tls: etcdctlTls(ctx.member.clientTls),
    });
    return facts;
  });
  await fse.remove(copy);
  const file = await checkSnapshotFile(snapshot).catch((e: Error) => {
    throw new StepError(`the snapshot etcd ${fmt(s.snapshotWith)} saved is not usable: ${e.message}`);
  });
  const status = await snapshotStatus(ctx.binDir, s.to.version, snapshot, ctx.env);
  if (status.revision !== source.revision) {
    throw new StepError(
      `the snapshot holds revision ${status.revision}, ` +
        `but etcd ${fmt(s.snapshotWith)} served revision ${source.revision}; ` +
        'nothing was changed',
    );
  }
  debug(
    ctx.log,
    `snapshot by etcd ${fmt(s.snapshotWith)}: ${describeFacts(source)}, ` +
      `${human(file.size)}, sha256 ${file.sha256.slice(0, 16)}, verified`,
  );

  // 3. Restore with the older version's tool into a fresh dir (restore refuses an existing one).
  await restoreSnapshot({
    binDir: ctx.binDir,
    version: s.to.version,
    file: snapshot,
    dataDir: restored,
    member: ctx.member,
    token: ctx.member.initialClusterToken ?? 'etcd-cluster',
    env: ctx.env,
  });
  await fs.rename(path.join(restored, 'member'), ctx.newMember);
  await fs.rm(snapshot, { force: true });

  // 4. The older etcd serves exactly what the newer one did.
  const after = await withTempEtcd(temp(s.to.version, path.dirname(ctx.newMember)), (endpoint) =>
    memberFacts(endpoint, s.to.version, ctx.binDir, ctx.env, ctx.member.clientTls),
  );
  if (!sameFacts(source, after)) {
    throw new StepError(
      `etcd ${fmt(s.to.version)} on the restored snapshot serves ${describeFacts(after)}, ` +
        `but etcd ${fmt(s.snapshotWith)} served ${describeFacts(source)}; nothing was changed`,
    );
  }
  return {
    figures: `${factsFigures(after)}, new member and cluster IDs`,
    fields: factsFields(after),
    detail: `${describeFacts(after)} kept; new member and cluster IDs, lease TTLs restart at full length`,
  };
}
