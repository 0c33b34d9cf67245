// Replace this process with the target etcd: same PID, so etcd gets the signals and sets the exit code.
import { binPath } from './bundled-versions.ts';
import { childEnv } from './etcd/process/env.ts';
import { flagValue, type Options } from './options.ts';

export function targetCommand(
  opts: Options,
  env: NodeJS.ProcessEnv,
): { file: string; args: string[]; env: Record<string, string> } {
  const file = binPath(opts.binDir, 'etcd', opts.target.version);
  const args = [...(opts.etcdArgs ?? [])];
  if (flagValue(args, 'data-dir') === undefined) args.push('--data-dir', opts.dataDir);
  return { file, args, env: childEnv(env, args) };
}

export function execTarget(opts: Options, env: NodeJS.ProcessEnv): never {
  const { file, args, env: childenv } = targetCommand(opts, env);
  process.execve!(file, [file, ...args], childenv);
  throw new Error('process.execve returned');
}
