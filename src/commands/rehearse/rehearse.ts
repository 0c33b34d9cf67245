// etcd-migrate rehearse: a dress rehearsal of the migration on a copy of a data dir. The original
// is only read. The copy is migrated inside the image when a container engine holds it (else with
// the local binaries), the target etcd is started on it, and the report tells the plan, each
// step's time, the key counts before and after, and the result.
import type { Install } from '../../steps/index.ts';
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import fse from 'fs-extra';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { discoverBundled } from '../../bundled-versions.ts';
import { chooseEngine, runArgs, type Engine, type EngineChoice } from './container.ts';
import { UsageError } from '../../errors.ts';
import { findRunningEtcd } from '../../etcd/process/running.ts';
import { LOCK_FILE } from '../../datadir.ts';
import { debug, type Log } from '../../log.ts';
import { resolveOptions, type Flags } from '../../options.ts';
import { formatReport, type Rehearsal, type Report } from './report.ts';
import { rehearseCopy } from './run.ts';

/** The main command's flags it shares (same meaning), and its own. */
export interface RehearseFlags extends Pick<
  Flags,
  | 'dataDir'
  | 'targetVersion'
  | 'targetStorage'
  | 'binDir'
  | 'bundledVersions'
  | 'name'
  | 'etcdDataPrefix'
  | 'port'
  | 'peerPort'
  | 'help'
> {
  image?: string;
  engine?: EngineChoice;
  workDir?: string;
  keep?: boolean;
  json?: boolean;
  /** The log's, passed on to the rehearsal in the container so that its lines read as the host's. */
  logFormat?: string;
  logLevel?: string;
  /** Internal: the data dir is the copy that a rehearse on the host made (it has the marker beside it). */
  alreadyCopied?: boolean;
}

export interface RehearseIo {
  log: Log;
  /** The report (stdout). */
  out: (text: string) => void;
  install: Install;
}

export const DEFAULT_IMAGE = 'localhost/etcd-migrate:dev';
/** Written beside the copy; --already-copied refuses a data dir without it, so it never runs on real data. */
const MARKER = '.etcd-migrate-rehearsal';
const IN_CONTAINER = '/rehearsal';

