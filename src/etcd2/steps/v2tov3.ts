// v2-to-v3: converts etcd2 storage to etcd3 on a copy of the member dir, keeping every TTL, offline
// (no etcd server runs on the live data in this step):
//  1. copy the live member dir into the work area (its db; the rest, only read, as hard links: the
//     live member dir is never written);
//  2. refuse if v3 already holds keys (migrate could overwrite them), read from the copy's db;
//  3. the whole v2 store, as etcd saves it in a snapshot file when it runs on another (full) copy:
//     the "before" side of every check, and the hidden nodes (names starting with `_`), which
//     migrate never hands its transformer (etcd2/v2save.ts, etcd2/convert/v2store.ts);
//  4. `etcdctl migrate` on the copy, with our transformer (etcd2/convert/transform.ts): migrate rebuilds the
//     v2 store from the snapshot and the WAL with etcd's own code and writes what the transformer
//     gives back; the transformer adds the hidden nodes, leaves out keys already due (by their own
//     expiry or a directory's), counts every key into a checksum that must be the one of 3., spills
//     each TTL key's absolute expiry to a file (migrate drops TTLs), and gives the records back in
//     revision order (twice as fast for migrate; etcd2/convert/revorder.ts);
//  5. the db migrate wrote must hold exactly those keys and values (read record by record);
//  6. meanwhile, `snapshot restore` of that db (the tool of the same etcd) makes the new member
//     dir: the db with its keys and revisions, a fresh WAL, and a v2 store that holds nothing but
//     the member (so 3.5 does not warn about custom v2 content and 3.6 accepts the data) and the
//     cluster version, written in (etcd/disk/snapfile.ts). Like a downgrade, it gives the member and the
//     cluster new IDs: the conversion is for a lone member (cluster.ts). Its key bucket must be the
//     one checked in 5., page for page: then the attach step of this run takes 5. for its own read;
//  7. write the TTLs (absolute expiries, and values) into the pending file beside the new member
//     dir; the swap moves both in. The attach-ttls step at the end of the chain deletes the keys due
//     by then, checks every key and value against the checksum (by 5. while the db is unchanged,
//     else read offline or through etcd), and makes the TTLs leases: etcd gives every lease its full
//     TTL again whenever it starts, so a lease granted here would gain the time until the target
//     etcd starts.
import { promises as fs } from 'node:fs';
import fse from 'fs-extra';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { binPath } from '../../bundled-versions.ts';
import { PENDING_TTLS_FILE } from '../../datadir.ts';
import { ChecksumBuilder, formatChecksum, sameChecksum, type Checksum } from '../../checksum.ts';
import { checkMigratedDb } from '../convert/check.ts';
import { writePendingTtlsFromSpill } from '../convert/pending.ts';
import type { TransformSummary } from '../convert/transform.ts';
import { readV2Store, type V2Store } from '../convert/v2store.ts';
import { dbIdentity, liveKeyCount, sameKeyBucket, type DbKeyspace } from '../convert/v3db.ts';
import { StepError, UsageError } from '../../errors.ts';
import { migrateV2ToV3 } from '../etcdctl-migrate.ts';
import { seedClusterVersion } from '../../etcd/disk/snapfile.ts';
import { v2StoreSnapshot } from '../v2save.ts';
import { restoreSnapshot } from '../../etcd/process/snapshot.ts';
import { offlineTool } from '../../etcd/process/tool.ts';
import type { Step } from '../../plan.ts';
import type { TransformerFiles } from '../transformer.ts';
import { fmt, fmtData, type Version } from '../../version.ts';
import { newPendingTtlsFile } from '../../workdir.ts';
import { linkMemberDir, scratchDir } from '../../steps/copy.ts';
import { progressOf, type Install, type StepContext, type StepReport, type ToolNeed } from '../../steps/context.ts';
import { count, counted, debug, seconds, were } from '../../log.ts';
import { MIB } from '../../progress.ts';

type V2ToV3Step = Extract<Step, { kind: 'v2-to-v3' }>;

export const mode = 'rebuild';

/**
 * The run's backup goes beside it (it reads only the live member dir; the swap waits for the backup
 * to be verified): while migrate writes the sorted records into bbolt, one core is free, so the run
 * is no slower, and quicker at 1M keys (BENCHMARKS.md).
 */
export const backupBeside = true;

export const needs = (s: V2ToV3Step): ToolNeed[] => [
  { tool: 'etcd', version: s.to.version },
  { tool: 'etcdctl', version: s.to.version },
  { tool: offlineTool(s.to.version), version: s.to.version },
];

