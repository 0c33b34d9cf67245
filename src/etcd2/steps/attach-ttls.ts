// attach-ttls: the TTLs a v2-to-v3 step left in the pending file become leases, with the etcd of
// this point of the chain (the target's, last, so only the start of the target etcd follows the
// grant: etcd gives every lease its full TTL again whenever it starts). On the live data, like an
// upgrade: etcd's WAL keeps it safe, and a rerun repeats it (see etcd2/convert/leases.ts). Last in the
// chain it is also the upgrade to the target (plan.ts): its etcd starts on the data of the minor
// below. The file is removed (durably) once etcd has stopped; the executor then writes version.txt.
import path from 'node:path';
import { binPath } from '../../bundled-versions.ts';
import { clusterVersionNeeded, isCluster } from '../../cluster.ts';
import { formatChecksum } from '../../checksum.ts';
import { txnLimits } from '../convert/check.ts';
import { attachTtls } from '../convert/leases.ts';
import { readPendingTtls } from '../convert/pending.ts';
import { dbIdentity, readDbKeyspace, type DbKeyspace } from '../convert/v3db.ts';
import { SEAL_FLAGS, waitSealed } from '../../etcd/process/seal.ts';
import { withTempEtcd } from '../../etcd/process/server.ts';
import { removeFileDurably } from '../../fsx.ts';
import { count, counted, seconds } from '../../log.ts';
import type { Step } from '../../plan.ts';
import { pendingTtlsFile } from '../../workdir.ts';
import { progressOf, type StepContext, type StepReport, type ToolNeed } from '../../steps/context.ts';
import { mustSeal, sealIfNeeded } from '../../steps/seal.ts';

type AttachStep = Extract<Step, { kind: 'attach-ttls' }>;

export const mode = 'in-place';

export const needs = (s: AttachStep): ToolNeed[] => [
  { tool: 'etcd', version: s.to.version },
  ...(s.sealWith ? [{ tool: 'etcd' as const, version: s.sealWith }] : []),
];

export async function run(s: AttachStep, ctx: StepContext): Promise<StepReport> {
  const v = s.to.version;
  if (s.sealWith) await sealIfNeeded(s, s.sealWith, ctx);
  const seal = await mustSeal(v, ctx);
  const file = pendingTtlsFile(ctx.dataDir);
  const pending = await readPendingTtls(file);
  const txn = txnLimits(v);
  // The keyspace as the db holds it, before etcd starts: when it is what the conversion left, no
  // read of every key through etcd is needed (leases.ts). The conversion's own check of it when this
  // run converted and the file is unchanged since; else read now. Unreadable here, etcd reads it.
  const dbFile = path.join(ctx.dataDir, 'member', 'snap', 'db');
  const handed = ctx.checkedDb;
  ctx.checkedDb = undefined;
  const reading = Date.now();
  const unchanged = handed && handed.identity === (await dbIdentity(dbFile));
  const db = unchanged ? handed.keyspace : tryReadDb(dbFile);
  const offline = db && {
    db,
    ms: Date.now() - reading,
    how: unchanged
      ? 'read by the conversion (this db file, unchanged since)'
      : 'read offline from the db before etcd started',
  };
  // What the target etcd will add to every lease: its election timeout when it becomes leader, and
  // the time it takes to get there, measured by this very start of it (a lone member's: a cluster
  // member's start waits for its peers). The rollback's temporary etcd reads the leases at once.
  const target = s.before === 'target';
  let startMs = 0;
  const r = await withTempEtcd(
    {
      bin: binPath(ctx.binDir, 'etcd', v),
      version: v,
      dataDir: ctx.dataDir,
      member: ctx.member,
      storage: 'etcd3',
      env: ctx.env,
      timeoutMs: ctx.stepTimeoutMs,
      flags: seal ? [...txn.flags, ...SEAL_FLAGS] : txn.flags,
      // As an upgrade step waits (from the minor below, this start is the upgrade to the target).
      clusterAtLeast: clusterVersionNeeded(s, ctx.target.version, isCluster(ctx.member.initialCluster)),
      log: ctx.log,
    },
    async (e) => {
      // From its spawn until it first answered (the start that counted, if it was started twice): after
      // that it may wait for its cluster version, which the target's etcd finds decided (this one
      // writes it; etcd/process/server.ts, etcd/disk/snapfile.ts).
      startMs = target && !isCluster(ctx.member.initialCluster) ? (e.answeredAt ?? Date.now()) - e.spawnedAt : 0;
      const extendMs = target ? ctx.targetElectionTimeoutMs + startMs : 0;
      // etcd's minimum lease TTL: 1.5 election timeouts, whole seconds (the rollback's etcd: 0.1 s).
      const minTtl = target ? Math.max(1, Math.ceil((1.5 * ctx.targetElectionTimeoutMs) / 1000)) : 1;
      const electionWaitMs = target ? ctx.targetElectionTimeoutMs : 0;
      const attach = { opsPerTxn: txn.ops, extendMs, minTtl, electionWaitMs, offline };
      // Loaded here: node:http2 costs every other pod start ~10 ms (BENCHMARKS.md, issue 15).
      const { withGrpc } = await import('../../etcd/client/grpc.ts');
      return withGrpc(
        e.endpoint,
        async (g) => {
          // Sealed before the grants, whose timing counts.
          if (seal) await waitSealed(e, ctx.dataDir, ctx.stepTimeoutMs);
          const progress = progressOf(ctx)('attaching TTLs', 2 * pending.expected.ttlKeys, 'put');
          return attachTtls(g, pending, { ...attach, progress }).finally(() => progress.end());
        },
        ctx.member.clientTls,
      );
    },
  );
  await removeFileDurably(file);
  const expired = r.expired + r.dueSoon ? `, ${counted(r.expired + r.dueSoon, 'key')} expired` : '';
  const dueSoon = r.dueSoon
    ? `, ${r.dueSoon} more were due within ${seconds(r.dueWithinMs)} and were deleted (no lease could end them sooner)`
    : '';
  return {
    figures: `${counted(r.after.ttlKeys, 'key')} on ${counted(r.leases, 'lease')}${expired}`,
    fields: { keys: r.after.ttlKeys, leases: r.leases, expired: r.expired + r.dueSoon },
    detail:
      `after: ${formatChecksum(r.after)}; ${count(r.expired, 'key')} expired since the conversion` +
      `${dueSoon}; ${count(r.after.ttlKeys, 'key')} on ${count(r.leases, 'lease')} ` +
      `(granted ${seconds(Date.now() - r.grantedAt)} before the end of this step; ` +
      `attached in ${seconds(r.attachedAt - r.grantedAt)}, ` +
      `${seconds(r.predictedMs)} allowed for by a timed pass onto one lease; ` +
      `etcd stopped and the file removed in ${seconds(Date.now() - r.attachedAt)}; ` +
      `every key and value ${offline && r.sumFrom === 'db' ? offline.how : 'read through etcd'} ` +
      `and checked first in ${seconds(r.sumMs)}. ` +
      (target
        ? 'A lease restarts in full when etcd becomes leader, plus its election timeout: ' +
          `each is ${seconds(ctx.targetElectionTimeoutMs + startMs)} shorter ` +
          "for the target etcd's election timeout and start)"
        : 'The rollback reads the leases next)'),
  };
}

function tryReadDb(file: string): DbKeyspace | undefined {
  try {
    return readDbKeyspace(file);
  } catch {
    return undefined;
  }
}
