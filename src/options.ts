// Options: resolved flag -> environment variable -> default, by a pure function.
import path from 'node:path';
import type { Codec } from './backup/blocks.ts';
import { isCluster } from './cluster.ts';
import type { MemberConfig } from './etcd/process/server.ts';
import { resolveClientTls, type ClientTlsFiles } from './etcd/tls/config.ts';
import { UsageError } from './errors.ts';
import { ENV, OPTIONS } from './option-table.ts';
import { parseStorage, parseVersion, parseVersionFile, type DataVersion, type Version } from './version.ts';

/** What the command line gave; undefined where a flag was not given. */
export interface Flags {
  dataDir?: string;
  targetVersion?: string;
  targetStorage?: string;
  binDir?: string;
  bundledVersions?: string;
  name?: string;
  initialCluster?: string;
  listenPeerUrls?: string;
  initialAdvertisePeerUrls?: string;
  port?: number;
  peerPort?: number;
  etcdDataPrefix?: string;
  ttlKeysDirectory?: string;
  etcdServerExtraArgs?: string;
  dryRun?: boolean;
  dropV2Content?: boolean;
  assumeCurrentVersion?: string;
  clientCaFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Seconds a temporary etcd may take to become ready. */
  stepTimeout?: number;
  backupDir?: string;
  keepBackups?: number;
  backupEncryptionKeyFile?: string;
  backupCompression?: string;
  initialClusterToken?: string;
  /** The least level logged (cli.ts reads it, and LOG_LEVEL, before the command line is parsed). */
  logLevel?: string;
  /** Flags for the target etcd, after `--`; undefined when there was no `--`. */
  etcdArgs?: string[];
  help?: boolean;
}