export async function run(s: V2ToV3Step, ctx: StepContext): Promise<StepReport> {
  const v = s.to.version;
  const since = stopwatch();
  // 1. A copy of the member dir to work on: its db (migrate writes the keys there); the WAL and
  // snapshots, which migrate only reads, as hard links.
  const { scratch, source, dbFile } = await copyMember(ctx);
  const copied = since();
  const files: TransformerFiles = {
    ttlFile: path.join(scratch, 'ttl-keys.tsv'),
    summaryFile: path.join(scratch, 'summary.json'),
    sortDir: scratch,
  };

  // 2. v3 must be empty: migrate writes v2 indexes as v3 revisions (etcd-facts: the revision-collision trap).
  refuseV3Keys(s, dbFile);

  // 3. The whole v2 store, hidden nodes too, as etcd saves it: the "before" of every check below,
  // and the hidden nodes for the transformer (migrate never hands them over).
  files.hiddenFile = path.join(scratch, 'hidden-nodes.jsonl');
  const whole = await readWholeV2Store(v, ctx, scratch, files.hiddenFile);
  files.nowMs = whole.nowMs;
  const all = whole.summary.converted;
  const from = whole.etcdRan
    ? `saved by etcd ${fmt(v)} on a copy of the member dir (copied, run and stopped in ${seconds(whole.snapMs)})`
    : 'its newest snapshot file (the WAL holds nothing after it)';
  debug(
    ctx.log,
    `the whole v2 store, ${from} and read in ${since()}: ${count(all.keys, 'key')} not due` +
      ` (${all.ttlKeys} with a TTL),` +
      ` of which ${whole.hiddenKeys} hidden` +
      ` (a name on their path starts with _: etcdctl migrate does not hand them over; converted from this read)` +
      ` in ${count(whole.hiddenDirs, 'hidden directory', 'hidden directories')}`,
  );

  // 4. Convert, offline, through the transformer; it must have converted exactly that store.
  const converted = whole.summary.converted;
  const v2 = await convert(v, ctx, { scratch, source }, files, converted);
  debug(
    ctx.log,
    `etcdctl ${fmt(v)} migrate done in ${since()} ` +
      `(its db copied and the rest of the member dir linked first, in ${copied}): ` +
      `${count(converted.keys, 'key')} (${converted.ttlKeys} with a TTL) ` +
      `in ${count(v2.dirs, 'directory', 'directories')} (v3 has no directories; they are not kept); ` +
      `${count(v2.expired, 'key')} ${were(v2.expired)} already due ` +
      `and ${v2.expired === 1 ? 'is' : 'are'} not converted`,
  );

  // 5 and 6 at once (both only read the db migrate wrote; the check on this thread, the restore in
  // its own process). 5. Every record of the db it wrote. 6. The new member dir: the db restored,
  // with a fresh WAL and v2 store; it is used only if the check passed.
  const restored = path.join(scratch, 'restored');
  const restoring = restoreSnapshot({
    binDir: ctx.binDir,
    version: v,
    file: dbFile,
    dataDir: restored,
    member: ctx.member,
    token: ctx.member.initialClusterToken ?? 'etcd-cluster',
    env: ctx.env,
    skipHashCheck: true,
  });
  const checked = await checkWhileRestoring(dbFile, converted, restoring);
  const inDb = checked.sum.digest();
  debug(
    ctx.log,
    'the db it wrote holds every key and value it was given, ' +
      `none on a lease (${count(inDb.keys, 'key')}; read offline in ${since()})`,
  );
  await restoring;
  const { same, seeded, why, cluster } = await installRestored(v, ctx, { dbFile, restored, source, checked });
  debug(
    ctx.log,
    `${offlineTool(v)} ${fmt(v)} snapshot restore of that db, beside the check: ` +
      `a new member dir with a fresh WAL and an empty v2 store, ${since()} after the check; ` +
      (seeded
        ? `cluster version ${cluster} recorded in it`
        : `no cluster version recorded${why}: etcd decides it when it starts`) +
      `; its key bucket ${same ? 'is' : 'is not'} the checked one, page for page`,
  );

  // 7. The TTLs, pending until the end of the chain (fsynced; the swap moves the file in).
  const pending = await writePending(ctx, converted, files.ttlFile);

  // After: keys and values as read from the db, the keys of the pending file as the TTL keys.
  const after = { ...inDb, ttlKeys: pending, ttl: converted.ttl };
  const due = v2.expired ? `, ${counted(v2.expired, 'key')} already due (not converted)` : '';
  return {
    figures: `${counted(inDb.keys, 'key')}, ${counted(pending, 'TTL')} pending${due}`,
    fields: { keys: inDb.keys, ttls: pending, due: v2.expired },
    detail:
      `before (v2): ${formatChecksum(converted)} in ${count(v2.dirs, 'dir')}; ` +
      `after (v3, TTLs pending): ${formatChecksum(after)}; ` +
      `${count(v2.expired, 'key')} ${were(v2.expired)} due before it (not converted); ` +
      `the TTLs of ${count(pending, 'key')} wait in ${PENDING_TTLS_FILE} for the end of the chain; ` +
      'v2 store emptied; new member and cluster IDs',
  };
}

