// The command lines of `etcd-migrate backup` and `etcd-migrate restore`. The default command (the
// migration) is parsed by ../args.ts; these reuse its option descriptions where they mean the same.
import yargs, { type Options } from 'yargs';
import { LOG_OPTIONS, num, refuseUnknown, str, subcommandParser, yargsOptions } from '../args.ts';
import { UsageError } from '../errors.ts';
import type { Flags } from '../options.ts';

import { OPTIONS } from '../option-table.ts';
import { isCommand, type Command } from './names.ts';

// The main command's table entries, as yargs takes them (the table's defaults are text, not values),
// without the main help's groups.
const MAIN = Object.fromEntries(Object.entries(yargsOptions(OPTIONS)).map(([k, { group: _, ...o }]) => [k, o]));

const TLS = {
  endpoints: { type: 'string', describe: 'snapshot this live etcd (one client URL) instead of an offline data dir' },
  cacert: { type: 'string', describe: 'CA bundle to verify the endpoint (TLS)' },
  cert: { type: 'string', describe: 'client certificate for the endpoint (TLS)' },
  key: { type: 'string', describe: 'client key for the endpoint (TLS)' },
} as const satisfies Record<string, Options>;

const TEMP_ETCD = {
  'bin-dir': MAIN['bin-dir']!,
  port: MAIN['port']!,
  'peer-port': MAIN['peer-port']!,
  'etcd-server-extra-args': MAIN['etcd-server-extra-args']!,
  'backup-encryption-key-file': {
    type: 'string',
    describe: 'encrypt / decrypt with the key in this file (AES-256-GCM) [env BACKUP_ENCRYPTION_KEY_FILE]',
  },
  ...LOG_OPTIONS,
} as const satisfies Record<string, Options>;

const BACKUP = {
  ...TLS,
  'data-dir': {
    type: 'string',
    describe: 'snapshot this offline data dir (no etcd may run on it) [env DATA_DIRECTORY]',
  },
  ...TEMP_ETCD,
} as const satisfies Record<string, Options>;

const RESTORE = {
  'data-dir': { type: 'string', describe: 'the data dir to create; missing or empty [env DATA_DIRECTORY]' },
  'target-version': {
    type: 'string',
    describe:
      'the etcd version x.y.z the data dir is for (its tool restores the snapshot) [env TARGET_VERSION]; ' +
      'a backup archive records its own',
  },
  name: MAIN['name']!,
  'initial-cluster': MAIN['initial-cluster']!,
  'initial-advertise-peer-urls': MAIN['initial-advertise-peer-urls']!,
  'listen-peer-urls': MAIN['listen-peer-urls']!,
  'initial-cluster-token': MAIN['initial-cluster-token']!,
  'skip-hash-check': {
    type: 'boolean',
    describe: 'accept a raw copy of member/snap/db, which has no sha256 appended by etcd',
  },
  ...TEMP_ETCD,
} as const satisfies Record<string, Options>;

export interface CommandFlags extends Flags {
  command: Command;
  /** backup: the file to write; restore: the file to read. */
  file?: string;
  endpoints?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  skipHashCheck?: boolean;
}

const EXAMPLES: Record<Command, ReadonlyArray<[string, string]>> = {
  backup: [
    [
      '$0 backup /backups/etcd.db --data-dir /var/etcd/data',
      'a snapshot of an offline data dir (no etcd running on it)',
    ],
    [
      '$0 backup /backups/etcd.db --endpoints https://10.0.0.1:2379 --cacert ca.crt --cert c.crt --key c.key',
      'a snapshot of a live member over TLS',
    ],
  ],
  restore: [
    ['$0 restore /backups/etcd.db --data-dir /var/etcd/data --target-version 3.5.30', 'a lone member from a snapshot'],
  ],
};

export function parseCommand(argv: readonly string[]): CommandFlags {
  const command = argv[0];
  if (!isCommand(command)) throw new UsageError(`unknown command "${command}"`);
  const options = command === 'backup' ? BACKUP : RESTORE;
  const usage =
    command === 'backup'
      ? '$0 backup <file> (--endpoints <url> [--cacert --cert --key] | --data-dir <dir>) [options]\n\n' +
        'Saves an etcd snapshot of a live member or an offline data dir into <file>, verifies it, ' +
        'and prints its hash, revision, keys and size.'
      : '$0 restore <file> --data-dir <empty dir> [--target-version x.y.z] [member flags] [options]\n\n' +
        'Restores an etcd snapshot or an etcd-migrate backup (decrypting it when needed) into an empty data dir, ' +
        'checks it with the target etcd, and writes version.txt.';
  const a = subcommandParser(
    yargs(argv.slice(1))
      .scriptName('etcd-migrate')
      .usage(usage)
      .options(options)
      .example([...EXAMPLES[command]]),
    command,
  ).parseSync();
  refuseUnknown(a, ['help', ...Object.keys(options)], `etcd-migrate ${command} --help`, ` for ${command}`);
  const help = a.help === true || argv.includes('--help') || argv.includes('-h');
  if (a._.length > 1) throw new UsageError(`unexpected argument "${String(a._[1])}"; ${command} takes one file`);
  const file = a._[0] === undefined ? undefined : String(a._[0]);
  if (!file && !help)
    throw new UsageError(
      `${command} needs a file: etcd-migrate ${command} <file> ...; see etcd-migrate ${command} --help`,
    );
  return {
    command,
    file,
    help,
    dataDir: str(a.dataDir),
    targetVersion: str(a.targetVersion),
    binDir: str(a.binDir),
    name: str(a.name),
    initialCluster: str(a.initialCluster),
    listenPeerUrls: str(a.listenPeerUrls),
    initialAdvertisePeerUrls: str(a.initialAdvertisePeerUrls),
    initialClusterToken: str(a.initialClusterToken),
    port: num(a.port, '--port'),
    peerPort: num(a.peerPort, '--peer-port'),
    etcdServerExtraArgs: str(a.etcdServerExtraArgs),
    backupEncryptionKeyFile: str(a.backupEncryptionKeyFile),
    endpoints: str(a.endpoints),
    cacert: str(a.cacert),
    cert: str(a.cert),
    key: str(a.key),
    skipHashCheck: a.skipHashCheck === true ? true : undefined,
  };
}
