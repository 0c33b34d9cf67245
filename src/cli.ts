// The entry: argv + env in, exit code out. The only module that ends the process.
import os from 'node:os';
import { parseArgs, parseRehearseArgs } from './args.ts';
import { isUserFacing } from './errors.ts';
import { execTarget } from './exec.ts';
import { stderrLog } from './log.ts';
import { migrate } from './migrate.ts';
import { resolveOptions } from './options.ts';
import { rehearse } from './rehearse.ts';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'rehearse') {
    const rf = parseRehearseArgs(argv);
    return rf.help ? 0 : rehearse(rf, env, { log: stderrLog, out: (t) => process.stdout.write(t) });
  }
  const flags = parseArgs(argv);
  if (flags.help) return 0;
  const opts = resolveOptions(flags, env, { hostname: os.hostname() });
  await migrate(opts, { env, log: stderrLog }, opts.etcdArgs !== undefined);
  if (opts.etcdArgs && !opts.dryRun) {
    stderrLog(`exec etcd ${opts.target.version.major}.${opts.target.version.minor}.${opts.target.version.patch} (pid ${process.pid})`);
    execTarget(opts, env);
  }
  return 0;
}

export async function run(): Promise<never> {
  let code: number;
  try {
    code = await main(process.argv.slice(2), process.env);
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
