// What --version prints about this tool: its version and the commit it was built from.
import { execFileSync, type ExecFileSyncOptionsWithStringEncoding } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

// Set by scripts/build.mjs (esbuild's define); absent when the sources run directly (bin/etcd-migrate.js).
declare const ETCD_MIGRATE_VERSION: string | undefined;
declare const ETCD_MIGRATE_COMMIT: string | undefined;

export interface About {
  version: string;
  commit: string;
}

export function about(): About {
  if (typeof ETCD_MIGRATE_VERSION === 'string' && typeof ETCD_MIGRATE_COMMIT === 'string') {
    return { version: ETCD_MIGRATE_VERSION, commit: ETCD_MIGRATE_COMMIT };
  }
  // The in-repo sources: the repo's package.json and git, read now.
  const repo = path.resolve(import.meta.dirname, '..');
  const { version } = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
  let commit = 'unknown';
  try {
    const git: ExecFileSyncOptionsWithStringEncoding = {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    };
    commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], git).trim();
  } catch {
    // No git or not a checkout: the version alone.
  }
  return { version, commit };
}