/** The time since the previous call (or since it was made), for the step's log lines. */
function stopwatch(): () => string {
  let t = Date.now();
  return () => {
    const now = Date.now();
    const d = seconds(now - t);
    t = now;
    return d;
  };
}

/** 1. The scratch dir with the member dir's copy in `source`: its db copied, the rest hard-linked. */
async function copyMember(ctx: StepContext): Promise<{ scratch: string; source: string; dbFile: string }> {
  const scratch = await scratchDir(ctx, 'v2-to-v3');
  const source = path.join(scratch, 'source');
  await fse.ensureDir(source, { mode: 0o700 });
  await linkMemberDir(path.join(ctx.dataDir, 'member'), path.join(source, 'member'), [path.join('snap', 'db')]);
  return { scratch, source, dbFile: path.join(source, 'member', 'snap', 'db') };
}

/** 2. Keys already in etcd3 storage could be overwritten by migrate: refused before any change. */
function refuseV3Keys(s: V2ToV3Step, dbFile: string): void {
  const v = s.to.version;
  const inV3 = liveKeyCount(dbFile);
  if (inV3 > 0) {
    throw new UsageError(
      `the etcd2 data of ${fmtData(s.from)} also holds ${count(inV3, 'key')} in etcd3 storage, ` +
        'which etcdctl migrate could overwrite (v2 indexes become v3 revisions); nothing was changed. ' +
        `Look at them with ETCDCTL_API=3 etcdctl get "" --prefix --keys-only on etcd ${fmt(v)}; ` +
        `if the data is really etcd3, write ${fmt(s.from.version)}/etcd3 into version.txt, else delete those keys`,
    );
  }
}

/** 4. `etcdctl migrate` on the copy with the transformer; what it converted must be `converted`. */
async function convert(
  v: Version,
  ctx: StepContext,
  w: { scratch: string; source: string },
  files: TransformerFiles,
  converted: Checksum,
): Promise<TransformSummary> {
  const script = await writeTransformerScript(w.scratch, ctx.install, files);
  // etcdctl migrate tells nothing as it goes: how much of the db it has written says how far it is.
  const dbMib = async () => (await fs.stat(path.join(w.source, 'member', 'snap', 'db'))).size / MIB;
  const migrating = progressOf(ctx)(`etcdctl ${fmt(v)} migrate`, undefined, 'MiB', dbMib);
  const out = await migrateV2ToV3(binPath(ctx.binDir, 'etcdctl', v), w.source, script, ctx.env).finally(() =>
    migrating.end(),
  );
  const v2 = await readSummary(files.summaryFile, out);
  if (!sameChecksum(v2.converted, converted)) {
    throw new StepError(
      `etcdctl migrate and its transformer converted ${formatChecksum(v2.converted)}, ` +
        `but the v2 store holds ${formatChecksum(converted)}; the live data was not changed`,
    );
  }
  return v2;
}

/** 5. The db migrate wrote, checked record by record while the restore runs; a failed check waits for the restore. */
async function checkWhileRestoring(
  dbFile: string,
  converted: Checksum,
  restoring: Promise<unknown>,
): Promise<DbKeyspace> {
  try {
    return checkMigratedDb(dbFile, converted);
  } catch (e) {
    await restoring.catch(() => {});
    throw e;
  }
}

/**
 * 6. The restored member dir becomes the new member, with the cluster version seeded; the check of
 * 5. is handed to this run's attach step when the restored key bucket is the checked one.
 */
