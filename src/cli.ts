// The entry: argv + env in, exit code out. The only module that ends the process.
import os from 'node:os';
import { parseArgs, printHelp } from './args.ts';
import { isCommand } from './commands/names.ts';
import { isUserFacing } from './errors.ts';
import { execTarget } from './exec.ts';
import { runInterruptHooks } from './interrupt.ts';
import { stderrLog } from './log.ts';
import type { Install } from './steps/index.ts';
import { migrate } from './migrate.ts';
import { resolveOptions } from './options.ts';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, install: Install): Promise<number> {
  if (argv[0] === 'rehearse') {
    const rf = (await import('./rehearse-args.ts')).parseRehearseArgs(argv);
    const { rehearse } = await import('./rehearse.ts');
    return rf.help ? 0 : rehearse(rf, env, { log: stderrLog, out: (t) => process.stdout.write(t), install });
  }
  // Subcommands load only when asked for: the pod start path stays small.
  if (isCommand(argv[0])) return (await import('./commands/index.ts')).runCommand(argv, { env, log: stderrLog, print: (l) => process.stdout.write(`${l}\n`), hostname: os.hostname() });
  const flags = parseArgs(argv);
  if (flags.help) {
    await printHelp();
    return 0;
  }
  const opts = resolveOptions(flags, env, { hostname: os.hostname() });
  await migrate(opts, { env, log: stderrLog, install }, opts.etcdArgs !== undefined);
  if (opts.etcdArgs && !opts.dryRun) {
    stderrLog(`exec etcd ${opts.target.version.major}.${opts.target.version.minor}.${opts.target.version.patch} (pid ${process.pid})`);
    execTarget(opts, env);
  }
  return 0;
}

/** How long an interrupted command may take to remove its files before the process exits. */
const INTERRUPT_CLEANUP_MS = 20_000;

/** `install`: this program's own files (see main.ts). */
export async function run(install: Install): Promise<never> {
  // As a container's PID 1, Node gets no default action for SIGTERM: without these handlers a pod
  // deleted mid-migration would wait out its grace period. Exiting stops the temporary etcd (execa
  // kills its children on exit); version.txt and the swap journal make the rerun resume.
  // A command holding files no one else may see (a plaintext snapshot) removes them first; a second
  // signal ends the process at once. The handlers stay installed while the removal runs: execa's
  // signal-exit re-raises a signal that has no other listener, which would end the process first.
  let stopping = false;
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(code);
      stopping = true;
      stderrLog(`${signal}: stopping; the next run resumes from version.txt`);
      void runInterruptHooks(INTERRUPT_CLEANUP_MS).finally(() => process.exit(code));
    });
  }
  let code: number;
  try {
    code = await main(process.argv.slice(2), process.env, install);
  } catch (e) {
    if (isUserFacing(e)) {
      stderrLog(`error: ${e.message}`);
      code = e.exitCode;
    } else {
      stderrLog(`internal error: ${(e as Error)?.message ?? String(e)} (a bug: please report it with ETCD_MIGRATE_DEBUG=1 output)`);
      if (process.env.ETCD_MIGRATE_DEBUG) console.error(e);
      code = 1;
    }
  }
  process.exit(code);
}
