// The command line: yargs' parser turns argv into Flags, from the option table (option-table.ts).
// No defaults here: options.ts applies them, after env.
import parser from 'yargs-parser';
import type { Argv, Options } from 'yargs';
import { INTERNAL_ERROR_EXIT, UsageError } from './errors.ts';
import { camel, describeOption, kebab, OPTIONS, plainDefault, type OptionSpec } from './option-table.ts';
import type { Flags } from './options.ts';

export { OPTIONS } from './option-table.ts';

/** The main command's flags: the options, and what only the CLI itself acts on. */
export interface MainFlags extends Flags {
  version?: boolean;
  output?: 'text' | 'json';
  logFormat?: 'text' | 'json';
}

/** A parsed flag's value as a string, or undefined when the flag was not given. */
export const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : v === undefined ? undefined : String(v);

/** A parsed flag's value as a number; a value that is not one is refused. */
export function num(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new UsageError(`${flag} needs a number`);
  return v;
}

/** The option table as yargs takes it, for a command's parser and its --help. */
export function yargsOptions(table: Readonly<Record<string, OptionSpec>>): Record<string, Options> {
  return Object.fromEntries(
    Object.entries(table).map(([k, o]) => [
      k,
      {
        type: o.type,
        describe: describeOption(o),
        group: o.group,
        ...(o.choices ? { choices: [...o.choices] } : {}),
        ...(plainDefault(o) ? { defaultDescription: plainDefault(o) } : {}),
        ...(k === 'help' ? { alias: 'h' } : {}),
      } satisfies Options,
    ]),
  );
}

