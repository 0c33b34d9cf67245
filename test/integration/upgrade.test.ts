// Issue 2's main path with the real binaries: 3.3.25 v3 data -> 3.4.23 -> 3.5.30, then exec.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, ENTRY, requireBinaries } from '../helpers/env.ts';
import { dumpKeys, etcdctl, grantLease, leaseTtl, startEtcd, type KeyValue } from '../helpers/etcd.ts';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { watchVersionFile } from '../helpers/watch.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

/** A data dir written by 3.3.25 through the v3 API: plain keys and keys on a lease. */
async function makeV3Data(dir: string): Promise<{ keys: KeyValue[]; lease: string }> {
  const m = await startEtcd('3.3.25', dir, { name: NAME });
  for (let i = 0; i < 20; i++)
    await etcdctl('3.3.25', m.endpoint, ['put', `/registry/pods/default/p${i}`, `{"pod":${i}}`]);
  const lease = await grantLease('3.3.25', m.endpoint, 600);
  for (let i = 0; i < 5; i++)
    await etcdctl('3.3.25', m.endpoint, ['put', `/registry/events/e${i}`, `event ${i}`, '--lease', lease]);
  const keys = await dumpKeys('3.3.25', m.endpoint);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd3');
  return { keys, lease };
}

describe('upgrade 3.3.25/etcd3 -> 3.5.30/etcd3 with real etcd', () => {
  it('steps through 3.4 and 3.5, advancing version.txt after each step, keeping keys and leases', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const { keys, lease } = await makeV3Data(dir);
    const port = await freePort();
    const peerPort = await freePort();

    // Watch version.txt while the migration runs: it must advance through 3.4.23 to 3.5.30.
    const watcher = watchVersionFile(dir);
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(port),
      '--peer-port',
      String(peerPort),
    ]);
    const seen = await watcher.stop();

    expect(r.stderr).toContain('step 1/2');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/2 upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: [\d.]+ s$/m);
    expect(r.stderr).toMatch(/step 2\/2 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/m);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
    expect(seen).toContain('3.4.23/etcd3');
    expect(seen.indexOf('3.4.23/etcd3')).toBeLessThan(seen.indexOf('3.5.30/etcd3'));

    // The data now runs on 3.5.30 (an older minor refuses it) with every key, value and lease.
    const refused = await execa(
      path.join(BIN_DIR, 'etcd-3.4.23'),
      [
        '--data-dir',
        dir,
        '--name',
        NAME,
        '--listen-client-urls',
        `http://127.0.0.1:${port}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${port}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-cluster',
        `${NAME}=http://127.0.0.1:${peerPort}`,
      ],
      { reject: false, timeout: 20_000 },
    );
    expect(refused.stderr).toMatch(/cluster cannot be downgraded/);

    const m = await startEtcd('3.5.30', dir, { name: NAME });
    const after = await dumpKeys('3.5.30', m.endpoint);
    const strip = (k: KeyValue[]) =>
      k.map(({ key, value, lease: l, modRevision }) => ({ key, value, lease: l, modRevision }));
    expect(strip(after)).toEqual(strip(keys));
    expect(after.filter((k) => k.lease === lease)).toHaveLength(5);
    const ttl = await leaseTtl('3.5.30', m.endpoint, lease);
    expect(ttl).toBeGreaterThan(0);
  });

  it('--dry-run prints the plan and changes no byte', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data(dir);
    const before = await treeSnapshot(dir);
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--dry-run',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
      '--',
      '--name',
      NAME,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('1. upgrade 3.3.25/etcd3 -> 3.4.23/etcd3');
    expect(r.stdout).toContain('2. upgrade 3.4.23/etcd3 -> 3.5.30/etcd3');
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('execs the target etcd with the user flags and the entrypoint PID, and it serves the data', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const { keys } = await makeV3Data(dir);
    const [port, peerPort, clientPort, realPeer] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${realPeer}`;
    const proc = execa(
      process.execPath,
      [
        ENTRY,
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        BIN_DIR,
        '--name',
        NAME,
        '--port',
        String(port),
        '--peer-port',
        String(peerPort),
        '--',
        '--name',
        NAME,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `${NAME}=${peer}`,
      ],
      // ETCD_NAME would clash with --name in etcd ("conflicting environment variable"): the entrypoint drops it.
      {
        reject: false,
        env: { ETCD_NAME: NAME, ETCD_DATA_PREFIX: '/registry' },
        extendEnv: true,
        all: true,
        stdin: 'ignore',
      },
    );
    onCleanup(async () => {
      proc.kill('SIGKILL');
      await proc;
    });

    let served: KeyValue[] | undefined;
    for (let i = 0; i < 300 && !served; i++) {
      served = await dumpKeys('3.5.30', client).catch(() => undefined);
      if (!served) await new Promise((r) => setTimeout(r, 50));
    }
    expect(served?.map((k) => k.key)).toEqual(keys.map((k) => k.key));
    const exe = await fs.readlink(`/proc/${proc.pid}/exe`);
    expect(exe).toBe(path.join(BIN_DIR, 'etcd-3.5.30'));
    const cmdline = (await fs.readFile(`/proc/${proc.pid}/cmdline`, 'utf8')).split('\0');
    expect(cmdline).toContain('--data-dir');
    expect(cmdline).toContain(client);

    proc.kill('SIGTERM');
    const r = await proc;
    expect(r.signal === 'SIGTERM' || r.exitCode === 143 || r.exitCode === 0).toBe(true);
    expect(r.all).toContain('exec etcd 3.5.30');
  });

  it('a missing data dir gets version.txt = target and nothing else', async () => {
    const dir = path.join(await tmpDir(), 'new');
    const r = await runCli(['--data-dir', dir, '--target-version', '3.4.23', '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await fs.readdir(dir)).toEqual(['version.txt']);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
  });

  it('a patch change needs no step: version.txt is updated, the data untouched', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data(dir);
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.20/etcd3');
    const before = await treeSnapshot(path.join(dir, 'member'));
    const r = await runCli(['--data-dir', dir, '--target-version', '3.3.25', '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('nothing to migrate');
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd3');
    expect(await treeSnapshot(path.join(dir, 'member'))).toEqual(before);
  });
});
