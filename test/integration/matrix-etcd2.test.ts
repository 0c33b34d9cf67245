// Issue 15: etcd2 data converted to every bundled etcd3 version, and every etcd3 version rolled
// back to etcd2, with the real binaries: every key and value, and every TTL within 2 s (a rollback
// reads what is left of a lease, which etcd restarts in full when the reading etcd becomes leader).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBinaries } from '../helpers/env.ts';
import { dumpKeys, leaseTtl, startEtcd } from '../helpers/etcd.ts';
import { dumpV2, makeV2Data, makeV3Data } from '../helpers/data.ts';
import { BUNDLED, migrate, NAME } from '../helpers/matrix.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

/**
 * The etcd that serves the data next is the test's (--election-timeout 100): the tool is told, as a pod's env would.
 */
const NEXT_ETCD = { ETCD_ELECTION_TIMEOUT: '100' };

describe('etcd2 data to every bundled etcd3 version', () => {
  it.each(BUNDLED)(
    '3.3.25/etcd2 -> %s/etcd3: every key, value and TTL kept',
    async (to) => {
      const dir = path.join(await tmpDir(), 'data');
      const written = Date.now();
      const keys = await makeV2Data(dir, NAME);
      const r = await migrate(dir, to, [], NEXT_ETCD);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe(`${to}/etcd3`);
      const m = await startEtcd(to, dir, { name: NAME });
      const after = await dumpKeys(to, m.endpoint);
      expect(after.map((k) => [k.key, k.value])).toEqual(keys.map((k) => [k.key, k.value]).sort());
      for (const k of keys) {
        const lease = after.find((a) => a.key === k.key)!.lease;
        if (!k.ttl) {
          expect(lease, k.key).toBe('0');
          continue;
        }
        const left = k.ttl - (Date.now() - written) / 1000;
        expect(Math.abs((await leaseTtl(to, m.endpoint, lease)) - left), k.key).toBeLessThanOrEqual(2);
      }
    },
    120_000,
  );
});

describe('every bundled etcd3 version rolled back to etcd2', () => {
  it.each(BUNDLED)(
    '%s/etcd3 -> 3.3.25/etcd2: every key, value and TTL kept',
    async (from) => {
      const dir = path.join(await tmpDir(), 'data');
      const { keys, lease } = await makeV3Data(from, dir, NAME, 5);
      const started = Date.now();
      const r = await migrate(dir, '3.3.25', ['--target-storage', 'etcd2']);
      // etcd restarts a lease in full when it becomes leader: the rollback's reading etcd did, within this run.
      const runS = (Date.now() - started) / 1000;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd2');
      const m = await startEtcd('3.3.25', dir, { name: NAME });
      const v2 = await dumpV2(m.endpoint, '/registry');
      expect(v2.map((k) => [k.key, k.value])).toEqual(keys.map((k) => [k.key, k.value]));
      for (const k of v2) {
        const leased = keys.find((x) => x.key === k.key)!.lease === lease;
        if (leased) {
          expect(k.ttl, k.key).toBeLessThanOrEqual(600);
          expect(k.ttl, k.key).toBeGreaterThanOrEqual(600 - runS - 2);
        } else expect(k.ttl, k.key).toBeUndefined();
      }
    },
    120_000,
  );
});