export interface Options {
  dataDir: string;
  target: DataVersion;
  binDir: string;
  /** Explicit bundle; undefined means every etcd-x.y.z in binDir. */
  bundled: Version[] | undefined;
  name: string;
  initialCluster: string;
  listenPeerUrls: string;
  initialAdvertisePeerUrls: string;
  port: number;
  peerPort: number;
  dataPrefix: string;
  ttlKeysDirectory: string;
  extraArgs: string[];
  dryRun: boolean;
  /** Custom v2 content on the way to 3.6 is dropped (a lone member) instead of refused. */
  dropV2Content: boolean;
  /** What the data holds when it has no version.txt (--assume-current-version). */
  assumeCurrent: DataVersion | undefined;
  etcdArgs: string[] | undefined;
  /** TLS for this tool's requests to the temporary etcd; undefined: it speaks plain http. */
  clientTls: ClientTlsFiles | undefined;
  /** How long a temporary etcd may take to become ready: longer in a cluster, whose members meet. */
  stepTimeoutMs: number;
  /** Where the verified backup goes before a run's first step (never inside the data dir), and how many to keep. */
  backupDir: string;
  keepBackups: number;
  backupKeyFile: string | undefined;
  /** How the backup's blocks are stored. */
  backupCompression: Codec;
  /**
   * For restored members (downgrades, restore): flag, env, the etcd flags after --, ETCD_INITIAL_CLUSTER_TOKEN,
   * etcd's default.
   */
  initialClusterToken: string;
  /**
   * The election timeout (ms) of the etcd that serves the data after the migration: the etcd flags
   * after --, else ETCD_ELECTION_TIMEOUT, else etcd's default. etcd adds it to every lease when it
   * becomes leader, so the attach-ttls step grants that much less.
   */
  targetElectionTimeoutMs: number;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Context {
  hostname: string;
}

export const DEFAULT_BIN_DIR = '/usr/local/bin';
export const DEFAULT_PORT = 18629;
export const DEFAULT_PEER_PORT = 2380;
/**
 * Seconds a lone member's temporary etcd may take; a cluster member's waits for its peers, which may start minutes
 * apart.
 */
export const DEFAULT_STEP_TIMEOUT_S = 120;
export const DEFAULT_CLUSTER_STEP_TIMEOUT_S = 600;
export const DEFAULT_KEEP_BACKUPS = 3;
/** etcd's own default --election-timeout (ms). */
export const DEFAULT_ELECTION_TIMEOUT_MS = 1000;
/** etcd's own default --initial-cluster-token. */
export const DEFAULT_CLUSTER_TOKEN = 'etcd-cluster';

/** The environment variables this tool reads, from the option table (Kubernetes' etcd image used the same names). */
export { ENV } from './option-table.ts';

/** Read by hand: a number of seconds. */
export const STEP_TIMEOUT_ENV = OPTIONS['step-timeout'].env;
/** Read by hand: a number. */
export const KEEP_BACKUPS_ENV = OPTIONS['keep-backups'].env;

/** A value and where it came from (the flag or the variable), for messages. */
interface Picked {
  value: string;
  from: string;
}

type Picker = (key: keyof typeof ENV) => Picked | undefined;

/** Flag first, then its variable (an empty variable is unset). */
function picker(flags: Flags, env: Env): Picker {
  return (key) => {
    const f = flags[key];
    if (typeof f === 'string') return { value: f, from: `--${kebab(key)}` };
    const e = env[ENV[key]];
    if (e !== undefined && e !== '') return { value: e, from: ENV[key] };
    return undefined;
  };
}

function required(pick: Picker, key: keyof typeof ENV, example: string): Picked {
  const v = pick(key);
  if (!v || v.value.trim() === '')
    throw new UsageError(`--${kebab(key)} (or ${ENV[key]}) is required, e.g. --${kebab(key)}=${example}`);
  return v;
}

export function resolveOptions(flags: Flags, env: Env, ctx: Context): Options {
  const pick = picker(flags, env);
  // Normalised once (absolute, no trailing or double slash): every message, comparison and file name then agrees.
  const dataDir = path.resolve(required(pick, 'dataDir', '/var/etcd/data').value);
  const target = resolveTarget(pick);
  const { port, peerPort } = resolvePorts(flags);
  const member = resolveMember(pick, flags, ctx.hostname, peerPort);
  const { dataPrefix, ttlKeysDirectory } = resolvePrefixes(pick);
  const bundled = resolveBundled(pick);
  const extraArgs = resolveExtraArgs(pick);
  const clientTls = resolveClientTls(
    extraArgs,
    {
      caFile: pick('clientCaFile')?.value,
      certFile: pick('clientCertFile')?.value,
      keyFile: pick('clientKeyFile')?.value,
    },
    flagValue,
  );
  const stepTimeoutMs = resolveStepTimeout(flags.stepTimeout, env[STEP_TIMEOUT_ENV], isCluster(member.initialCluster));
  const etcdArgs = flags.etcdArgs;
  if (etcdArgs) checkEtcdDataDir(etcdArgs, dataDir);
  const backupDir = path.resolve(pick('backupDir')?.value ?? `${dataDir}.backups`);
  checkBackupDir(backupDir, dataDir);
  const keepBackups = resolveKeep(flags.keepBackups, env[KEEP_BACKUPS_ENV]);
  const initialClusterToken = resolveClusterToken(pick, etcdArgs, env);
  const targetElectionTimeoutMs = resolveElectionTimeout(etcdArgs, env);
  return {
    dataDir,
    target,
    binDir: flags.binDir ?? DEFAULT_BIN_DIR,
    bundled,
    ...member,
    port,
    peerPort,
    dataPrefix,
    ttlKeysDirectory,
    extraArgs,
    dryRun: flags.dryRun ?? false,
    dropV2Content: flags.dropV2Content ?? false,
    assumeCurrent:
      flags.assumeCurrentVersion === undefined
        ? undefined
        : parseVersionFile(flags.assumeCurrentVersion, '--assume-current-version'),
    etcdArgs,
    clientTls,
    stepTimeoutMs,
    backupDir,
    keepBackups,
    backupKeyFile: pick('backupEncryptionKeyFile')?.value,
    backupCompression: resolveCodec(pick('backupCompression')),
    initialClusterToken,
    targetElectionTimeoutMs,
  };
}

function resolveTarget(pick: Picker): DataVersion {
  const tv = required(pick, 'targetVersion', '3.5.16');
  const s = pick('targetStorage');
  return {
    version: parseVersion(tv.value.trim(), `${tv.from}`),
    storage: s ? parseStorage(s.value.trim(), s.from) : 'etcd3',
  };
}

function resolvePorts(flags: Flags): { port: number; peerPort: number } {
  const port = checkPort(flags.port ?? DEFAULT_PORT, '--port');
  const peerPort = checkPort(flags.peerPort ?? DEFAULT_PEER_PORT, '--peer-port');
  if (port === peerPort)
    throw new UsageError(`--port and --peer-port are both ${port}; give the temporary etcd two different ports`);
  return { port, peerPort };
}

type Member = Pick<Options, 'name' | 'initialCluster' | 'listenPeerUrls' | 'initialAdvertisePeerUrls'>;

/** This member and its cluster; a lone member on the loopback peer port by default. */
function resolveMember(pick: Picker, flags: Flags, hostname: string, peerPort: number): Member {
  const name = pick('name')?.value ?? `etcd-${hostname}`;
  checkName(name);
  const localPeer = `http://127.0.0.1:${peerPort}`;
  const initialCluster = pick('initialCluster')?.value ?? `${name}=${localPeer}`;
  checkInitialCluster(initialCluster, name);
  const listenPeerUrls = pick('listenPeerUrls')?.value ?? localPeer;
  checkUrls(listenPeerUrls, flags.listenPeerUrls !== undefined ? '--listen-peer-urls' : ENV.listenPeerUrls);
  const initialAdvertisePeerUrls = pick('initialAdvertisePeerUrls')?.value ?? localPeer;
  checkUrls(
    initialAdvertisePeerUrls,
    flags.initialAdvertisePeerUrls !== undefined ? '--initial-advertise-peer-urls' : ENV.initialAdvertisePeerUrls,
  );
  return { name, initialCluster, listenPeerUrls, initialAdvertisePeerUrls };
}

function resolvePrefixes(pick: Picker): { dataPrefix: string; ttlKeysDirectory: string } {
  const dataPrefix = pick('etcdDataPrefix')?.value ?? '/registry';
  if (!dataPrefix.startsWith('/'))
    throw new UsageError(`the data prefix "${dataPrefix}" must start with "/", e.g. /registry`);
  const ttlKeysDirectory = pick('ttlKeysDirectory')?.value ?? `${dataPrefix.replace(/\/+$/, '')}/events`;
  return { dataPrefix, ttlKeysDirectory };
}

function resolveBundled(pick: Picker): Version[] | undefined {
  const bv = pick('bundledVersions');
  if (!bv) return undefined;
  const bundled = splitList(bv.value).map((v) => parseVersion(v, `${bv.from} entry`));
  if (bundled.length === 0)
    throw new UsageError(
      `${bv.from} is set but lists no version; list x.y.z versions split by commas or spaces, or unset it`,
    );
  return bundled;
}

function resolveExtraArgs(pick: Picker): string[] {
  const extra = pick('etcdServerExtraArgs');
  if (!extra) return [];
  const extraArgs = extra.value.split(/\s+/).filter(Boolean);
  checkExtraArgs(extraArgs, extra.from);
  return extraArgs;
}

function checkEtcdDataDir(etcdArgs: readonly string[], dataDir: string): void {
  const dd = flagValue(etcdArgs, 'data-dir');
  if (dd !== undefined && path.resolve(dd) !== dataDir) {
    throw new UsageError(
      `the etcd flag --data-dir=${dd} is not the data dir being migrated (${dataDir}); make them the same`,
    );
  }
}

function resolveClusterToken(pick: Picker, etcdArgs: readonly string[] | undefined, env: Env): string {
  return (
    pick('initialClusterToken')?.value ??
    (etcdArgs && flagValue(etcdArgs, 'initial-cluster-token')) ??
    (env.ETCD_INITIAL_CLUSTER_TOKEN || undefined) ??
    DEFAULT_CLUSTER_TOKEN
  );
}

function resolveElectionTimeout(etcdArgs: readonly string[] | undefined, env: Env): number {
  const et = (etcdArgs && flagValue(etcdArgs, 'election-timeout')) ?? (env.ETCD_ELECTION_TIMEOUT || undefined);
  const ms = et === undefined ? DEFAULT_ELECTION_TIMEOUT_MS : Number(et);
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new UsageError(
      `the target etcd's election timeout "${et}" (--election-timeout after --, or ETCD_ELECTION_TIMEOUT) ` +
        'is not a whole number of milliseconds; fix it as etcd would need it',
    );
  }
  return ms;
}

