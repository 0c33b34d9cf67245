// etcdctl as a tool on a stopped member's data: `migrate` converts the v2 store into v3 keys (3.0-3.4 only).
import { execa } from 'execa';
import { ProcessError } from '../errors.ts';
import { childEnv } from './env.ts';

const MIGRATE_TIMEOUT_MS = 60 * 60_000;

/**
 * `ETCDCTL_API=3 etcdctl migrate --data-dir <dir>`, offline. It writes every v2 key into the v3
 * store with its v2 modifiedIndex as revision and drops the TTLs (see etcd-facts). It hangs if an
 * etcd holds the dir; the caller makes sure none does.
 */
export async function migrateV2ToV3(etcdctl: string, dataDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const args = ['migrate', '--data-dir', dataDir];
  const r = await execa(etcdctl, args, {
    reject: false, all: true, stdin: 'ignore', timeout: MIGRATE_TIMEOUT_MS,
    env: { ...childEnv(env, args, 'ETCDCTL_'), ETCDCTL_API: '3' }, extendEnv: false,
  });
  if (r.exitCode !== 0 || r.timedOut) {
    const tail = String(r.all ?? '').trim().split('\n').slice(-5).join('\n  ');
    const why = r.timedOut ? `did not finish in ${MIGRATE_TIMEOUT_MS / 60_000} min` : `failed (exit code ${r.exitCode})`;
    throw new ProcessError(`${etcdctl} migrate ${why}; its last lines:\n  ${tail}`, { command: etcdctl, exitCode: r.exitCode, signal: r.signal, output: String(r.all ?? '') });
  }
}
