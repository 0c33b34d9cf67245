// Runs the entrypoint as users do: a separate process, Node 24, argv and env.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { ENTRY } from './env.ts';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  o: { timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await execa(process.execPath, [ENTRY, ...args], {
    reject: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    extendEnv: false,
    timeout: o.timeoutMs ?? 120_000,
    stdin: 'ignore',
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Names, modes, sizes and content hashes of every entry under dir: equal snapshots mean nothing changed. */
export async function treeSnapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(p: string, rel: string) {
    const st = await fs.lstat(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out.push(`d ${rel} ${mode}`);
      for (const e of (await fs.readdir(p)).sort()) await walk(path.join(p, e), path.join(rel, e));
    } else if (st.isFile()) {
      const h = crypto
        .createHash('sha256')
        .update(await fs.readFile(p))
        .digest('hex');
      out.push(`f ${rel} ${mode} ${st.size} ${h}`);
    } else out.push(`o ${rel} ${mode}`);
  }
  await walk(dir, '.');
  return out;
}
