// The command line of `etcd-migrate rehearse` (loaded only for that command).
import yargs from 'yargs';
import { ENGINE_CHOICES, type EngineChoice } from './container.ts';
import { LOG_OPTIONS, num, refuseUnknown, str, subcommandParser, yargsOptions } from '../../args.ts';
import { OPTIONS } from '../../option-table.ts';
import { UsageError } from '../../errors.ts';
import { DEFAULT_IMAGE, type RehearseFlags } from './rehearse.ts';

// What the rehearsal shares with the main command, described once (option-table.ts), without its groups.
const SHARED = Object.fromEntries(
  Object.entries(
    yargsOptions({
      'target-version': OPTIONS['target-version'],
      'target-storage': OPTIONS['target-storage'],
      'bundled-versions': OPTIONS['bundled-versions'],
      name: OPTIONS.name,
      'etcd-data-prefix': OPTIONS['etcd-data-prefix'],
    }),
  ).map(([k, { group: _, ...o }]) => [k, o]),
);

/** `etcd-migrate rehearse ...`: argv starts with "rehearse". */
export function parseRehearseArgs(argv: readonly string[]): RehearseFlags {
  let a: Record<string, unknown> = {};
  const y = subcommandParser(
    yargs([...argv])
      .scriptName('etcd-migrate')
      .command(
        'rehearse',
        'copy a data dir (the original is only read), migrate the copy in the image (or with the local binaries), ' +
          "start the target etcd on it and report: the plan, each step's time, " +
          'the key counts before and after, the result',
        (c) =>
          c
            .option('data-dir', { type: 'string', describe: 'the etcd data dir to rehearse on [env DATA_DIRECTORY]' })
            .options(SHARED)
            .option('image', {
              type: 'string',
              describe: `the etcd-migrate image [env ETCD_MIGRATE_IMAGE] (default ${DEFAULT_IMAGE})`,
            })
            .option('engine', {
              choices: ENGINE_CHOICES,
              describe:
                'container engine; auto: podman or docker, whichever has the image, else none; ' +
                'none: the local binaries (default auto)',
            })
            .option('bin-dir', {
              type: 'string',
              describe: 'with --engine none: directory of etcd-<x.y.z> binaries (default /usr/local/bin)',
            })
            .option('work-dir', {
              type: 'string',
              describe: "where the copy is made (default the system temp dir); needs twice the data's size free",
            })
            .option('keep', { type: 'boolean', describe: 'keep the migrated copy' })
            .option('port', {
              type: 'number',
              describe: 'client port of the temporary etcds, on 127.0.0.1 (default: a free one)',
            })
            .option('peer-port', {
              type: 'number',
              describe: 'peer port of the temporary etcds, on 127.0.0.1 (default: a free one)',
            })
            .option('json', { type: 'boolean', describe: 'print the report as JSON' })
            .option('already-copied', { type: 'boolean', hidden: true })
            .options(LOG_OPTIONS),
        (args) => {
          a = args;
        },
      )
      .demandCommand(1, 1),
    'rehearse',
  );
  y.parseSync();
  // Not yargs' strict mode: an unknown flag is refused with the nearest valid name, as elsewhere.
  const own = [
    'data-dir',
    'image',
    'engine',
    'bin-dir',
    'work-dir',
    'keep',
    'port',
    'peer-port',
    'json',
    'already-copied',
  ];
  const valid = ['help', ...Object.keys(SHARED), ...Object.keys(LOG_OPTIONS), ...own];
  refuseUnknown(a, valid, 'etcd-migrate rehearse --help', ' for rehearse');
  const extra = (a._ as unknown[] | undefined)?.[1];
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument "${String(extra)}"; see etcd-migrate rehearse --help`);
  }
  return {
    dataDir: str(a.dataDir),
    targetVersion: str(a.targetVersion),
    targetStorage: str(a.targetStorage),
    image: str(a.image),
    engine: a.engine as EngineChoice | undefined,
    binDir: str(a.binDir),
    bundledVersions: str(a.bundledVersions),
    name: str(a.name),
    etcdDataPrefix: str(a.etcdDataPrefix),
    workDir: str(a.workDir),
    keep: a.keep as boolean | undefined,
    port: num(a.port, '--port'),
    peerPort: num(a.peerPort, '--peer-port'),
    json: a.json as boolean | undefined,
    alreadyCopied: a.alreadyCopied as boolean | undefined,
    logFormat: str(a.logFormat),
    logLevel: str(a.logLevel),
    help: argv.includes('--help') || argv.includes('-h'),
  };
}
