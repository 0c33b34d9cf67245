// The bundled etcd versions: binaries named etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z> in the bin dir.
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from './errors.ts';
import { errno } from './fsx.ts';
import { compare, fmt, tryParseVersion, type Version } from './version.ts';

export type Tool = 'etcd' | 'etcdctl' | 'etcdutl';

export const binPath = (binDir: string, tool: Tool, v: Version): string => path.join(binDir, `${tool}-${fmt(v)}`);

/** Every etcd-x.y.z in the bin dir, oldest first. */
export async function discoverBundled(binDir: string): Promise<Version[]> {
  let names: string[];
  try {
    names = await fs.readdir(binDir);
  } catch (e) {
    if (errno(e) === 'ENOENT')
      throw new UsageError(
        `the bin dir ${binDir} does not exist; pass --bin-dir with the directory holding etcd-<x.y.z> binaries`,
      );
    throw new UsageError(
      `the bin dir ${binDir} cannot be read (${errno(e) ?? String(e)}); pass --bin-dir with a readable directory`,
    );
  }
  const versions = names
    .map((n) => (n.startsWith('etcd-') ? tryParseVersion(n.slice(5)) : undefined))
    .filter((v): v is Version => v !== undefined)
    .sort(compare);
  if (versions.length === 0)
    throw new UsageError(
      `the bin dir ${binDir} holds no etcd-<x.y.z> binary; ` +
        'pass --bin-dir with the bundled versions, or install them (make etcd-bin)',
    );
  return versions;
}

/** Refuses, naming every one, when a needed binary is missing or not executable. */
export async function checkTools(
  binDir: string,
  needs: ReadonlyArray<{ tool: Tool; version: Version }>,
): Promise<void> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const { tool, version } of needs) {
    const p = binPath(binDir, tool, version);
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      const st = await fs.stat(p);
      if (!st.isFile()) problems.push(`${p} is not a file`);
      else await fs.access(p, constants.X_OK).catch(() => problems.push(`${p} is not executable (chmod +x it)`));
    } catch {
      problems.push(`${p} is missing`);
    }
  }
  if (problems.length) throw new UsageError(`the bin dir lacks what the plan needs: ${problems.join('; ')}`);
}