function resolveStepTimeout(flag: number | undefined, envValue: string | undefined, cluster: boolean): number {
  const from = flag !== undefined ? '--step-timeout' : STEP_TIMEOUT_ENV;
  const v =
    flag ??
    (envValue !== undefined && envValue !== ''
      ? Number(envValue)
      : cluster
        ? DEFAULT_CLUSTER_STEP_TIMEOUT_S
        : DEFAULT_STEP_TIMEOUT_S);
  if (!Number.isFinite(v) || v <= 0)
    throw new UsageError(`${from} must be a number of seconds above 0 (got ${flag ?? envValue})`);
  return Math.round(v * 1000);
}

/** A backup inside the data dir would be copied into the next backup and lost with the dir. */
/** The temporary etcd's member from the options: its name, cluster, peer URLs, port and ETCD_CREDS. */
export function memberOf(o: Options): MemberConfig {
  return {
    name: o.name,
    initialCluster: o.initialCluster,
    listenPeerUrls: o.listenPeerUrls,
    initialAdvertisePeerUrls: o.initialAdvertisePeerUrls,
    port: o.port,
    extraArgs: o.extraArgs,
  };
}

export function checkBackupDir(backupDir: string, dataDir: string): void {
  const rel = path.relative(path.resolve(dataDir), path.resolve(backupDir));
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new UsageError(
      `the backup dir ${backupDir} is inside the data dir ${dataDir}; put it beside the data dir ` +
        `(the default is ${path.resolve(dataDir)}.backups) with --backup-dir or BACKUP_DIR`,
    );
  }
}

