// Running etcdctl and etcdutl: the output on success, a ProcessError with their last lines otherwise.
import { execa } from 'execa';
import { binPath, type Tool } from '../../bundled-versions.ts';
import { ProcessError } from '../../errors.ts';
import { compareMinor, type Version } from '../../version.ts';
import path from 'node:path';
import { lastLines } from '../../log.ts';

const TAIL = 5;

/**
 * The environment for etcdctl against a temporary etcd: the caller's, minus every ETCDCTL_*
 * (an ETCDCTL_ENDPOINTS or ETCDCTL_USER meant for the real cluster must not apply), with API v3.
 */
export function ctlEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !k.startsWith('ETCDCTL_')) out[k] = v;
  out.ETCDCTL_API = '3';
  return out;
}

/** etcdutl took over the offline snapshot commands (status, restore) in 3.5; 3.6 removed them from etcdctl. */
export function offlineTool(v: Version): Tool {
  return compareMinor(v, { major: 3, minor: 5, patch: 0 }) >= 0 ? 'etcdutl' : 'etcdctl';
}

export async function runTool(
  binDir: string,
  tool: Tool,
  v: Version,
  args: string[],
  env: Record<string, string>,
  what: string,
  timeoutMs = 3_600_000,
): Promise<string> {
  const bin = binPath(binDir, tool, v);
  const r = await execa(bin, args, {
    reject: false,
    env,
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    timeout: timeoutMs,
  });
  if (r.exitCode === 0 && !r.signal) return String(r.stdout);
  const lines = String(r.all ?? '')
    .split('\n')
    .filter(Boolean);
  const shown = lastLines(path.basename(bin), lines.slice(-TAIL));
  const how = r.timedOut
    ? ` (no answer in ${timeoutMs / 1000} s)`
    : r.signal
      ? ` (signal ${r.signal})`
      : ` (exit code ${r.exitCode})`;
  throw new ProcessError(`${what} failed: ${bin}${how}`, {
    command: bin,
    exitCode: r.exitCode,
    signal: r.signal,
    output: lines.join('\n'),
    shown,
  });
}
