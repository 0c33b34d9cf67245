// v2-to-v3: converts etcd2 storage to etcd3 on a copy of the member dir, keeping every TTL.
//  1. copy the live member dir to the new one (the live one is never touched);
//  2. start etcd on the copy with the v2 API only for writes: refuse if v3 already holds keys, read
//     every key's value and absolute expiry through the v2 API (streamed; TTL keys spilled to a file);
//  3. `etcdctl migrate` offline (it drops TTLs);
//  4. offline, the db migrate wrote must hold every v2 key and value (checked record by record);
//  5. one run of etcd with a small --snapshot-count: empty the v2 store and have etcd put it so into a
//     .snap file (so 3.5 does not warn about custom v2 content and 3.6 accepts the data), delete
//     the expired keys, and etcd must count the keys left;
//  6. write the TTLs (absolute expiries) into the pending file beside the new member dir; the swap
//     moves both in. The attach-ttls step at the end of the chain makes them leases: etcd gives every
//     lease its full TTL again whenever it starts, so a lease granted here would gain the time until
//     the target etcd starts.
import path from 'node:path';
import { binPath } from '../bundle.ts';
import { PENDING_TTLS_FILE } from '../datadir.ts';
import { formatChecksum } from '../checksum.ts';
import { seconds } from '../log.ts';
import { checkMigratedDb, deleteExpiredAndCount, txnLimits, unexpired } from '../convert/check.ts';
import { writePendingTtls } from '../convert/pending.ts';
import { SpillWriter } from '../convert/spill.ts';
import { readV2Store } from '../convert/v2read.ts';
import { emptyAndSeal, SEAL_FLAGS } from '../convert/v2store.ts';
import { StepError, UsageError } from '../errors.ts';
import { migrateV2ToV3 } from '../etcd/etcdctl.ts';
import { withGrpc } from '../etcd/grpc.ts';
import { withClient } from '../etcd/http.ts';
import { withTempEtcd, type StartOptions } from '../etcd/server.ts';
import type { Step } from '../plan.ts';
import { fmt, fmtData } from '../version.ts';
import { newPendingTtlsFile } from '../workdir.ts';
import { copyMemberDir, scratchDir } from './copy.ts';
import type { StepContext, StepReport, ToolNeed } from './context.ts';

type V2ToV3Step = Extract<Step, { kind: 'v2-to-v3' }>;

export const mode = 'rebuild';

export const needs = (s: V2ToV3Step): ToolNeed[] => [
  { tool: 'etcd', version: s.to.version },
  { tool: 'etcdctl', version: s.to.version },
];

export async function run(s: V2ToV3Step, ctx: StepContext): Promise<StepReport> {
  const v = s.to.version;
  let t = Date.now();
  const since = () => {
    const now = Date.now();
    const d = seconds(now - t);
    t = now;
    return d;
  };
  const dataDir = path.dirname(ctx.newMember);
  await copyMemberDir(path.join(ctx.dataDir, 'member'), ctx.newMember);
  const ttlFile = path.join(await scratchDir(ctx, 'v2-to-v3'), 'ttl-keys.tsv');
  const etcd = (o: Partial<StartOptions>): StartOptions => ({
    bin: binPath(ctx.binDir, 'etcd', v), version: v, dataDir, member: ctx.member, storage: 'etcd3',
    env: ctx.env, timeoutMs: ctx.stepTimeoutMs, ...o,
  });

  // 2. Read. Writes go through the v2 API only (the readiness probe too): a v3 write here could
  // take a revision that migrate then gives a v2 key (etcd-facts: the revision-collision trap).
  const spill = new SpillWriter(ttlFile);
  let started = '';
  const v2 = await withTempEtcd(etcd({ storage: 'etcd2' }), (e) => withClient(e.endpoint, async (c) => {
    started = since();
    const inV3 = await withGrpc(e.endpoint, (g) => g.count(), ctx.member.clientTls);
    if (inV3 > 0) {
      throw new UsageError(`the etcd2 data of ${fmtData(s.from)} also holds ${inV3} keys in etcd3 storage, which etcdctl migrate could overwrite (v2 indexes become v3 revisions); nothing was changed. Look at them with ETCDCTL_API=3 etcdctl get "" --prefix --keys-only on etcd ${fmt(v)}; if the data is really etcd3, write ${fmt(s.from.version)}/etcd3 into version.txt, else delete those keys`);
    }
    return readV2Store(c, spill);
  }, ctx.member.clientTls).finally(() => spill.close()));
  const before = v2.all.digest();
  ctx.log(`etcd ${fmt(v)} started in ${started}; read the v2 store in ${since()}: ${before.keys} keys (${before.ttlKeys} with a TTL) in ${v2.dirs} directories (v3 has no directories; they are not kept)`);

  // 3. Convert, offline.
  await migrateV2ToV3(binPath(ctx.binDir, 'etcdctl', v), dataDir, ctx.env);
  ctx.log(`etcdctl ${fmt(v)} migrate done in ${since()}`);

  // 4. Offline: every record of the db it wrote.
  const inDb = await checkMigratedDb(path.join(ctx.newMember, 'snap', 'db'), v2, ttlFile);
  ctx.log(`the db it wrote holds every v2 key and value not yet due, none on a lease (${inDb.keys} keys; read offline in ${since()})`);

  // 5. The v2 store emptied and sealed; the expired keys go; etcd must count the others.
  const txn = txnLimits(v);
  const r = await withTempEtcd(etcd({ v2: true, flags: [...txn.flags, ...SEAL_FLAGS] }), async (e) => {
    const started = since();
    await withClient(e.endpoint, (c) => emptyAndSeal(c, ctx.newMember, ctx.stepTimeoutMs), ctx.member.clientTls);
    ctx.log(`etcd ${fmt(v)} started in ${started}; v2 store emptied and snapshotted in ${since()}`);
    return withGrpc(e.endpoint, (g) => deleteExpiredAndCount(g, ttlFile, v2, txn.ops), ctx.member.clientTls);
  });
  ctx.log(`${r.expired} expired keys deleted (${seconds(r.deleteMs)}), etcd counted the rest (${seconds(r.countMs)}) and stopped: ${since()}`);

  // 6. The TTLs, pending until the end of the chain (fsynced; the swap moves the file in).
  const pending = await writePendingTtls(newPendingTtlsFile(ctx.dataDir), r.expected, unexpired(ttlFile, r.cutoff));
  if (pending !== r.expected.ttlKeys) throw new StepError(`the pending TTL file holds ${pending} keys, but ${r.expected.ttlKeys} keys with a TTL are left; the live data was not changed`);

  return {
    detail: `before (v2): ${formatChecksum(before)} in ${v2.dirs} dirs; after (v3, TTLs pending): ${formatChecksum(r.expected)}; `
      + `${r.expired} keys expired during the conversion; the TTLs of ${pending} keys wait in ${PENDING_TTLS_FILE} for the end of the chain; v2 store emptied`,
  };
}
