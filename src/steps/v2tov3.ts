// v2-to-v3: converts etcd2 storage to etcd3 on a copy of the member dir, keeping every TTL.
//  1. copy the live member dir to the new one (the live one is never touched);
//  2. offline: refuse if v3 already holds keys (migrate could overwrite them);
//  3. `etcdctl migrate` offline, with our transformer (convert/transform.ts): migrate rebuilds the v2
//     store from the snapshot and the WAL with etcd's own code and writes what the transformer
//     gives back; the transformer leaves out keys already due, counts every key into a checksum and
//     spills each key's absolute expiry to a file (migrate drops TTLs);
//  4. offline, the db migrate wrote must hold exactly those keys and values (record by record);
//  5. one run of etcd with a small --snapshot-count: empty the v2 store and have etcd put it so into a
//     .snap file (so 3.5 does not warn about custom v2 content and 3.6 accepts the data), delete
//     the keys that expired since, and etcd must count the keys left;
//  6. write the TTLs (absolute expiries) into the pending file beside the new member dir; the swap
//     moves both in. The attach-ttls step at the end of the chain makes them leases: etcd gives every
//     lease its full TTL again whenever it starts, so a lease granted here would gain the time until
//     the target etcd starts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { binPath } from '../bundle.ts';
import { PENDING_TTLS_FILE } from '../datadir.ts';
import { ChecksumBuilder, formatChecksum } from '../checksum.ts';
import { seconds } from '../log.ts';
import { checkMigratedDb, deleteExpiredAndCount, txnLimits, unexpired } from '../convert/check.ts';
import { writePendingTtls } from '../convert/pending.ts';
import type { TransformSummary } from '../convert/transform.ts';
import { liveKeyCount } from '../convert/v3db.ts';
import { emptyAndSeal, SEAL_FLAGS } from '../convert/v2store.ts';
import { StepError, UsageError } from '../errors.ts';
import { migrateV2ToV3 } from '../etcd/etcdctl.ts';
import { withGrpc } from '../etcd/grpc.ts';
import { withClient } from '../etcd/http.ts';
import { withTempEtcd, type StartOptions } from '../etcd/server.ts';
import type { Step } from '../plan.ts';
import type { TransformerFiles } from '../transformer.ts';
import { fmt, fmtData } from '../version.ts';
import { newPendingTtlsFile } from '../workdir.ts';
import { copyMemberDir, scratchDir } from './copy.ts';
import type { Install, StepContext, StepReport, ToolNeed } from './context.ts';

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
  const copied = since();
  const scratch = await scratchDir(ctx, 'v2-to-v3');
  const files: TransformerFiles = { ttlFile: path.join(scratch, 'ttl-keys.tsv'), summaryFile: path.join(scratch, 'summary.json') };
  const ttlFile = files.ttlFile;
  const etcd = (o: Partial<StartOptions>): StartOptions => ({
    bin: binPath(ctx.binDir, 'etcd', v), version: v, dataDir, member: ctx.member, storage: 'etcd3',
    env: ctx.env, timeoutMs: ctx.stepTimeoutMs, ...o,
  });

  // 2. v3 must be empty: migrate writes v2 indexes as v3 revisions (etcd-facts: the revision-collision trap).
  const dbFile = path.join(ctx.newMember, 'snap', 'db');
  const inV3 = liveKeyCount(dbFile);
  if (inV3 > 0) {
    throw new UsageError(`the etcd2 data of ${fmtData(s.from)} also holds ${inV3} keys in etcd3 storage, which etcdctl migrate could overwrite (v2 indexes become v3 revisions); nothing was changed. Look at them with ETCDCTL_API=3 etcdctl get "" --prefix --keys-only on etcd ${fmt(v)}; if the data is really etcd3, write ${fmt(s.from.version)}/etcd3 into version.txt, else delete those keys`);
  }

  // 3. Convert, offline, through the transformer.
  const out = await migrateV2ToV3(binPath(ctx.binDir, 'etcdctl', v), dataDir, await writeTransformerScript(scratch, ctx.install, files), ctx.env);
  const v2 = await readSummary(files.summaryFile, out);
  const before = v2.converted;
  ctx.log(`etcdctl ${fmt(v)} migrate done in ${since()} (the member dir copied first in ${copied}): ${before.keys} keys (${before.ttlKeys} with a TTL) in ${v2.dirs} directories (v3 has no directories; they are not kept); ${v2.expired} keys were already due and are not converted`);

  // 4. Offline: every record of the db it wrote.
  const inDb = checkMigratedDb(dbFile, before);
  ctx.log(`the db it wrote holds every key and value it was given, none on a lease (${inDb.keys} keys; read offline in ${since()})`);

  // 5. The v2 store emptied and sealed; the expired keys go; etcd must count the others.
  const txn = txnLimits(v);
  const r = await withTempEtcd(etcd({ v2: true, flags: [...txn.flags, ...SEAL_FLAGS] }), async (e) => {
    const started = since();
    await withClient(e.endpoint, (c) => emptyAndSeal(c, ctx.newMember, ctx.stepTimeoutMs), ctx.member.clientTls);
    ctx.log(`etcd ${fmt(v)} started in ${started}; v2 store emptied and snapshotted in ${since()}`);
    return withGrpc(e.endpoint, (g) => deleteExpiredAndCount(g, ttlFile, before, txn.ops), ctx.member.clientTls);
  });
  ctx.log(`${r.expired} expired keys deleted (${seconds(r.deleteMs)}), etcd counted the rest (${seconds(r.countMs)}) and stopped: ${since()}`);

  // 6. The TTLs, pending until the end of the chain (fsynced; the swap moves the file in).
  const pending = await writePendingTtls(newPendingTtlsFile(ctx.dataDir), r.expected, unexpired(ttlFile, r.cutoff));
  if (pending !== r.expected.ttlKeys) throw new StepError(`the pending TTL file holds ${pending} keys, but ${r.expected.ttlKeys} keys with a TTL are left; the live data was not changed`);

  return {
    detail: `before (v2): ${formatChecksum(before)} in ${v2.dirs} dirs; after (v3, TTLs pending): ${formatChecksum(r.expected)}; `
      + `${v2.expired} keys were due before it and ${r.expired} during it; the TTLs of ${pending} keys wait in ${PENDING_TTLS_FILE} for the end of the chain; v2 store emptied`,
  };
}