export async function rehearse(f: RehearseFlags, env: NodeJS.ProcessEnv, io: RehearseIo): Promise<number> {
  const source = f.dataDir ?? (env.DATA_DIRECTORY || undefined);
  if (!source)
    throw new UsageError(
      '--data-dir (or DATA_DIRECTORY) is required: the data dir to rehearse on (it is copied, never changed)',
    );
  const port = f.port ?? (await freePort());
  const peerPort = f.peerPort ?? (await freePort([port]));
  const name = f.name ?? (env.ETCD_NAME || `etcd-${os.hostname()}`);
  const peer = `http://127.0.0.1:${peerPort}`;
  // A rehearsal is one member alone on loopback, whatever INITIAL_CLUSTER and the peer URLs say.
  const flags = (dataDir: string): Flags => ({
    dataDir,
    targetVersion: f.targetVersion,
    targetStorage: f.targetStorage,
    binDir: f.binDir,
    bundledVersions: f.bundledVersions,
    name,
    initialCluster: `${name}=${peer}`,
    listenPeerUrls: peer,
    initialAdvertisePeerUrls: peer,
    port,
    peerPort,
    etcdDataPrefix: f.etcdDataPrefix,
  });
  const ctx = { hostname: os.hostname() };

  if (f.alreadyCopied) {
    if (!(await exists(path.join(path.dirname(source), MARKER)))) {
      throw new UsageError(
        '--already-copied is only for the copy that rehearse makes; ' +
          `run etcd-migrate rehearse --data-dir ${source} instead`,
      );
    }
    const r = await rehearseCopy(resolveOptions(flags(source), env, ctx), { env, log: io.log, install: io.install });
    io.out(`${JSON.stringify(r)}\n`);
    return r.result === 'ok' ? 0 : 1;
  }

  // Everything that can be refused is refused before the copy.
  const opts = resolveOptions(flags(source), env, ctx);
  const st = await fs.stat(source).catch(() => undefined);
  if (!st?.isDirectory())
    throw new UsageError(`${source} is not a directory; pass --data-dir with the etcd data dir to rehearse on`);
  if (findRunningEtcd(source)) {
    throw new UsageError(
      `a process (etcd?) holds ${source} open: a copy of a live data dir is not consistent; ` +
        'stop it first, or rehearse on a copy of a backup',
    );
  }
  const image = f.image ?? (env.ETCD_MIGRATE_IMAGE || DEFAULT_IMAGE);
  const engine = await chooseEngine(f.engine ?? 'auto', image, env);
  if (!engine) {
    await discoverBundled(opts.binDir);
    if ((f.engine ?? 'auto') === 'auto') {
      io.log(`rehearsal: neither podman nor docker holds ${image}; using the binaries in ${opts.binDir}`);
    }
  }
  const bytes = await treeBytes(source);
  const parent = path.resolve(f.workDir ?? os.tmpdir());
  const sf = await fs.statfs(parent).catch(() => undefined);
  if (!sf) throw new UsageError(`the work dir ${parent} does not exist; pass --work-dir with a directory to copy into`);
  const need = 2 * bytes + 256 * 1048576;
  if (sf.bavail * sf.bsize < need) {
    throw new UsageError(
      `${parent} has ${mib(sf.bavail * sf.bsize)} free, ` +
        `the rehearsal needs ${mib(need)} (twice the data, ${mib(bytes)}, and room for etcd); ` +
        'pass --work-dir on a larger file system',
    );
  }

  const work = await fs.mkdtemp(path.join(parent, 'etcd-migrate-rehearsal-'));
  const copy = path.join(work, 'data');
  let rehearsal: Rehearsal;
  let copySeconds: number;
  try {
    await fs.writeFile(path.join(work, MARKER), `a copy of ${source} made by etcd-migrate rehearse\n`);
    const t0 = Date.now();
    await fs.cp(source, copy, {
      recursive: true,
      preserveTimestamps: true,
      verbatimSymlinks: true,
      errorOnExist: true,
      filter: (src) => !path.basename(src).startsWith(LOCK_FILE),
    });
    copySeconds = (Date.now() - t0) / 1000;
    io.log(
      `rehearsal: copied ${source} (${mib(bytes)}) in ${copySeconds.toFixed(2)} s; ` +
        `migrating it ${engine ? `in ${engine.name}` : 'with the local binaries'}`,
      { fields: { bytes, seconds: copySeconds } },
    );
    const using = engine ? `the image ${engine.image}` : `the binaries in ${opts.binDir}`;
    debug(io.log, `rehearsal: the copy is ${copy}; ${using}`);
    rehearsal = engine
      ? await inContainer(engine, work, flags(`${IN_CONTAINER}/data`), env, logFlags(f, env))
      : await rehearseCopy(resolveOptions(flags(copy), env, ctx), { env, log: io.log, install: io.install });
  } finally {
    if (!f.keep) await fse.remove(work);
  }
  const report: Report = {
    ...rehearsal,
    host: {
      source,
      copy,
      kept: f.keep ?? false,
      bytes,
      copySeconds,
      engine: engine?.name ?? 'local',
      image: engine?.image,
      imageId: engine?.imageId,
    },
  };
  io.out(f.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.result === 'ok' ? 0 : 1;
}

/** Runs the rehearsal inside the image on the copy (bind-mounted), and reads its report. */
async function inContainer(
  engine: Engine,
  work: string,
  fl: Flags,
  env: NodeJS.ProcessEnv,
  log: string[],
): Promise<Rehearsal> {
  const args = [
    'rehearse',
    '--already-copied',
    '--data-dir',
    fl.dataDir!,
    '--name',
    fl.name!,
    '--port',
    String(fl.port),
    '--peer-port',
    String(fl.peerPort),
    ...log,
  ];
  for (const [flag, v] of [
    ['--target-version', fl.targetVersion],
    ['--target-storage', fl.targetStorage],
    ['--bundled-versions', fl.bundledVersions],
    ['--etcd-data-prefix', fl.etcdDataPrefix],
  ] as const) {
    if (v !== undefined) args.push(flag, v);
  }
  const r = await execa(engine.name, runArgs(engine.image, [[work, IN_CONTAINER]], args), {
    reject: false,
    env,
    extendEnv: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: ['pipe', 'inherit'],
  });
  try {
    return JSON.parse(String(r.stdout)) as Rehearsal;
  } catch {
    const why = errorOf(String(r.stderr));
    const message =
      `the rehearsal in ${engine.name} (${engine.image}) ended with exit code ${r.exitCode} ` +
      `and no report${why ? `: ${why}` : ''}`;
    const target = `${fl.targetVersion ?? '?'}/${fl.targetStorage ?? 'etcd3'}`;
    // Exit code 2: the entrypoint in the image refused (a usage error); anything else: the engine failed.
    return {
      from: '?',
      target,
      plan: [],
      before: { skipped: 'not reached' },
      steps: [],
      after: { skipped: 'not reached' },
      result: 'failed',
      failedAt: r.exitCode === 2 ? 'plan' : 'container',
      message,
    };
  }
}

/** The log flags of the rehearsal in the container: the host's, the level from LOG_LEVEL too. */
function logFlags(f: RehearseFlags, env: NodeJS.ProcessEnv): string[] {
  const level = f.logLevel ?? (env.LOG_LEVEL || undefined);
  return [...(f.logFormat ? ['--log-format', f.logFormat] : []), ...(level ? ['--log-level', level] : [])];
}

/** The message of the last error in a log, text lines or JSON records. */
function errorOf(stderr: string): string | undefined {
  const line = stderr
    .split('\n')
    .filter((l) => /error/.test(l))
    .at(-1);
  if (!line?.startsWith('{')) return line?.replace(/^etcd-migrate: (error: )?/, '');
  try {
    return (JSON.parse(line) as { msg?: string }).msg;
  } catch {
    return line;
  }
}

async function treeBytes(p: string): Promise<number> {
  const st = await fs.lstat(p);
  if (!st.isDirectory()) return st.size;
  let sum = 0;
  for (const e of await fs.readdir(p)) sum += await treeBytes(path.join(p, e));
  return sum;
}

/** A loopback port that is free now (the kernel's choice), other than `not`. */
async function freePort(not: number[] = []): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen({ port: 0, host: '127.0.0.1' }, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!not.includes(port)) return port;
  }
}

const exists = (p: string): Promise<boolean> =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
