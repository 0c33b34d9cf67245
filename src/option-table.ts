// The main command's options, once: the parser (args.ts), the environment variables (options.ts),
// --help (yargs) and the option table of docs/configuration.md (scripts/readme-options.ts) all read this table.
// No imports: it is loaded at every pod start.

export interface OptionSpec {
  readonly type: 'string' | 'number' | 'boolean';
  /** What it is, for --help and docs/configuration.md. */
  readonly describe: string;
  readonly group: string;
  /** The variable read when the flag is not given (Kubernetes' etcd image used the same names). */
  readonly env?: string;
  /** The default as --help and docs/configuration.md show it (markdown code spans); options.ts applies it. */
  readonly default?: string;
  readonly choices?: readonly string[];
}

export const GROUPS = {
  migration: 'Migration:',
  member: 'Member and cluster:',
  temp: 'Temporary etcd:',
  backup: 'Backups:',
  output: 'Output:',
} as const;

export const OPTIONS = {
  'data-dir': {
    type: 'string',
    group: GROUPS.migration,
    env: 'DATA_DIRECTORY',
    default: 'required',
    describe: 'etcd data directory',
  },
  'target-version': {
    type: 'string',
    group: GROUPS.migration,
    env: 'TARGET_VERSION',
    default: 'required, `x.y.z`',
    describe: 'target etcd version x.y.z',
  },
  'target-storage': {
    type: 'string',
    group: GROUPS.migration,
    env: 'TARGET_STORAGE',
    default: '`etcd3` (or `etcd2`)',
    describe: 'etcd2 or etcd3',
  },
  'bin-dir': {
    type: 'string',
    group: GROUPS.migration,
    default: '`/usr/local/bin`',
    describe: 'directory of etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z>',
  },
  'bundled-versions': {
    type: 'string',
    group: GROUPS.migration,
    env: 'BUNDLED_VERSIONS',
    default: 'every `etcd-x.y.z` in the bin dir',
    describe: 'bundled versions, split on commas or spaces',
  },
  'assume-current-version': {
    type: 'string',
    group: GROUPS.migration,
    default: 'none: a data dir without `version.txt` is refused',
    describe: 'x.y.z/etcdN that wrote a data dir lacking version.txt (checked against what the data records)',
  },
  'drop-v2-content': {
    type: 'boolean',
    group: GROUPS.migration,
    default: 'off: custom v2 content is refused before 3.6',
    describe: 'a lone member on its way to 3.6+: drop custom v2 keys (the v3 data goes through a snapshot; new IDs)',
  },
  'etcd-data-prefix': {
    type: 'string',
    group: GROUPS.migration,
    env: 'ETCD_DATA_PREFIX',
    default: '`/registry`',
    describe: 'key prefix of the data',
  },
  'ttl-keys-directory': {
    type: 'string',
    group: GROUPS.migration,
    env: 'TTL_KEYS_DIRECTORY',
    default: '`<prefix>/events`',
    describe: 'accepted for compatibility; every TTL is kept',
  },
  name: {
    type: 'string',
    group: GROUPS.member,
    env: 'ETCD_NAME',
    default: '`etcd-<hostname>`',
    describe: 'member name',
  },
  'initial-cluster': {
    type: 'string',
    group: GROUPS.member,
    env: 'INITIAL_CLUSTER',
    default: '`<name>=http://127.0.0.1:<peer-port>`',
    describe: '<name>=<peer url>,... of every member',
  },
  'listen-peer-urls': {
    type: 'string',
    group: GROUPS.member,
    env: 'LISTEN_PEER_URLS',
    default: '`http://127.0.0.1:<peer-port>`',
    describe: 'peer URLs the temporary etcd listens on',
  },
  'initial-advertise-peer-urls': {
    type: 'string',
    group: GROUPS.member,
    env: 'INITIAL_ADVERTISE_PEER_URLS',
    default: '`http://127.0.0.1:<peer-port>`',
    describe: 'peer URLs the temporary etcd advertises',
  },
  'initial-cluster-token': {
    type: 'string',
    group: GROUPS.member,
    env: 'INITIAL_CLUSTER_TOKEN',
    default:
      '`--initial-cluster-token` in the etcd flags after `--`, else `ETCD_INITIAL_CLUSTER_TOKEN`, ' +
      'else `etcd-cluster`',
    describe: 'cluster token of members restored from a snapshot',
  },
  port: {
    type: 'number',
    group: GROUPS.temp,
    default: '`18629`',
    describe: 'hidden client port of the temporary etcd, on 127.0.0.1 only',
  },
  'peer-port': { type: 'number', group: GROUPS.temp, default: '`2380`', describe: 'peer port of the temporary etcd' },
  'etcd-server-extra-args': {
    type: 'string',
    group: GROUPS.temp,
    env: 'ETCD_CREDS',
    default: 'empty',
    describe: 'extra flags for every temporary etcd, split on whitespace',
  },
  'client-ca-file': {
    type: 'string',
    group: GROUPS.temp,
    env: 'CLIENT_CA_FILE',
    default: 'none; required when `ETCD_CREDS` has `--cert-file`',
    describe: 'CA that signed the server certificate in ETCD_CREDS: the temporary etcd then serves https',
  },
  'client-cert-file': {
    type: 'string',
    group: GROUPS.temp,
    env: 'CLIENT_CERT_FILE',
    default: 'none; required when `ETCD_CREDS` has `--client-cert-auth` or `--trusted-ca-file`',
    describe: 'client certificate for the temporary etcd',
  },
  'client-key-file': {
    type: 'string',
    group: GROUPS.temp,
    env: 'CLIENT_KEY_FILE',
    default: 'none; required with `--client-cert-file`',
    describe: 'key of --client-cert-file',
  },
  'step-timeout': {
    type: 'number',
    group: GROUPS.temp,
    env: 'STEP_TIMEOUT',
    default: '`120`, or `600` in a cluster',
    describe: 'seconds a temporary etcd may take to become ready',
  },
  'backup-dir': {
    type: 'string',
    group: GROUPS.backup,
    env: 'BACKUP_DIR',
    default: '`<data-dir>.backups`: beside the data dir, never inside it',
    describe: "where the verified backup goes before a run's first step",
  },
  'keep-backups': {
    type: 'number',
    group: GROUPS.backup,
    env: 'KEEP_BACKUPS',
    default: '`3`',
    describe: 'how many backups of this data dir to keep (1 or more)',
  },
  'backup-encryption-key-file': {
    type: 'string',
    group: GROUPS.backup,
    env: 'BACKUP_ENCRYPTION_KEY_FILE',
    default: 'none: backups are not encrypted',
    describe: 'encrypt backups (AES-256-GCM) with the key in this file, 32+ random bytes',
  },
  'backup-compression': {
    type: 'string',
    group: GROUPS.backup,
    env: 'BACKUP_COMPRESSION',
    default: '`none`',
    choices: ['none', 'zstd'],
    describe: 'zstd: smaller backups (Kubernetes data: about a third), written more slowly (BENCHMARKS.md)',
  },
  'dry-run': {
    type: 'boolean',
    group: GROUPS.output,
    default: 'off',
    describe: 'print the plan on stdout; change nothing',
  },
  output: {
    type: 'string',
    group: GROUPS.output,
    default: '`text`',
    choices: ['text', 'json'],
    describe: 'json: the plan and the result as one JSON object on stdout (log lines stay on stderr)',
  },
  'log-format': {
    type: 'string',
    group: GROUPS.output,
    default: '`text`',
    choices: ['text', 'json'],
    describe: "json: each log line a record shaped like etcd's own (level, ts, caller, msg, fields), one per line",
  },
  'log-level': {
    type: 'string',
    group: GROUPS.output,
    env: 'LOG_LEVEL',
    default: '`info`',
    choices: ['debug', 'info', 'warn', 'error'],
    describe: 'the least level logged; debug adds the checks and figures behind each line',
  },
  version: {
    type: 'boolean',
    group: GROUPS.output,
    describe: "this tool's version and commit, and the etcd versions in the bin dir",
  },
  help: { type: 'boolean', group: GROUPS.output, describe: 'this help; also etcd-migrate help [command]' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** `kebab-case` -> `camelCase`, as a type: the Flags key of an option. */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

/** The Flags keys of the options that have an environment variable, each to its name. */
export type EnvNames = {
  readonly [K in OptionName as (typeof OPTIONS)[K] extends { env: string } ? Camel<K> : never]: string;
};

export const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const ENV = Object.fromEntries(
  Object.entries(OPTIONS).flatMap(([k, o]) => ('env' in o ? [[camel(k), o.env]] : [])),
) as EnvNames;

/** The option's line in --help: its description and its variable (yargs adds the default). */
export function describeOption(o: OptionSpec): string {
  return o.env ? `${o.describe} [env ${o.env}]` : o.describe;
}

/** The default for --help: the docs' text without its code spans. */
export const plainDefault = (o: OptionSpec): string | undefined => o.default?.replace(/`/g, '');
