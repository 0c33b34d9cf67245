// The version matrix (issue 15): every bundled version, and one migration of a small data dir
// between two of them with the real binaries, checked key by key afterwards.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { BIN_DIR } from './env.ts';
import { dumpKeys, leaseTtl, startEtcd, type KeyValue } from './etcd.ts';
import { makeV3Data } from './data.ts';
import { runCli } from './cli.ts';
import { freePort, tmpDir } from './tmp.ts';

/** What make etcd-bin installs: Debian's builds, then 3.5.36, 3.6.17 and 3.7.3 from etcd's Go modules. */
export const BUNDLED = ['3.3.25', '3.4.23', '3.5.16', '3.5.30', '3.5.36', '3.6.17', '3.7.3'];

export const NAME = 'm1';
const LEASE_TTL = 600;

export const pairs = (keep: (from: string, to: string) => boolean): Array<[string, string]> =>
  BUNDLED.flatMap((from) =>
    BUNDLED.filter((to) => to !== from && keep(from, to)).map((to): [string, string] => [from, to]),
  );

export const older = (a: string, b: string): boolean =>
  a
    .split('.')
    .map(Number)
    .reduce((c, x, i) => c || x - Number(b.split('.')[i]), 0) < 0;

export async function migrate(dir: string, target: string, extra: string[] = [], env: Record<string, string> = {}) {
  return runCli(
    [
      '--data-dir',
      dir,
      '--target-version',
      target,
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
      ...extra,
    ],
    env,
    { timeoutMs: 180_000 },
  );
}

const strip = (keys: KeyValue[]) =>
  keys.map(({ key, value, lease, modRevision }) => ({ key, value, lease, modRevision }));

/**
 * v3 data written by `from` (keys, 3 of them on a lease of 600 s), migrated to `to`: every key,
 * value, lease and mod revision kept, the lease's TTL within 2 s of its full length (etcd restarts
 * a lease when it becomes leader), version.txt = to.
 */
export async function checkV3Pair(from: string, to: string): Promise<void> {
  const dir = path.join(await tmpDir(), 'data');
  const { keys, lease } = await makeV3Data(from, dir, NAME, 5);
  const r = await migrate(dir, to);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe(`${to}/etcd3`);
  const m = await startEtcd(to, dir, { name: NAME });
  expect(strip(await dumpKeys(to, m.endpoint))).toEqual(strip(keys));
  const ttl = await leaseTtl(to, m.endpoint, lease);
  expect(ttl).toBeGreaterThanOrEqual(LEASE_TTL - 2);
  expect(ttl).toBeLessThanOrEqual(LEASE_TTL);
  await m.stop();
}