/**
 * migrate runs its transformer without arguments: a script (a Node module with a #! line, since the
 * image has no shell) that runs src/transformer.ts with the files to write. Its garbage is short-lived
 * (a node's text and record): a 1 MB young generation keeps its memory small (at 100,000 keys: peak
 * RSS 91 MiB instead of 128, JS heap 11 MiB instead of 73, same time).
 */
async function writeTransformerScript(dir: string, install: Install, files: TransformerFiles): Promise<string> {
  // Linux reads at most 256 bytes of a #! line; all after the path is one argument.
  if (/\s/.test(install.node) || install.node.length > 200) throw new StepError(`the Node binary's path ${JSON.stringify(install.node)} cannot start a script (#! line): it has a space or is too long; install Node at a plain path`);
  const file = path.join(dir, 'transformer.mjs');
  const module = JSON.stringify(pathToFileURL(install.transformer).href);
  await fs.writeFile(file, `#!${install.node} --max-semi-space-size=1\nconst { runTransformer } = await import(${module});\nawait runTransformer(${JSON.stringify(files)});\n`, { mode: 0o700 });
  return file;
}

/**
 * What the transformer saw. migrate ends without waiting for its transformer when the v2 store has
 * no key directory at all ("no v2 keys to migrate"): then nothing was converted.
 */
async function readSummary(file: string, migrateOutput: string): Promise<TransformSummary> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as TransformSummary;
  } catch (e) {
    if (/no v2 keys to migrate/.test(migrateOutput)) return { converted: new ChecksumBuilder().digest(), dirs: 0, expired: 0 };
    throw new StepError(`etcdctl migrate ended but its transformer left no summary (${(e as Error).message}); the live data was not changed`);
  }
}
