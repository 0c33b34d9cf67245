// A data dir without version.txt: the entrypoint reports what the data records (bbolt's
// clusterVersion, the v2 store's /0/version, whether v3 keys exist) and proceeds only on
// --assume-current-version that agrees with it. Real data from real etcd.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { etcdctl, startEtcd } from '../helpers/etcd.ts';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';
import { readDbEvidence, readEvidence } from '../../src/inspect/evidence.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

async function data(version: string, api: 'v2' | 'v3'): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  const m = await startEtcd(version, dir, { name: 'm1' });
  if (api === 'v3') await etcdctl(version, m.endpoint, ['put', '/registry/a', '1']);
  else await fetch(`${m.endpoint}/v2/keys/registry/a`, { method: 'PUT', body: new URLSearchParams({ value: '1' }) });
  await m.stop();
  return dir;
}

const run = async (dir: string, extra: string[] = []) =>
  runCli([
    '--data-dir',
    dir,
    '--target-version',
    '3.5.30',
    '--bin-dir',
    BIN_DIR,
    '--name',
    'm1',
    '--port',
    String(await freePort()),
    '--peer-port',
    String(await freePort()),
    ...extra,
  ]);

describe('data without version.txt', () => {
  it.each([
    ['3.3.25', '3.3'],
    ['3.4.23', '3.4'],
    ['3.5.30', '3.5'],
  ])('reads the cluster version of %s data from bbolt', async (v, minor) => {
    const ev = await readEvidence(await data(v, 'v3'));
    expect(ev).toEqual({ clusterVersion: { minor, from: 'member/snap/db' }, v3Keys: true });
  });

  it('reports what 3.4 data shows, suggests the flag, changes nothing', async () => {
    const dir = await data('3.4.23', 'v3');
    const before = await treeSnapshot(dir);
    const r = await run(dir);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      joinedRegex(
        /^etcd-migrate: error: .* holds data but no version\.txt; /,
        /the data shows cluster version 3\.4 \(from member\/snap\/db\), v3 keys present \(etcd3 storage\); /,
        /if that is right, pass --assume-current-version 3\.4\.23\/etcd3/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('sees etcd2 storage: v2 keys only', async () => {
    const dir = await data('3.3.25', 'v2');
    const r = await run(dir);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      joinedRegex(
        /the data shows cluster version 3\.3 \(from member\/snap\/db\), no v3 keys \(etcd2 storage, or no data\); /,
        /if that is right, pass --assume-current-version 3\.3\.25\/etcd2/,
      ),
    );
  });

  it('refuses an assumption the data contradicts', async () => {
    const dir = await data('3.4.23', 'v3');
    const before = await treeSnapshot(dir);
    const minor = await run(dir, ['--assume-current-version', '3.3.25/etcd3']);
    expect(minor.exitCode).toBe(2);
    expect(minor.stderr).toMatch(
      /--assume-current-version 3\.3\.25\/etcd3 contradicts the data: the data shows cluster version 3\.4/,
    );
    const storage = await run(dir, ['--assume-current-version', '3.4.23/etcd2']);
    expect(storage.exitCode).toBe(2);
    expect(storage.stderr).toMatch(/contradicts the data: .*v3 keys present.*pass 3\.4\.23\/etcd3/);
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('migrates on an assumption that agrees, and records version.txt', async () => {
    const dir = await data('3.4.23', 'v3');
    const r = await run(dir, ['--assume-current-version', '3.4.23/etcd3']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/1 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/m);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
  });
});

describe('version.txt against what the data records', () => {
  const withVersion = async (version: string, api: 'v2' | 'v3', file: string) => {
    const dir = await data(version, api);
    await fs.writeFile(path.join(dir, 'version.txt'), file);
    return dir;
  };

  it('refuses etcd2 storage for v3-only data, with both facts, changing nothing', async () => {
    const dir = await withVersion('3.4.23', 'v3', '3.4.23/etcd2');
    const before = await treeSnapshot(dir);
    const r = await run(dir);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr.trim()).toMatch(
      joinedRegex(
        /^etcd-migrate: error: \S+\/version\.txt says 3\.4\.23\/etcd2, but the data is in etcd3 storage: /,
        /member\/snap\/db holds v3 keys and the v2 store none; nothing was changed; /,
        /if the data is right, write 3\.4\.23\/etcd3 into version\.txt$/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('refuses a minor the recorded cluster version contradicts, above or below, naming both; no change', async () => {
    const dir = await withVersion('3.4.23', 'v3', '3.3.25/etcd3');
    const before = await treeSnapshot(dir);
    // One minor above, with a target below it: no interrupted upgrade towards it explains that.
    const above = await run(dir, ['--target-version', '3.3.25']);
    expect(above.exitCode, above.stderr).toBe(2);
    expect(above.stderr.trim()).toMatch(
      new RegExp(
        '^etcd-migrate: error: \\S+/version\\.txt says 3\\.3\\.25/etcd3, but the data ' +
          'records cluster version 3\\.4 \\(member/(snap/db|wal/[0-9a-f-]+\\.wal)\\), above 3\\.3; ' +
          'nothing was changed; ' +
          'write the version the data was last run with into version\\.txt \\(its minor is 3\\.4\\)$',
      ),
    );
    await fs.writeFile(path.join(dir, 'version.txt'), '3.5.30/etcd3');
    const below = await run(dir);
    expect(below.exitCode, below.stderr).toBe(2);
    expect(below.stderr).toMatch(
      /says 3\.5\.30\/etcd3, but the data records cluster version 3\.4 \(member\/\S+\), below 3\.5/,
    );
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd3');
    expect(await treeSnapshot(dir)).toEqual(before);
    // Two minors above: no run leaves that, whatever the target.
    const two = await withVersion('3.5.30', 'v3', '3.3.25/etcd3');
    const twoAbove = await run(two);
    expect(twoAbove.exitCode, twoAbove.stderr).toBe(2);
    expect(twoAbove.stderr).toMatch(
      /says 3\.3\.25\/etcd3, but the data records cluster version 3\.5 \(member\/\S+\), above 3\.3/,
    );
  });

  it('accepts one minor above if the target needs it: an upgrade step killed before version.txt had it', async () => {
    const dir = await withVersion('3.4.23', 'v3', '3.3.25/etcd3');
    const r = await run(dir, ['--target-version', '3.4.23']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/1 upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: [\d.]+ s$/m);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
  });

  it('accepts one minor below for a cluster member after its last rolling upgrade step; v2 data as etcd2', async () => {
    const dir = await withVersion('3.4.23', 'v3', '3.5.30/etcd3');
    const r = await run(dir, [
      '--initial-cluster',
      `m1=http://127.0.0.1:${await freePort()},m2=http://127.0.0.1:${await freePort()}`,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/3\.5\.30\/etcd3: nothing to migrate/);
    const v2 = await withVersion('3.3.25', 'v2', '3.3.25/etcd2');
    const same = await runCli([
      '--data-dir',
      v2,
      '--target-version',
      '3.3.25',
      '--target-storage',
      'etcd2',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(same.exitCode, same.stderr).toBe(0);
  });

  it(
    'accepts a snapshot restored for an older minor on a cluster member, whose bbolt still records the newer one',
    { timeout: 120_000 },
    async () => {
      const root = await tmpDir();
      const m = await startEtcd('3.5.30', path.join(root, 'src'), { name: 'm1' });
      await etcdctl('3.5.30', m.endpoint, ['put', '/registry/a', '1']);
      await etcdctl('3.5.30', m.endpoint, ['snapshot', 'save', path.join(root, 'snap.db')]);
      await m.stop();
      const dir = path.join(root, 'data');
      const cluster = [
        '--name',
        'm1',
        '--initial-cluster',
        `m1=http://127.0.0.1:${await freePort()},m2=http://127.0.0.2:2380,m3=http://127.0.0.3:2380`,
      ];
      const peer = cluster[3]!.split(',')[0]!.slice(3);
      const restored = await runCli([
        'restore',
        path.join(root, 'snap.db'),
        '--data-dir',
        dir,
        '--target-version',
        '3.4.23',
        '--bin-dir',
        BIN_DIR,
        ...cluster,
        '--initial-advertise-peer-urls',
        peer,
      ]);
      expect(restored.exitCode, restored.stderr).toBe(0);
      expect(readDbEvidence(dir).clusterVersion).toEqual({ minor: '3.5', from: 'member/snap/db' });
      const r = await runCli([
        '--data-dir',
        dir,
        '--target-version',
        '3.4.23',
        '--bin-dir',
        BIN_DIR,
        ...cluster,
        '--initial-advertise-peer-urls',
        peer,
        '--listen-peer-urls',
        peer,
        '--port',
        String(await freePort()),
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/3\.4\.23\/etcd3: nothing to migrate for 3\.4\.23\/etcd3/);
    },
  );
});
