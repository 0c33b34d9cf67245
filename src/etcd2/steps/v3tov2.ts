// v3-to-v2 (rollback to etcd2 storage): every key under the data prefix, with its value and what is
// left of its lease's TTL, goes into a new v2 store made by the target etcd.
//  1. copy the live member dir to a scratch dir (the live one is never run or written);
//  2. start etcd `read` on the copy and read the keys under the prefix: refuse protobuf or binary
//     values (nothing written yet), spill each key, value and absolute expiry to a file;
//  3. start the target etcd on a fresh dir (the new member dir) and write every key through the v2
//     API with its remaining TTL, each write checked, then read the whole store back and compare.
// Revisions (resource versions) are not kept: v2 has its own indexes.
import path from 'node:path';
import { binPath } from '../../bundled-versions.ts';
import { formatChecksum } from '../../checksum.ts';
import { isCluster } from '../../cluster.ts';
import { SpillWriter } from '../convert/spill.ts';
import { readV3Prefix } from '../convert/v3read.ts';
import { writeV2Keys } from '../convert/v2write.ts';
import { UsageError } from '../../errors.ts';
import { withClient } from '../../etcd/client/http.ts';
import { withTempEtcd } from '../../etcd/process/server.ts';
import { V3 } from '../../etcd/client/v3.ts';
import type { Step } from '../../plan.ts';
import { copyMemberDir, scratchDir } from '../../steps/copy.ts';
import type { StepContext, StepReport, ToolNeed } from '../../steps/context.ts';
import { count, counted, debug, figure } from '../../log.ts';

type V3ToV2Step = Extract<Step, { kind: 'v3-to-v2' }>;

export const mode = 'rebuild';

export const needs = (s: V3ToV2Step): ToolNeed[] => [
  { tool: 'etcd', version: s.read },
  { tool: 'etcd', version: s.to.version },
];

export async function run(s: V3ToV2Step, ctx: StepContext): Promise<StepReport> {
  if (isCluster(ctx.member.initialCluster)) {
    throw new UsageError(
      'a rollback to etcd2 makes a new one-member cluster, ' +
        `but INITIAL_CLUSTER names several members (${ctx.member.initialCluster}); ` +
        'roll back one member alone and add the others again, or stay on etcd3',
    );
  }
  const prefix = `${ctx.dataPrefix.replace(/\/+$/, '')}/`;
  const readDir = await scratchDir(ctx, 'v3-to-v2-read');
  await copyMemberDir(path.join(ctx.dataDir, 'member'), path.join(readDir, 'member'));
  const spillFile = path.join(await scratchDir(ctx, 'v3-to-v2'), 'keys.tsv');
  const common = { member: ctx.member, env: ctx.env, timeoutMs: ctx.stepTimeoutMs };

  const spill = new SpillWriter(spillFile);
  const src = await withTempEtcd(
    { ...common, bin: binPath(ctx.binDir, 'etcd', s.read), version: s.read, dataDir: readDir, storage: 'etcd3' },
    (e) =>
      withClient(e.endpoint, (c) => readV3Prefix(new V3(c, s.read), prefix, spill), ctx.member.clientTls).finally(() =>
        spill.close(),
      ),
  );
  const before = src.sum.digest();
  const outsideNote = src.outside
    ? `; ${count(src.outside, 'key')} outside ${prefix} ${src.outside === 1 ? 'is' : 'are'} not rolled back`
    : '';
  const expiredNote = src.expired
    ? `; ${count(src.expired, 'key')} whose lease had run out ${src.expired === 1 ? 'is' : 'are'} left out`
    : '';
  debug(
    ctx.log,
    `read ${count(before.keys, 'key')} under ${prefix} (${before.ttlKeys} on a lease)${outsideNote}${expiredNote}`,
  );

  const dst = await withTempEtcd(
    {
      ...common,
      bin: binPath(ctx.binDir, 'etcd', s.to.version),
      version: s.to.version,
      dataDir: path.dirname(ctx.newMember),
      storage: 'etcd2',
    },
    (e) => withClient(e.endpoint, (c) => writeV2Keys(c, spillFile), ctx.member.clientTls),
  );

  const left = src.outside ? `, ${counted(src.outside, 'key')} outside ${prefix} left out` : '';
  return {
    figures: `${counted(dst.readBack.keys, 'key')} (${figure(dst.readBack.ttlKeys)} with a TTL)${left}`,
    fields: {
      keys: dst.readBack.keys,
      ttls: dst.readBack.ttlKeys,
      outside: src.outside,
      expired: src.expired + dst.expired,
    },
    detail:
      `before (v3, under ${prefix}): ${formatChecksum(before)}; ` +
      `after (v2): ${formatChecksum(dst.readBack)} in ${count(dst.dirs, 'dir')}` +
      `${dst.expired ? `; ${count(dst.expired, 'key')} expired on the way` : ''}` +
      `${src.outside ? `; ${count(src.outside, 'key')} outside ${prefix} not rolled back` : ''}` +
      '; revisions are not kept',
  };
}
