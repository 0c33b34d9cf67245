// Issue 3: etcd2 storage (3.3.25, written through the v2 API) -> 3.5.30/etcd3 with every TTL kept.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../../helpers/env.ts';
import { dumpKeys, etcdctl, startEtcd } from '../../helpers/etcd.ts';
import { EMPTY_DIRS, k8sDataSet, writeV2, type DataKey } from '../../helpers/k8sdata.ts';
import { checkTtls, makeV2Data as makeV2DataAs, range } from '../../helpers/ttl.ts';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { backupId } from '../../../src/backup/retention.ts';
import { counted } from '../../../src/log.ts';
import { freePort, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';
const KEYS = 10_000;

const makeV2Data = (dir: string, keys: readonly DataKey[]) => makeV2DataAs(dir, keys, NAME);

/** Every v2 directory the data set makes: each key's ancestors and the empty ones. */
function v2Dirs(keys: readonly DataKey[]): number {
  const dirs = new Set<string>();
  for (const p of [...keys.map((k) => path.posix.dirname(k.key)), ...EMPTY_DIRS]) {
    for (let d = p; d !== '/'; d = path.posix.dirname(d)) dirs.add(d);
  }
  return dirs.size;
}

/**
 * The etcd that serves the data next is the test's (helpers/etcd.ts: --election-timeout 100): the tool is told, as a
 * pod's env would. The checks behind each step's line are on its debug lines.
 */
const NEXT_ETCD = { ETCD_ELECTION_TIMEOUT: '100', LOG_LEVEL: 'debug' };

async function cli(dir: string, target: string, env: Record<string, string> = {}) {
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
    ],
    { ...NEXT_ETCD, ...env },
  );
}