function resolveCodec(v: { value: string; from: string } | undefined): Codec {
  if (!v) return 'none';
  const codecs: readonly string[] = OPTIONS['backup-compression'].choices!;
  if (!codecs.includes(v.value)) {
    throw new UsageError(
      `${v.from} must be one of ${codecs.join(', ')} (got "${v.value}"); none is the fastest, zstd the smallest`,
    );
  }
  return v.value === 'zstd' ? 'zstd' : 'none';
}

function resolveKeep(flag: number | undefined, envValue: string | undefined): number {
  const from = flag !== undefined ? '--keep-backups' : KEEP_BACKUPS_ENV;
  const v = flag ?? (envValue !== undefined && envValue !== '' ? Number(envValue) : DEFAULT_KEEP_BACKUPS);
  if (!Number.isInteger(v) || v < 1)
    throw new UsageError(`${from} must be a whole number of backups to keep, 1 or more (got ${flag ?? envValue})`);
  return v;
}

/**
 * What every temporary etcd gets from this tool: its data, its member and cluster, its loopback
 * listeners. etcd takes the last of a flag given twice, so ETCD_CREDS (given after them) would win.
 */
const OWNED_FLAGS = new RegExp(
  '^(data-dir|wal-dir|name|listen-[a-z-]+|advertise-client-urls' +
    '|initial-advertise-peer-urls|initial-cluster(-state|-token)?|discovery(-[a-z-]+)?' +
    '|force-new-cluster|config-file)$',
);

function checkExtraArgs(args: readonly string[], from: string): void {
  for (const a of args) {
    const flag = /^--?([a-z0-9-]+)(=|$)/.exec(a)?.[1];
    if (flag && OWNED_FLAGS.test(flag)) {
      throw new UsageError(
        `${from} gives --${flag}, which etcd-migrate sets itself for every temporary etcd (its data ` +
          `dir, member, cluster and loopback listeners); remove it from ${from} ` +
          '(the etcd flags after -- are for the target etcd)',
      );
    }
  }
}

/** The value of `--name value`, `--name=value` or the single-dash forms in an etcd argument list. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    for (const dash of ['--', '-']) {
      if (a === `${dash}${name}`) found = args[i + 1];
      else if (a.startsWith(`${dash}${name}=`)) found = a.slice(dash.length + name.length + 1);
    }
  }
  return found;
}

export function splitList(s: string): string[] {
  return s.split(/[\s,]+/).filter(Boolean);
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`${what} ${p} is not a TCP port (1-65535)`);
  return p;
}

function checkName(name: string): void {
  if (name === '' || /[\s=,]/.test(name))
    throw new UsageError(`the member name "${name}" is not usable: it must be non-empty without spaces, "=" or ","`);
}

function checkInitialCluster(value: string, name: string): void {
  const fix = `write it as <name>=<peer-url>[,<name>=<peer-url>...], e.g. ${name}=http://127.0.0.1:2380`;
  const names: string[] = [];
  for (const entry of value.split(',')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`the initial cluster "${value}" is malformed at "${entry}": ${fix}`);
    names.push(entry.slice(0, eq));
    checkUrls(entry.slice(eq + 1), `the initial cluster entry "${entry}"`);
  }
  if (!names.includes(name)) {
    throw new UsageError(
      `the initial cluster "${value}" does not name this member "${name}": ` +
        `set INITIAL_CLUSTER to include ${name}=<its peer url>, or set ETCD_NAME to this member's name`,
    );
  }
}

function checkUrls(value: string, what: string): void {
  for (const u of value.split(',')) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new UsageError(`${what}: "${u}" is not a URL like http://127.0.0.1:2380`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.port) {
      throw new UsageError(`${what}: "${u}" must be http(s)://host:port, e.g. http://127.0.0.1:2380`);
    }
  }
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
