// `etcd-migrate restore <file>`: into a missing or empty data dir, decrypting when needed.
// - an etcd snapshot: checked (sha256 trailer, `snapshot status`), restored with the target
//   version's tool and the member flags, started once with the target etcd (its revision must be
//   the snapshot's), then moved into place with version.txt = <target>/etcd3;
// - an etcd-migrate backup archive: every file checked and put back byte for byte, with the
//   version.txt it recorded.
// Both go through the work area and the journaled swap, so a failure leaves the dir as it was.
import { promises as fs } from 'node:fs';
import fse from 'fs-extra';
import path from 'node:path';
import { decryptFile, readArchiveFile, sniff } from '../backup/file.ts';
import { readKeyFile } from '../backup/store.ts';
import { binPath, checkTools } from '../bundled-versions.ts';
import { isCluster, memberNames } from '../cluster.ts';
import { inspectDataDir } from '../datadir.ts';
import { IntegrityError, StepError, UsageError } from '../errors.ts';
import { describeFacts, memberFacts } from '../etcd/client/facts.ts';
import { withTempEtcd } from '../etcd/process/session.ts';
import { checkSnapshotFile, restoreSnapshot, snapshotStatus } from '../etcd/process/snapshot.ts';
import { offlineTool } from '../etcd/process/tool.ts';
import { fsyncDir, fsyncTree } from '../fsx.ts';
import { acquireLock } from '../lock.ts';
import { ENV, memberOf, resolveOptions } from '../options.ts';
import { checkPortsFree } from '../preflight.ts';
import { fmtData, parseVersionFile, type DataVersion } from '../version.ts';
import { prepareWorkDir, removeWorkDir, swapInNewMember, workDir } from '../workdir.ts';
import type { CommandFlags } from './args.ts';
import type { CommandIO } from './io.ts';