describe('etcd2 -> etcd3 with every TTL kept', () => {
  it(`converts ${KEYS} k8s-like keys 3.3.25/etcd2 -> 3.5.30/etcd3: same data, TTLs within 2 s, v2 empty`, async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(KEYS);
    const expiries = await makeV2Data(dir, keys);

    const r = await cli(dir, '3.5.30');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        '^etcd-migrate: step 1/3 convert 3\\.3\\.25/etcd2 -> 3\\.3\\.25/etcd3: ' +
          `${counted(keys.length, 'key')}, ${counted(expiries.size, 'TTL')} pending, [\\d.]+ s$`,
        'm',
      ),
    );
    expect(r.stderr).toMatch(
      new RegExp(
        'etcdctl 3\\.3\\.25 migrate done in [\\d.]+ s ' +
          '\\(its db copied and the rest of the member dir linked first, in [\\d.]+ s\\): ' +
          `${keys.length} keys \\(${expiries.size} with a TTL\\) in ${v2Dirs(keys)} directories .*; ` +
          '0 keys were already due',
      ),
    );
    const report = joinedRegex(
      /before \(v2\): (keys=\S+ ttl-keys=\S+ kv=\S+ ttl=\S+) in \d+ dirs?; /,
      /after \(v3, TTLs pending\): (keys=\S+ ttl-keys=\S+ kv=\S+ ttl=\S+);/,
    ).exec(r.stderr);
    expect(report, r.stderr).not.toBeNull();
    expect(report![2]).toBe(report![1]);
    // The TTLs become leases last, with the target's etcd; the checksum then covers which keys have a lease.
    expect(r.stderr).toMatch(
      new RegExp(
        '^etcd-migrate: step 3/3 attach TTLs 3\\.4\\.23/etcd3 -> 3\\.5\\.30/etcd3: ' +
          `${counted(expiries.size, 'key')} on [\\d,]+ leases?, [\\d.]+ s$`,
        'm',
      ),
    );
    const attached = joinedRegex(
      /debug: step 3\/3: after: (keys=\S+ ttl-keys=\S+ kv=\S+ ttl=\S+); 0 keys expired since the conversion; /,
      /(\d+) keys on \d+ leases? \(granted ([\d.]+) s before the end of this step/,
    ).exec(r.stderr);
    expect(attached, r.stderr).not.toBeNull();
    expect(attached![1]).toBe(report![1]);
    expect(Number(attached![2])).toBe(expiries.size);
    console.log(`leases granted ${attached![3]} s before the end of the attach step`);
    // The new member's v2 store holds the cluster version (etcd 3.3 may otherwise take 4 s to decide it).
    expect(r.stderr).toMatch(
      /snapshot restore of that db, beside the check: .*; cluster version 3\.3\.0 recorded in it/,
    );
    // The keyspace was still as the conversion left it (the 3.4 upgrade wrote no key): read from the db, not through
    // etcd.
    expect(r.stderr).toMatch(
      /every key and value read offline from the db before etcd started and checked first in [\d.]+ s/,
    );
    await expect(fs.access(path.join(dir, '.etcd-migrate.pending-ttls'))).rejects.toThrow();
    expect(r.stderr).not.toContain('custom');
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');

    // etcd 3.5.30 on the data at once, as a pod's exec starts it (every lease restarts in full when
    // an etcd starts: time spent here before it would make every lease that much later), and run as
    // 3.6 will (--v2-deprecation=write-only refuses to start on custom v2 content).
    const m = await startEtcd('3.5.30', dir, { name: NAME, extraArgs: ['--v2-deprecation=write-only'] });

    // Same keys and values; a lease exactly on the keys that had a TTL.
    const { after, wrongLease, errors } = await checkTtls(m.endpoint, keys, expiries);
    expect(after.map((k) => [k.key, k.value]).sort()).toEqual(keys.map((k) => [k.key, k.value]).sort());
    expect(wrongLease).toEqual([]);
    // No other lease: the one the attach step's timed pass used was revoked once empty.
    const listed = (await etcdctl('3.5.30', m.endpoint, ['lease', 'list'])).stdout.split('\n').slice(1).filter(Boolean);
    expect(listed.length).toBe(new Set(after.filter((k) => k.lease && k.lease !== '0').map((k) => k.lease)).size);

    // Every TTL within 2 s of what v2 said (each lease's end measured to within a few ms).
    expect(errors).toHaveLength(expiries.size);
    console.log(`TTL error from ${range(errors)}`);
    expect(Math.max(...errors.map(Math.abs))).toBeLessThanOrEqual(2);

    // A short TTL ends when due (give or take the 2 s above, and etcd's 0.5 s revoke loop): the
    // short keys go, every other key stays.
    const short = keys.filter((k) => k.ttl !== undefined && k.ttl < 60);
    const due = Math.max(...short.map((k) => expiries.get(k.key)!));
    expect(due - Date.now(), 'the short keys must outlive the conversion for this check').toBeGreaterThan(2000);
    let left: string[] = [];
    do {
      await new Promise((res) => setTimeout(res, 250));
      const now = new Set((await dumpKeys('3.5.30', m.endpoint)).map((k) => k.key));
      left = short.filter((k) => now.has(k.key)).map((k) => k.key);
      expect(now.size).toBe(keys.length - short.length + left.length);
    } while (left.length && Date.now() < due + 3000);
    expect(left).toEqual([]);
    await m.stop();

    // The v2 store holds nothing of ours, in the newest .snap file: 3.5.30's own check.
    expect((await fs.readdir(path.join(dir, 'member/snap'))).some((f) => f.endsWith('.snap'))).toBe(true);
    const check = await execa(path.join(BIN_DIR, 'etcdutl-3.5.30'), ['check', 'v2store', '--data-dir', dir], {
      reject: false,
      all: true,
    });
    expect(check.all).toContain('No custom content found in v2store');
    expect(check.exitCode).toBe(0);
  }, 120_000);

  it('converts with ETCD_ENABLE_V2=false in the env (the conversion is offline; no etcd serves v2)', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV2Data(dir, k8sDataSet(200));
    const r = await cli(dir, '3.3.25', { ETCD_ENABLE_V2: 'false' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd3');
    // The attach follows the conversion on the db it restored (no etcd ran on it between): the
    // conversion's check of that key bucket stands for another read (in the 3.5.30 chain above, the
    // 3.4 upgrade's etcd wrote the db, and the attach read it again).
    expect(r.stderr).toMatch(/snapshot restore of that db, .*; its key bucket is the checked one, page for page/);
    expect(r.stderr).toMatch(
      /every key and value read by the conversion \(this db file, unchanged since\) and checked first in 0\.00 s/,
    );
  });

  it('skips keys due when etcd stopped (still in the v2 store: only a running leader expires them)', async () => {
    const base = await tmpDir();
    const keys = k8sDataSet(200);
    const short = Array.from({ length: 20 }, (_, i) => ({
      key: `/registry/events/ns-0/gone-${i}`,
      value: `{"i":${i}}`,
      ttl: 3,
    }));
    let dir = '';
    // The short keys must still be in the store when etcd stops (its leader deletes expired keys every
    // 500 ms): etcd is stopped right away. A stop that came too late is done again.
    for (let attempt = 0; ; attempt++) {
      dir = path.join(base, `data-${attempt}`);
      const m = await startEtcd('3.3.25', dir, { name: NAME });
      const written = await writeV2(m.endpoint, [...keys, ...short]);
      await m.stop();
      if (Date.now() < Math.min(...short.map((k) => written.get(k.key)!)) - 1000 || attempt === 4) break;
    }
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
    await new Promise((r) => setTimeout(r, 3500));

    const r = await cli(dir, '3.3.25');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        'migrate done in [\\d.]+ s \\(its db copied and the rest of the member dir linked first, in [\\d.]+ s\\): ' +
          `${keys.length} keys .*; 20 keys were already due and are not converted`,
      ),
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `step 1/2 convert .*: ${counted(keys.length, 'key')}, [\\d,]+ TTLs? pending, ` +
          '20 keys already due \\(not converted\\), [\\d.]+ s$',
        'm',
      ),
    );
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    const after = await dumpKeys('3.3.25', m.endpoint);
    await m.stop();
    expect(after.map((k) => k.key).sort()).toEqual(keys.map((k) => k.key).sort());
  });

  it('refuses etcd2 data whose v3 keyspace already holds keys, changing nothing', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV2Data(dir, k8sDataSet(200));
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    await etcdctl('3.3.25', m.endpoint, ['put', '/registry/v3-written', 'x']);
    await m.stop();
    // An older backup of this data dir, and room for one: a refusal writes no backup and deletes none.
    const older = path.join(
      `${dir}.backups`,
      `${backupId(await fs.realpath(dir))}-20200101T000000000Z-3.3.25-etcd2.backup`,
    );
    await fs.mkdir(path.dirname(older), { mode: 0o700 });
    await fs.writeFile(older, 'older', { mode: 0o600 });
    const before = await treeSnapshot(dir);
    const r = await cli(dir, '3.5.30', { KEEP_BACKUPS: '1' });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/also holds 1 key in etcd3 storage.*nothing was changed/);
    expect(await fs.readdir(path.dirname(older))).toEqual([path.basename(older)]);
    expect(r.stderr).toMatch(/the step refused before changing anything; its backup \S+ was removed/);
    // The refusal is one line, the last (the run's backup, taken before the step, is logged above it).
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('etcd-migrate: error:'));
    expect(errors).toHaveLength(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(errors[0]);
    expect(await treeSnapshot(dir)).toEqual(before);
  });
});