/** Levenshtein distance: how many one-letter edits turn a into b. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    row = next;
  }
  return row[b.length]!;
}

/** The valid flag closest to a mistyped one, when it is close enough to be what was meant. */
export function nearestFlag(name: string, valid: readonly string[]): string | undefined {
  let best: { flag: string; d: number } | undefined;
  for (const flag of valid) {
    // A prefix either way (--target for --target-version, --data-directory for --data-dir) is close.
    const prefix = (flag.startsWith(name) && name.length >= 3) || (name.startsWith(flag) && flag.length >= 4);
    const d = prefix ? 0.5 : distance(name, flag);
    if (!best || d < best.d) best = { flag, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? best.flag : undefined;
}

/** Refuses the first flag not in `valid`, naming the nearest valid one. `where`: e.g. " for backup". */
/**
 * What every subcommand's parser shares: yargs never exits or prints on its own, and a parse error
 * is one UsageError line that names the command's help.
 */
export function subcommandParser<T>(y: Argv<T>, command: string): Argv<T> {
  return y
    .parserConfiguration({ 'camel-case-expansion': true, 'duplicate-arguments-array': false, 'strip-aliased': true })
    .version(false)
    .help()
    .alias('help', 'h')
    .exitProcess(false)
    .fail((msg, err) => {
      throw new UsageError(`${err?.message ?? msg}; see etcd-migrate ${command} --help`);
    });
}

export function refuseUnknown(
  parsed: Record<string, unknown>,
  valid: readonly string[],
  help: string,
  where = '',
): void {
  const known = new Set(['_', '$0', 'h', ...valid]);
  const unknown = Object.keys(parsed)
    .map(kebab)
    .find((k) => !known.has(k));
  if (unknown === undefined) return;
  const near = nearestFlag(
    unknown,
    valid.filter((v) => v.length > 1),
  );
  const hint = near ? `did you mean --${near}? ` : '';
  throw new UsageError(`unknown flag --${unknown}${where}; ${hint}see ${help}`);
}

/** A --log-level that is none (cli.ts reads the level before parsing and refuses LOG_LEVEL's). */
export function refuseLevel(value: string | undefined): void {
  if (value !== undefined && !OPTIONS['log-level'].choices.includes(value as never)) {
    throw new UsageError(`--log-level ${value} is not a level: use debug, info, warn or error`);
  }
}

/** --log-format and --log-level, which every command takes, as yargs takes them. */
export const LOG_OPTIONS = Object.fromEntries(
  Object.entries(
    yargsOptions({
      'log-format': OPTIONS['log-format'],
      'log-level': OPTIONS['log-level'],
    }),
  ).map(([k, { group: _, ...o }]) => [k, o]),
);

export function parseArgs(argv: readonly string[]): MainFlags {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? [...argv] : argv.slice(0, dash);
  const etcdArgs = dash === -1 ? undefined : argv.slice(dash + 1);
  // yargs' own parser, without yargs' help and layout machinery (slow to load; BENCHMARKS.md): this runs at
  // every pod start. The help text comes from yargs itself (printHelp), loaded only when asked.
  const byType = (t: string) =>
    Object.entries(OPTIONS)
      .filter(([, o]) => o.type === t)
      .map(([k]) => k);
  const a = parser(own, {
    string: byType('string'),
    number: byType('number'),
    boolean: byType('boolean'),
    alias: { help: ['h'] },
    configuration: { 'camel-case-expansion': true, 'duplicate-arguments-array': false, 'strip-aliased': true },
  });
  refuseUnknown(a, Object.keys(OPTIONS), 'etcd-migrate --help');
  if (a._.length) {
    const word = String(a._[0]);
    const command = nearestFlag(word, ['backup', 'restore', 'rehearse', 'help']);
    const hint = command ? `did you mean the command ${command}? ` : '';
    throw new UsageError(`unexpected argument "${word}"; ${hint}etcd flags go after --, see etcd-migrate --help`);
  }
  const flags: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(OPTIONS)) {
    const v: unknown = a[camel(k)];
    const boolean = v as boolean | undefined;
    flags[camel(k)] = o.type === 'number' ? num(v, `--${k}`) : o.type === 'boolean' ? boolean : str(v);
  }
  for (const flag of ['output', 'log-format'] as const) {
    const value = flags[camel(flag)] as string | undefined;
    if (value !== undefined && value !== 'text' && value !== 'json') {
      throw new UsageError(`--${flag} ${value} is not a format: use --${flag} json or --${flag} text`);
    }
  }
  refuseLevel(flags.logLevel as string | undefined);
  return { ...flags, etcdArgs, help: a.help === true || own.includes('--help') || own.includes('-h') } as MainFlags;
}

/** The static pod form first: it is how the image runs this tool. */
const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  [
    '$0 --data-dir /var/etcd/data --target-version 3.5.30 -- --name m1 --listen-client-urls http://127.0.0.1:2379 ...',
    "a static pod's command: migrate the data dir to 3.5.30, then exec etcd 3.5.30 with the flags after --",
  ],
  [
    'DATA_DIRECTORY=/var/etcd/data TARGET_VERSION=3.5.30 $0 -- <etcd flags>',
    "the same, set by Kubernetes' etcd image variables",
  ],
  ['$0 --data-dir /var/etcd/data --target-version 3.5.30 --dry-run', 'print the plan; change nothing'],
  ['$0 --data-dir /var/etcd/data --target-version 3.5.30 --dry-run --output json', 'the plan as JSON, for scripts'],
  ['$0 --version --bin-dir /usr/local/bin', "this tool's version and the etcd versions it can run"],
  ['$0 help backup', 'the help of a subcommand: backup, restore, rehearse'],
];

/** The main command's help, laid out by yargs from the option table: groups, then examples. */
export async function helpText(): Promise<string> {
  const { default: yargs } = await import('yargs');
  return (
    yargs([])
      .scriptName('etcd-migrate')
      .usage(
        '$0 [options] [-- <etcd flags>]\n\nMigrates the etcd data dir to the target version and storage, ' +
          'one minor at a time, then execs the target etcd with the flags after --.',
      )
      .options(yargsOptions(OPTIONS))
      .example(EXAMPLES.map(([c, d]) => [c, d]))
      .epilogue(
        'Commands: etcd-migrate backup, restore and rehearse; ' +
          "etcd-migrate help <command> shows each one's help.\n" +
          'Exit codes: 0 done; 2 bad input, nothing changed; 1 a step failed (version.txt says where the data is); ' +
          `${INTERNAL_ERROR_EXIT} an internal error (a bug).`,
      )
      // yargs lists its own help and version options with their table text (it never parses here).
      .help('help', describeOption(OPTIONS.help))
      .alias('help', 'h')
      .version('version', describeOption(OPTIONS.version), '')
      .wrap(Math.min(120, process.stdout.columns || 100))
      .getHelp()
  );
}
