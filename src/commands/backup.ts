// `etcd-migrate backup <file>`: an etcd snapshot of a live member (--endpoints, TLS flags) or of an
// offline data dir (etcd started on a copy, on the hidden loopback port), checked (etcd's sha256
// trailer, `snapshot status`), optionally encrypted and then decrypted again to check it, then
// described: hash, revision, keys, size.
import { MIB } from '../progress.ts';
import { progressOf } from '../steps/context.ts';
import { execa } from 'execa';
import { constants, promises as fs } from 'node:fs';
import { createReadStream } from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream } from '../backup/crypt.ts';
import { encryptFile } from '../backup/file.ts';
import { human } from '../backup/space.ts';
import { readKeyFile } from '../backup/store.ts';
import { binPath, checkTools, discoverBundled } from '../bundled-versions.ts';
import { inspectDataDir } from '../datadir.ts';
import { IntegrityError, StepError, UsageError } from '../errors.ts';
import { childEnv } from '../etcd/process/env.ts';
import { memberFacts } from '../etcd/client/facts.ts';
import { withTempEtcd } from '../etcd/process/session.ts';
import { checkSnapshotFile, saveSnapshot, snapshotStatus, type TlsFlags } from '../etcd/process/snapshot.ts';
import { ctlEnv, offlineTool, runTool } from '../etcd/process/tool.ts';
import { errno, fsyncDir, fsyncFile } from '../fsx.ts';
import { acquireLock } from '../lock.ts';
import { DEFAULT_BIN_DIR, ENV, resolveOptions } from '../options.ts';
import { checkPortsFree } from '../preflight.ts';
import { onInterrupt } from '../interrupt.ts';
import { refuseRunningEtcd } from '../etcd/process/running.ts';
import { stopLeftoverEtcds } from '../etcd/process/leftovers.ts';
import { compare, fmt, fmtData, sameMinor, type Version } from '../version.ts';
import { swapPending } from '../workdir.ts';
import type { CommandFlags } from './args.ts';
import type { CommandIO } from './io.ts';