export async function restoreCommand(f: CommandFlags, io: CommandIO): Promise<void> {
  const src = path.resolve(f.file!);
  if (
    !(await fs.stat(src).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    throw new UsageError(`${src} is not a file; give the snapshot or backup to restore`);
  const given = f.dataDir ?? (io.env[ENV.dataDir] || undefined);
  if (!given) {
    throw new UsageError('restore needs --data-dir (or DATA_DIRECTORY): the missing or empty data dir to restore into');
  }
  const dataDir = path.resolve(given);
  const state = await inspectDataDir(dataDir);
  if (state.kind === 'data' || state.kind === 'unversioned')
    throw new UsageError(
      `${dataDir} already holds data; restore only fills a missing or empty data dir, so nothing was changed`,
    );
  const kind = await sniff(src);
  if (kind === 'unknown') throw new UsageError(`${src} is neither an etcd snapshot nor an etcd-migrate backup`);
  const keyFile = f.backupEncryptionKeyFile ?? (io.env[ENV.backupEncryptionKeyFile] || undefined);
  if (kind === 'encrypted' && !keyFile)
    throw new UsageError(
      `${src} is encrypted; pass --backup-encryption-key-file (or BACKUP_ENCRYPTION_KEY_FILE) with its key`,
    );
  const key = kind === 'encrypted' ? await readKeyFile(keyFile!) : undefined;

  const created = state.kind === 'missing';
  if (created) {
    await fse.ensureDir(dataDir, { mode: 0o700 });
    await fsyncDir(path.dirname(path.resolve(dataDir)));
  }
  const lock = await acquireLock(dataDir);
  let ok = false;
  try {
    const fresh = await prepareWorkDir(dataDir);
    let input = src;
    if (key) {
      input = path.join(workDir(dataDir), 'input');
      await decryptFile(src, input, key);
    }
    const inner = key ? await sniff(input) : kind;
    let restored: DataVersion;
    if (inner === 'archive') restored = await fromArchive(input, f, io, path.dirname(fresh));
    else if (inner === 'snapshot') restored = await fromSnapshot(input, f, io, dataDir, fresh);
    else throw new UsageError(`${src} decrypts to neither an etcd snapshot nor an etcd-migrate backup`);
    await swapInNewMember(dataDir, restored);
    io.print(`restored: ${dataDir}`);
    io.print(`version.txt: ${fmtData(restored)}`);
    ok = true;
  } catch (e) {
    await removeWorkDir(dataDir);
    if (e instanceof IntegrityError) throw new UsageError(`${src}: ${e.message}; nothing was changed`);
    throw e;
  } finally {
    await lock.release();
    if (!ok && created) await fse.remove(dataDir);
  }
}

/** An etcd-migrate archive: its bytes back, checked; it records its own version. */
async function fromArchive(input: string, f: CommandFlags, io: CommandIO, target: string): Promise<DataVersion> {
  const manifest = await readArchiveFile(input, undefined, target);
  const v = parseVersionFile(manifest.header.dataVersion, `${input} (its recorded version)`);
  const asked = f.targetVersion ?? (io.env[ENV.targetVersion] || undefined);
  if (asked && asked !== fmtData(v).split('/')[0]) {
    throw new UsageError(
      `the backup holds ${fmtData(v)} data, not ${asked}; ` +
        `restore it as it is (without --target-version), then migrate it with etcd-migrate --target-version ${asked}`,
    );
  }
  const files = manifest.entries.filter((e) => e.type === 'file').length;
  io.log(
    `backup archive from ${manifest.header.created} (${manifest.header.source}): ${files} files, ` +
      `${manifest.bytes} bytes, every sha256 checked`,
    { fields: { created: manifest.header.created, files, bytes: manifest.bytes } },
  );
  return v;
}

/** An etcd snapshot: restored with the target version's tool and the member flags, then started once. */
async function fromSnapshot(
  input: string,
  f: CommandFlags,
  io: CommandIO,
  dataDir: string,
  fresh: string,
): Promise<DataVersion> {
  const tv = f.targetVersion ?? (io.env[ENV.targetVersion] || undefined);
  if (!tv)
    throw new UsageError(
      'restoring an etcd snapshot needs --target-version x.y.z (or TARGET_VERSION): the etcd the data dir is for',
    );
  const opts = resolveOptions({ ...f, dataDir, targetVersion: tv, targetStorage: 'etcd3' }, io.env, {
    hostname: io.hostname,
  });
  const v = opts.target.version;
  await checkTools(opts.binDir, [
    { tool: 'etcd', version: v },
    { tool: 'etcdctl', version: v },
    { tool: offlineTool(v), version: v },
  ]);
  if (f.skipHashCheck) io.log('--skip-hash-check: the snapshot has no sha256 from etcd to check');
  else await checkSnapshotFile(input);
  const status = await snapshotStatus(opts.binDir, v, input, io.env);
  const member = memberOf(opts);
  const restored = path.join(workDir(dataDir), 'restored');
  await restoreSnapshot({
    binDir: opts.binDir,
    version: v,
    file: input,
    dataDir: restored,
    member,
    token: opts.initialClusterToken,
    env: io.env,
    skipHashCheck: f.skipHashCheck,
  });
  await fs.rename(path.join(restored, 'member'), fresh);
  // Whatever etcd's restore synced, the swap relies on every file and directory of the new member dir being durable.
  await fsyncTree(fresh, { files: true });
  if (isCluster(opts.initialCluster)) {
    const n = memberNames(opts.initialCluster).length;
    io.log(`not started: a member of a ${n}-member cluster needs its peers; restore the same snapshot on each`);
  } else {
    await checkPortsFree(opts);
    const facts = await withTempEtcd(
      {
        bin: binPath(opts.binDir, 'etcd', v),
        version: v,
        dataDir: path.dirname(fresh),
        member,
        storage: 'etcd3',
        env: io.env,
        timeoutMs: 120_000,
      },
      (endpoint) => memberFacts(endpoint, v, opts.binDir, io.env),
    );
    if (facts.revision !== status.revision)
      throw new StepError(
        `etcd ${tv} on the restored data serves revision ${facts.revision}, ` +
          `but the snapshot holds ${status.revision}; nothing was changed`,
      );
    io.print(`keys: ${facts.keys}`);
    io.log(`etcd ${tv} started on the restored data: ${describeFacts(facts)}`, {
      fields: { etcd: tv, keys: facts.keys, revision: facts.revision },
    });
  }
  io.print(`revision: ${status.revision}`);
  io.print(
    `member: ${opts.name} (${opts.initialAdvertisePeerUrls}), ` +
      `cluster ${opts.initialCluster}, token ${opts.initialClusterToken}`,
  );
  return { version: v, storage: 'etcd3' };
}
