// etcdctl as a tool on a stopped member's data: `migrate` converts the v2 store into v3 keys (3.0-3.4 only).
import { execa } from 'execa';
import path from 'node:path';
import { ProcessError } from '../errors.ts';
import { childEnv, TEMPORARY_MARK } from '../etcd/process/env.ts';
import { lastLines } from '../log.ts';

const MIGRATE_TIMEOUT_MS = 60 * 60_000;

/**
 * `ETCDCTL_API=3 etcdctl migrate --data-dir <dir> --transformer <program>`, offline. It rebuilds the
 * v2 store from the snapshot and the WAL, hands every node to the transformer and writes the records
 * it sends back into the v3 store (see etcd2/convert/transform.ts); by itself it drops the TTLs (see
 * etcd-facts). It hangs if an etcd holds the dir; the caller makes sure none does. Returns its output.
 */
export async function migrateV2ToV3(
  etcdctl: string,
  dataDir: string,
  transformer: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const args = ['migrate', '--data-dir', dataDir, '--transformer', transformer];
  const r = await execa(etcdctl, args, {
    reject: false,
    all: true,
    stdin: 'ignore',
    timeout: MIGRATE_TIMEOUT_MS,
    env: { ...childEnv(env, args, 'ETCDCTL_'), ETCDCTL_API: '3', [TEMPORARY_MARK]: '1' },
    extendEnv: false,
  });
  if (r.exitCode !== 0 || r.timedOut) {
    const shown = lastLines(
      path.basename(etcdctl),
      String(r.all ?? '')
        .trim()
        .split('\n')
        .filter(Boolean)
        .slice(-5),
    );
    const why = r.timedOut
      ? `did not finish in ${MIGRATE_TIMEOUT_MS / 60_000} min`
      : `failed (exit code ${r.exitCode})`;
    throw new ProcessError(`${etcdctl} migrate ${why}`, {
      command: etcdctl,
      exitCode: r.exitCode,
      signal: r.signal,
      output: String(r.all ?? ''),
      shown,
    });
  }
  return String(r.all ?? '');
}