async function installRestored(
  v: Version,
  ctx: StepContext,
  w: { dbFile: string; restored: string; source: string; checked: DbKeyspace },
): Promise<{ same: boolean; seeded: boolean; why: string; cluster: string }> {
  // The restored db's key bucket is the one just checked, page for page: the attach step of this run
  // takes this check for its own read of the db, while the file is unchanged (etcd2/steps/attach-ttls.ts).
  const restoredDb = path.join(w.restored, 'member', 'snap', 'db');
  const same = sameKeyBucket(w.dbFile, restoredDb);
  // The cluster version the restoring etcd would decide, in the new v2 store (etcd/disk/snapfile.ts:
  // etcd 3.3 may otherwise take 4 s to decide it when it next starts). Not written, etcd decides it.
  const cluster = `${v.major}.${v.minor}.0`;
  let why = '';
  const seeded = await seedClusterVersion(path.join(w.restored, 'member', 'snap'), cluster).catch((e: Error) => {
    why = ` (${e.message})`;
    return false;
  });
  await fs.rename(path.join(w.restored, 'member'), ctx.newMember);
  await fse.remove(w.source);
  const identity = same ? await dbIdentity(path.join(ctx.newMember, 'snap', 'db')) : undefined;
  ctx.checkedDb = identity ? { keyspace: w.checked, identity } : undefined;
  return { same, seeded, why, cluster };
}

/** 7. The pending TTL file beside the new member dir; it must hold every converted TTL key. */
async function writePending(ctx: StepContext, converted: Checksum, ttlFile: string): Promise<number> {
  const pending = await writePendingTtlsFromSpill(newPendingTtlsFile(ctx.dataDir), converted, ttlFile);
  if (pending !== converted.ttlKeys)
    throw new StepError(
      `the pending TTL file holds ${count(pending, 'key')}, ` +
        `but ${count(converted.ttlKeys, 'key')} with a TTL ${were(converted.ttlKeys)} converted; ` +
        'the live data was not changed',
    );
  return pending;
}

/**
 * The v2 store read whole from a snapshot file (etcd2/v2save.ts: the newest one, or one that etcd `v`
 * writes on a full copy of the member dir); its hidden nodes written to `hiddenFile`. Keys due at the
 * moment returned count as gone, in this read and in the transformer alike: etcd's leader deletes
 * due keys while it runs, so it may have deleted some of them in the copy.
 */
async function readWholeV2Store(
  v: Version,
  ctx: StepContext,
  scratch: string,
  hiddenFile: string,
): Promise<V2Store & { nowMs: number; etcdRan: boolean; snapMs: number }> {
  const dir = path.join(scratch, 'v2store');
  await fs.mkdir(dir, { mode: 0o700 });
  const t0 = Date.now();
  const snap = await v2StoreSnapshot({
    bin: binPath(ctx.binDir, 'etcd', v),
    version: v,
    dataDir: ctx.dataDir,
    scratch: dir,
    member: ctx.member,
    env: ctx.env,
    timeoutMs: ctx.stepTimeoutMs,
    log: ctx.log,
  });
  const nowMs = Date.now();
  const reading = progressOf(ctx)('reading the v2 store', (await fs.stat(snap.file)).size / MIB, 'MiB');
  const store = await readV2Store(snap.file, nowMs, hiddenFile, (bytes) => reading.add(bytes / MIB)).finally(() =>
    reading.end(),
  );
  await fs.rm(dir, { recursive: true, force: true });
  return { ...store, nowMs, etcdRan: snap.etcdRan, snapMs: nowMs - t0 };
}

/**
 * migrate runs its transformer without arguments: a script (a Node module with a #! line, since the
 * image has no shell) that runs src/etcd2/transformer.ts with the files to write. Its garbage is short-lived
 * (a node's text and record): a 1 MB young generation keeps its memory small at the same speed
 * (BENCHMARKS.md).
 */
async function writeTransformerScript(dir: string, install: Install, files: TransformerFiles): Promise<string> {
  // Linux reads at most 256 bytes of a #! line; all after the path is one argument.
  if (/\s/.test(install.node) || install.node.length > 200)
    throw new StepError(
      `the Node binary's path ${JSON.stringify(install.node)} cannot start a script (#! line): ` +
        'it has a space or is too long; install Node at a plain path',
    );
  const file = path.join(dir, 'transformer.mjs');
  const module = JSON.stringify(pathToFileURL(install.transformer).href);
  await fs.writeFile(
    file,
    `#!${install.node} --max-semi-space-size=1\n` +
      `const { runTransformer } = await import(${module});\n` +
      `await runTransformer(${JSON.stringify(files)});\n`,
    { mode: 0o700 },
  );
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
    if (/no v2 keys to migrate/.test(migrateOutput))
      return { converted: new ChecksumBuilder().digest(), dirs: 0, expired: 0 };
    throw new StepError(
      `etcdctl migrate ended but its transformer left no summary (${(e as Error).message}); ` +
        'the live data was not changed',
    );
  }
}