export async function backupCommand(f: CommandFlags, io: CommandIO): Promise<void> {
  // A snapshot holds every Secret of the cluster: whatever this command and its children create
  // (the snapshot, etcd's files in the member copy) is the owner's only from the start.
  process.umask(0o077);
  const out = path.resolve(f.file!);
  const given = f.endpoints ? f.dataDir : (f.dataDir ?? (io.env[ENV.dataDir] || undefined));
  const dataDir = given === undefined ? undefined : path.resolve(given);
  if (f.endpoints && f.dataDir)
    throw new UsageError('give either --endpoints (a live etcd) or --data-dir (an offline data dir), not both');
  if (!f.endpoints && !dataDir)
    throw new UsageError(
      'backup needs --endpoints <client url> (a live etcd) or --data-dir <dir> (an offline data dir)',
    );
  if (f.endpoints?.includes(','))
    throw new UsageError(`--endpoints ${f.endpoints}: a snapshot comes from one member; give one client URL`);
  if (
    await fs.lstat(out).then(
      () => true,
      () => false,
    )
  )
    throw new UsageError(`${out} exists; backups are never overwritten, choose a new file name`);
  if (
    !(await fs.stat(path.dirname(out)).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    throw new UsageError(`${path.dirname(out)} is not a directory; create it first`);
  const keyFile = f.backupEncryptionKeyFile ?? (io.env[ENV.backupEncryptionKeyFile] || undefined);
  const key = keyFile ? await readKeyFile(keyFile) : undefined;
  const binDir = f.binDir ?? DEFAULT_BIN_DIR;

  // Every temporary file (the plaintext snapshot, etcdctl's .part, the member copy, the encrypted
  // file before it is checked) lives in one owner-only dir, removed on failure and on SIGINT/SIGTERM.
  const work = `${out}.work-${process.pid}`;
  const plain = path.join(work, 'snapshot.db');
  const unregister = onInterrupt(() => removeWork(work));
  let placed = false;
  try {
    let version: Version;
    let keys: number | undefined;
    /** Live: the keys are counted at the snapshot's revision once it is known. */
    let countLive: ((revision: number) => Promise<number>) | undefined;
    if (f.endpoints) {
      const endpoint = f.endpoints;
      const v = await newestWithTools(binDir);
      const tls: TlsFlags = { cacert: f.cacert, cert: f.cert, key: f.key };
      // The user's ETCDCTL_* apply, except where a flag says otherwise.
      const env = {
        ...childEnv(
          io.env,
          [
            '--endpoints',
            ...Object.entries(tls)
              .filter(([, x]) => x)
              .map(([k]) => `--${k}`),
          ],
          'ETCDCTL_',
        ),
        ETCDCTL_API: '3',
      };
      await checkReachable(binDir, v, endpoint, tls, env);
      await fs.mkdir(work, { mode: 0o700 });
      const save = () => saveSnapshot({ binDir, version: v, endpoint, file: plain, env, tls });
      await withSaveProgress(io, plain, undefined, save);
      version = v;
      countLive = (revision) => countAt(binDir, v, endpoint, tls, revision, env);
    } else {
      ({ version, keys } = await snapshotOffline(f, dataDir!, binDir, work, plain, io));
    }
    const file = await checkSnapshotFile(plain).catch((e: unknown) => {
      throw e instanceof IntegrityError
        ? new StepError(`the snapshot etcd sent is not usable: ${e.message}; nothing was written to ${out}`)
        : e;
    });
    const status = await snapshotStatus(binDir, version, plain, io.env);
    if (countLive) keys = await countLive(status.revision).catch(() => undefined);
    let sha256 = file.sha256;
    let result = plain;
    if (key) {
      result = path.join(work, 'sealed');
      await encryptFile(plain, result, key);
      await fs.rm(plain);
      // Read it back once: the hash of what is on disk, and of what it decrypts to.
      const sealed = crypto.createHash('sha256');
      const back = crypto.createHash('sha256');
      const tap = new Transform({
        transform(chunk: Buffer, _e, cb) {
          sealed.update(chunk);
          cb(null, chunk);
        },
      });
      const hashAll = async (src: AsyncIterable<Buffer>) => {
        for await (const b of src) back.update(b);
      };
      await pipeline(createReadStream(result, { highWaterMark: 1 << 20 }), tap, decryptStream(key), hashAll);
      if (back.digest('hex') !== file.sha256) {
        throw new StepError(
          'the encrypted snapshot does not decrypt to the snapshot it was made from; ' +
            `nothing was written to ${out}`,
        );
      }
      sha256 = sealed.digest('hex');
    }
    await fsyncFile(result);
    // A hard link, not a rename: it never replaces a file that appeared at `out` meanwhile.
    await fs.link(result, out).catch((e: unknown) => {
      if (errno(e) !== 'EEXIST') throw e;
      throw new UsageError(
        `${out} appeared while the backup was made; backups are never overwritten, choose a new file name`,
      );
    });
    placed = true;
    await fsyncDir(path.dirname(out));
    const size = (await fs.stat(out)).size;
    io.print(`file: ${out}${key ? ' (encrypted, AES-256-GCM)' : ''}`);
    io.print(`sha256: ${sha256}`);
    io.print(`hash: ${status.hash.toString(16).padStart(8, '0')}`);
    io.print(`revision: ${status.revision}`);
    io.print(`keys: ${keys ?? 'not counted'} (${status.totalKey} bbolt entries)`);
    io.print(`size: ${size} bytes (${human(size)})`);
    const how = key ? ', encrypted and decrypted again' : '';
    io.log(`snapshot saved with etcd ${fmt(version)}'s tools, verified${how}: ${out}`, {
      fields: { etcd: fmt(version), file: out, bytes: size, revision: status.revision, keys },
    });
  } catch (e) {
    if (placed) await fs.rm(out, { force: true }).catch(() => {});
    throw e;
  } finally {
    await removeWork(work);
    unregister();
  }
}

/**
 * etcdctl snapshot save as long work: it tells nothing as it goes, the file it writes (etcdctl's
 * `.part`, renamed at the end) says how far it is; `total`: the db's size when known.
 */
async function withSaveProgress<T>(
  io: CommandIO,
  file: string,
  total: number | undefined,
  save: () => Promise<T>,
): Promise<T> {
  const poll = () =>
    fs.stat(`${file}.part`).then(
      (s) => s.size / MIB,
      () => undefined,
    );
  const start = progressOf(io);
  const p = start('saving the snapshot', total && total / MIB, 'MiB', poll);
  return save().finally(() => p.end());
}

/** Stops an etcd still running on the member copy, then removes every temporary file. */
async function removeWork(work: string): Promise<void> {
  await stopLeftoverEtcds(work, () => {});
  await fs.rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}

/** The newest bundled version with etcdctl and the offline snapshot tool. */
async function newestWithTools(binDir: string): Promise<Version> {
  const versions = await discoverBundled(binDir);
  for (const v of [...versions].sort(compare).reverse()) {
    const ok = await Promise.all(
      [binPath(binDir, 'etcdctl', v), binPath(binDir, offlineTool(v), v)].map((p) =>
        fs.access(p, constants.X_OK).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (ok.every(Boolean)) return v;
  }
  throw new UsageError(
    `the bin dir ${binDir} has no etcdctl-<x.y.z> (with etcdutl for 3.5+) to take a snapshot with; pass --bin-dir`,
  );
}

/**
 * `snapshot save` retries forever when TLS or the address is wrong; `endpoint status` gives up
 * after etcdctl's command timeout (5 s), printing an empty list.
 */
async function checkReachable(
  binDir: string,
  v: Version,
  endpoint: string,
  tls: TlsFlags,
  env: Record<string, string>,
): Promise<void> {
  const r = await execa(
    binPath(binDir, 'etcdctl', v),
    ['--endpoints', endpoint, ...tlsArgs(tls), 'endpoint', 'status', '-w', 'json'],
    { reject: false, env, extendEnv: false, stdin: 'ignore', timeout: 60_000 },
  );
  if (r.exitCode === 0 && /"revision":\d+/.test(String(r.stdout))) return;
  const why = String(r.stderr).trim().split('\n').at(-1) || `exit code ${r.exitCode}`;
  throw new UsageError(
    `cannot reach etcd at ${endpoint} (${why}); check --endpoints and the TLS flags --cacert, --cert, --key`,
  );
}

const tlsArgs = (tls: TlsFlags): string[] => [
  ...(tls.cacert ? ['--cacert', tls.cacert] : []),
  ...(tls.cert ? ['--cert', tls.cert] : []),
  ...(tls.key ? ['--key', tls.key] : []),
];

/** The live keys at the snapshot's revision (a count only: no value is read). */
async function countAt(
  binDir: string,
  v: Version,
  endpoint: string,
  tls: TlsFlags,
  rev: number,
  env: Record<string, string>,
): Promise<number> {
  const args = [
    '--endpoints',
    endpoint,
    ...tlsArgs(tls),
    'get',
    '',
    '--from-key',
    '--count-only',
    '--rev',
    String(rev),
    '-w',
    'fields',
  ];
  const out = await runTool(binDir, 'etcdctl', v, args, env, 'etcdctl get --count-only', 600_000);
  const m = /"Count" : (\d+)/.exec(out);
  if (!m) throw new Error('no count');
  return Number(m[1]);
}

/**
 * An offline data dir: under its lock, copy the member dir into the work dir beside the output file, then start the
 * data's own minor on the copy with --force-new-cluster (the copy may come from a member of a
 * larger cluster; the live dir is never opened by etcd) and save a snapshot from it.
 */
async function snapshotOffline(
  f: CommandFlags,
  dataDir: string,
  binDir: string,
  work: string,
  file: string,
  io: CommandIO,
): Promise<{ version: Version; keys: number }> {
  const state = await inspectDataDir(dataDir);
  if (state.kind !== 'data') {
    throw new UsageError(
      state.kind === 'unversioned'
        ? `${dataDir} has no version.txt, so the etcd to read it with is unknown; ` +
            `write it (e.g. echo -n 3.4.23/etcd3 > ${dataDir}/version.txt)`
        : `${dataDir} holds no etcd data to back up`,
    );
  }
  if (state.version.storage !== 'etcd3')
    throw new UsageError(
      `${dataDir} holds ${fmtData(state.version)}: a v3 snapshot would hold none of the etcd2 data; ` +
        "the migration's own backups (in --backup-dir) keep it",
    );
  if (await swapPending(dataDir))
    throw new UsageError(
      `${dataDir} has an interrupted migration step; run etcd-migrate on it first, which completes it`,
    );
  const bundled = await discoverBundled(binDir);
  const version = bundled
    .filter((v) => sameMinor(v, state.version.version))
    .sort(compare)
    .at(-1);
  if (!version)
    throw new UsageError(
      `${dataDir} holds ${fmtData(state.version)} data, ` +
        `and no etcd ${state.version.version.major}.${state.version.version.minor}.x is in ${binDir} to read it`,
    );
  await checkTools(binDir, [
    { tool: 'etcd', version },
    { tool: 'etcdctl', version },
    { tool: offlineTool(version), version },
  ]);
  const opts = resolveOptions({ ...f, dataDir, targetVersion: fmt(version) }, io.env, { hostname: io.hostname });
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  const member = {
    name: opts.name,
    initialCluster: `${opts.name}=${peer}`,
    listenPeerUrls: peer,
    initialAdvertisePeerUrls: peer,
    port: opts.port,
    extraArgs: [...opts.extraArgs, '--force-new-cluster'],
  };
  await checkPortsFree({ ...opts, listenPeerUrls: peer });

  const copy = path.join(work, 'copy');
  const lock = await acquireLock(dataDir);
  try {
    // A running etcd keeps writing its WAL: a copy of it could be torn.
    refuseRunningEtcd(dataDir, 'back it up with --endpoints <its client URL>, or stop it first');
    await fs.mkdir(work, { mode: 0o700 });
    await fs.mkdir(copy, { mode: 0o700 });
    const cp = { recursive: true, mode: constants.COPYFILE_FICLONE };
    await fs.cp(path.join(dataDir, 'member'), path.join(copy, 'member'), cp);
  } finally {
    await lock.release();
  }
  const start = {
    bin: binPath(binDir, 'etcd', version),
    version,
    dataDir: copy,
    member,
    storage: 'etcd3' as const,
    env: io.env,
    timeoutMs: 120_000,
  };
  const facts = await withTempEtcd(start, async (endpoint) => {
    const got = await memberFacts(endpoint, version, binDir, io.env);
    const db = (await fs.stat(path.join(copy, 'member', 'snap', 'db'))).size;
    await withSaveProgress(io, file, db, () => saveSnapshot({ binDir, version, endpoint, file, env: ctlEnv(io.env) }));
    return got;
  });
  return { version, keys: facts.keys };
}
