// The entry: argv + env in, exit code out. The only module that ends the process.
import { fstatSync } from 'node:fs';
import os from 'node:os';
import { helpText, parseArgs, type MainFlags } from './args.ts';
import { isCommand } from './commands/names.ts';
import { INTERNAL_ERROR_EXIT, isUserFacing } from './errors.ts';
import { execTarget } from './exec.ts';
import { runInterruptHooks } from './interrupt.ts';
import { logSettingsOf, makeLog, stderrLog, writeWhole, type Log, type LogFormat } from './log.ts';
import { progressReporter, sharedTerminal, type StartProgress, type Terminal } from './progress.ts';
import type { Install } from './steps/index.ts';
import { migrate } from './migrate.ts';
import { DEFAULT_BIN_DIR, resolveOptions } from './options.ts';
import { fmt } from './version.ts';

export type Print = (text: string) => void;

/** Straight to fd 1, like the log to fd 2: whole before an exec or exit, without loading streams. */
export const stdoutPrint: Print = (text) => writeWhole(1, text);

export async function main(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  install: Install,
  print: Print = stdoutPrint,
  log: Log = stderrLog,
  progress?: StartProgress,
): Promise<number> {
  // `etcd-migrate help [command]`: the same as `[command] --help`.
  if (argv[0] === 'help') {
    return main(argv[1] && argv[1] !== 'help' ? [argv[1], '--help'] : ['--help'], env, install, print, log, progress);
  }
  if (argv[0] === 'rehearse') {
    const rf = (await import('./commands/rehearse/args.ts')).parseRehearseArgs(argv);
    const { rehearse } = await import('./commands/rehearse/rehearse.ts');
    return rf.help ? 0 : rehearse(rf, env, { log, out: print, install });
  }
  // Subcommands load only when asked for: the pod start path stays small.
  if (isCommand(argv[0])) {
    const { runCommand } = await import('./commands/index.ts');
    return runCommand(argv, { env, log, progress, print: (l) => print(`${l}\n`), hostname: os.hostname() });
  }
  const flags = parseArgs(argv);
  if (flags.help) {
    print(`${await helpText()}\n`);
    return 0;
  }
  if (flags.version) {
    const report = await import('./report.ts');
    const r = await report.versionReport(flags.binDir ?? DEFAULT_BIN_DIR);
    print(flags.output === 'json' ? `${JSON.stringify(r)}\n` : report.versionText(r));
    return 0;
  }
  try {
    return await migrateAndExec(flags, env, install, print, { log, progress });
  } catch (e) {
    if (flags.output === 'json') {
      print((await import('./report.ts')).errorJson((e as Error)?.message ?? String(e), exitCode(e)));
    }
    throw e;
  }
}

async function migrateAndExec(
  flags: MainFlags,
  env: NodeJS.ProcessEnv,
  install: Install,
  print: Print,
  { log, progress }: { log: Log; progress?: StartProgress },
): Promise<number> {
  const opts = resolveOptions(flags, env, { hostname: os.hostname() });
  const outcome = await migrate(opts, { env, log, progress, install }, opts.etcdArgs !== undefined);
  const exec = opts.etcdArgs && !opts.dryRun ? `etcd ${fmt(opts.target.version)}` : null;
  // Only a dry run or JSON prints: a pod start's stdout is etcd's.
  if (opts.dryRun || flags.output === 'json') {
    const report = await import('./report.ts');
    print(
      flags.output === 'json'
        ? report.outcomeJson(outcome, { dryRun: opts.dryRun, exec })
        : report.planText(outcome, opts.target),
    );
  }
  if (exec) {
    log(`exec ${exec} (pid ${process.pid})`, { fields: { etcd: fmt(opts.target.version), pid: process.pid } });
    execTarget(opts, env);
  }
  return 0;
}

/** Bad input 2, a failed step 1, anything else is a bug and says so with its own code. */
export const exitCode = (e: unknown): number => (isUserFacing(e) ? e.exitCode : INTERNAL_ERROR_EXIT);

/**
 * stderr when it is a terminal and the log is text: progress is drawn there as a bar. Asked of fd 2
 * first: process.stderr would load the stream modules at every pod start (log.ts); a character device
 * that is not a terminal (/dev/null) has no columns and gets no bar.
 */
function stderrTerminal(format: LogFormat): Terminal | undefined {
  if (format !== 'text' || !charDevice(2) || !process.stderr.isTTY) return undefined;
  return { write: (text) => writeWhole(2, text), columns: process.stderr.columns };
}

function charDevice(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice();
  } catch {
    return false;
  }
}

/** How long an interrupted command may take to remove its files before the process exits. */
const INTERRUPT_CLEANUP_MS = 20_000;

/** `install`: this program's own files (see main.ts). */
export async function run(install: Install): Promise<never> {
  const argv = process.argv.slice(2);
  const settings = logSettingsOf(argv, process.env);
  const terminal = stderrTerminal(settings.format);
  // On a terminal a log line first clears a progress bar drawn there.
  const shared = terminal && sharedTerminal(terminal, makeLog(settings));
  const log = shared?.log ?? makeLog(settings);
  if (settings.bad) {
    log(`error: ${settings.bad}`);
    process.exit(2);
  }
  // As a container's PID 1, Node gets no default action for SIGTERM: without these handlers a pod
  // deleted mid-migration would wait out its grace period. Exiting stops the temporary etcd (execa
  // kills its children on exit); version.txt and the swap journal make the rerun resume.
  // A command holding files no one else may see (a plaintext snapshot) removes them first; a second
  // signal ends the process at once. The handlers stay installed while the removal runs: execa's
  // signal-exit re-raises a signal that has no other listener, which would end the process first.
  let stopping = false;
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(code);
      stopping = true;
      log(`${signal}: stopping; the next run resumes from version.txt`);
      void runInterruptHooks(INTERRUPT_CLEANUP_MS).finally(() => process.exit(code));
    });
  }
  let code: number;
  try {
    const progress = progressReporter({ log, tty: shared?.tty });
    code = await main(argv, process.env, install, stdoutPrint, log, progress);
  } catch (e) {
    code = exitCode(e);
    if (isUserFacing(e)) {
      log(`error: ${e.message}`);
    } else {
      log(
        `internal error: ${(e as Error)?.message ?? String(e)} ` +
          '(a bug: please report it with ETCD_MIGRATE_DEBUG=1 output)',
      );
      if (process.env.ETCD_MIGRATE_DEBUG) console.error(e);
    }
  }
  process.exit(code);
}
