// The command line: yargs turns argv into Flags. No defaults here: options.ts applies them, after env.
import parser from 'yargs-parser';
import type { Options } from 'yargs';
import { UsageError } from './errors.ts';
import type { Flags } from './options.ts';

export const OPTIONS = {
  'data-dir': { type: 'string', describe: 'etcd data directory [env DATA_DIRECTORY]' },
  'target-version': { type: 'string', describe: 'target etcd version x.y.z [env TARGET_VERSION]' },
  'target-storage': { type: 'string', describe: 'etcd2 or etcd3 [env TARGET_STORAGE] (default etcd3)' },
  'bin-dir': { type: 'string', describe: 'directory of etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z> (default /usr/local/bin)' },
  'bundled-versions': { type: 'string', describe: 'bundled versions, split on commas or spaces [env BUNDLED_VERSIONS] (default: every etcd-x.y.z in the bin dir)' },
  'name': { type: 'string', describe: 'member name [env ETCD_NAME] (default etcd-<hostname>)' },
  'initial-cluster': { type: 'string', describe: '<name>=<peer url>,... [env INITIAL_CLUSTER]' },
  'listen-peer-urls': { type: 'string', describe: '[env LISTEN_PEER_URLS] (default http://127.0.0.1:<peer-port>)' },
  'initial-advertise-peer-urls': { type: 'string', describe: '[env INITIAL_ADVERTISE_PEER_URLS] (default http://127.0.0.1:<peer-port>)' },
  'port': { type: 'number', describe: 'hidden client port of the temporary etcd, on 127.0.0.1 only (default 18629)' },
  'peer-port': { type: 'number', describe: 'peer port of the temporary etcd (default 2380)' },
  'etcd-data-prefix': { type: 'string', describe: 'key prefix of the data [env ETCD_DATA_PREFIX] (default /registry)' },
  'ttl-keys-directory': { type: 'string', describe: 'accepted for compatibility; every TTL is kept [env TTL_KEYS_DIRECTORY]' },
  'etcd-server-extra-args': { type: 'string', describe: 'extra flags for every temporary etcd, split on whitespace [env ETCD_CREDS]' },
  'dry-run': { type: 'boolean', describe: 'print the plan; change nothing' },
  'client-ca-file': { type: 'string', describe: 'CA that signed the server certificate in ETCD_CREDS (--cert-file): the temporary etcd then serves https [env CLIENT_CA_FILE]' },
  'client-cert-file': { type: 'string', describe: 'client certificate for the temporary etcd when ETCD_CREDS has --client-cert-auth or --trusted-ca-file [env CLIENT_CERT_FILE]' },
  'client-key-file': { type: 'string', describe: 'key of --client-cert-file [env CLIENT_KEY_FILE]' },
  'step-timeout': { type: 'number', describe: 'seconds a temporary etcd may take to become ready [env STEP_TIMEOUT] (default 120; 600 in a cluster, whose members meet)' },
  'assume-current-version': { type: 'string', describe: 'x.y.z/etcdN that wrote a data dir lacking version.txt (checked against what the data records)' },
  'backup-dir': { type: 'string', describe: 'where the verified backup goes before a run\'s first step, never inside the data dir [env BACKUP_DIR] (default <data-dir>.backups)' },
  'keep-backups': { type: 'number', describe: 'how many backups of this data dir to keep [env KEEP_BACKUPS] (default 3)' },
  'backup-encryption-key-file': { type: 'string', describe: 'encrypt backups (AES-256-GCM) with the key in this file, 32+ random bytes [env BACKUP_ENCRYPTION_KEY_FILE]' },
  'initial-cluster-token': { type: 'string', describe: 'cluster token of members restored from a snapshot [env INITIAL_CLUSTER_TOKEN] (default: the one in the etcd flags, else etcd-cluster)' },
} as const satisfies Record<string, Options>;

/** A parsed flag's value as a string, or undefined when the flag was not given. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : v === undefined ? undefined : String(v));

/** A parsed flag's value as a number; a value that is not one is refused. */
export function num(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new UsageError(`${flag} needs a number`);
  return v;
}

export function parseArgs(argv: readonly string[]): Flags {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? [...argv] : argv.slice(0, dash);
  const etcdArgs = dash === -1 ? undefined : argv.slice(dash + 1);
  // yargs' own parser, without yargs' help and layout machinery (~50 ms to load): this runs at
  // every pod start. The help text comes from yargs itself (printHelp), loaded only when asked.
  const byType = (t: string) => Object.entries(OPTIONS).filter(([, o]) => o.type === t).map(([k]) => k);
  const a = parser(own, {
    string: byType('string'),
    number: byType('number'),
    boolean: byType('boolean'),
    alias: { help: ['h'] },
    configuration: { 'camel-case-expansion': true, 'duplicate-arguments-array': false, 'strip-aliased': true },
  });
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const known = new Set(['_', '$0', 'help', 'h', ...Object.keys(OPTIONS)]);
  const unknown = Object.keys(a).map(kebab).find((k) => !known.has(k));
  if (unknown) throw new UsageError(`unknown flag --${unknown}; see etcd-migrate --help`);
  if (a._.length) throw new UsageError(`unexpected argument "${String(a._[0])}"; etcd flags go after --, see etcd-migrate --help`);
  return {
    dataDir: str(a.dataDir),
    targetVersion: str(a.targetVersion),
    targetStorage: str(a.targetStorage),
    binDir: str(a.binDir),
    bundledVersions: str(a.bundledVersions),
    name: str(a.name),
    initialCluster: str(a.initialCluster),
    listenPeerUrls: str(a.listenPeerUrls),
    initialAdvertisePeerUrls: str(a.initialAdvertisePeerUrls),
    port: num(a.port, '--port'),
    peerPort: num(a.peerPort, '--peer-port'),
    etcdDataPrefix: str(a.etcdDataPrefix),
    ttlKeysDirectory: str(a.ttlKeysDirectory),
    etcdServerExtraArgs: str(a.etcdServerExtraArgs),
    dryRun: a.dryRun as boolean | undefined,
    assumeCurrentVersion: str(a.assumeCurrentVersion),
    clientCaFile: str(a.clientCaFile),
    clientCertFile: str(a.clientCertFile),
    clientKeyFile: str(a.clientKeyFile),
    stepTimeout: num(a.stepTimeout, '--step-timeout'),
    backupDir: str(a.backupDir),
    keepBackups: num(a.keepBackups, '--keep-backups'),
    backupEncryptionKeyFile: str(a.backupEncryptionKeyFile),
    initialClusterToken: str(a.initialClusterToken),
    etcdArgs,
    help: a.help === true || own.includes('--help') || own.includes('-h'),
  };
}

/** The main command's help, printed by yargs from the same option table. */
export async function printHelp(): Promise<void> {
  const { default: yargs } = await import('yargs');
  await yargs([])
    .scriptName('etcd-migrate')
    .usage('$0 [options] [-- <etcd flags>]\n\nMigrates the etcd data dir to the target version and storage, one minor at a time, then execs the target etcd with the flags after --.\n\nOther commands: etcd-migrate backup --help, etcd-migrate restore --help, etcd-migrate rehearse --help.')
    .options(OPTIONS)
    .epilogue('Subcommands: etcd-migrate rehearse --help (a rehearsal of the migration on a copy of a data dir)')
    .version(false)
    .exitProcess(false)
    .showHelp('log');
}
