// Crash safety with real etcd: kills at random moments converge on rerun; a leftover etcd (or
// etcdctl migrate) from a killed run is stopped; the exec'd etcd keeps the lock so no second migration runs under it.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, ENTRY, requireBinaries } from '../helpers/env.ts';
import { dumpKeys, etcdctl, grantLease, startEtcd, type KeyValue } from '../helpers/etcd.ts';
import { runCli } from '../helpers/cli.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';
import { checkStorage, copier, torture } from '../helpers/torture.ts';
import { k8sDataSet } from '../helpers/k8sdata.ts';
import { checkTtls, makeV2Data, range } from '../helpers/ttl.ts';
import { findLeftoverEtcds } from '../../src/etcd/process/leftovers.ts';

beforeAll(requireBinaries);

async function v3Data(dir: string): Promise<KeyValue[]> {
  const m = await startEtcd('3.3.25', dir, { name: 'm1' });
  const lease = await grantLease('3.3.25', m.endpoint, 3600);
  for (let i = 0; i < 10; i++) await etcdctl('3.3.25', m.endpoint, ['put', `/registry/pods/p${i}`, `pod ${i}`]);
  for (let i = 0; i < 3; i++)
    await etcdctl('3.3.25', m.endpoint, ['put', `/registry/events/e${i}`, `ev ${i}`, '--lease', lease]);
  const keys = await dumpKeys('3.3.25', m.endpoint);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd3');
  return keys;
}

/** 20 kills at moments spanning a whole uninterrupted run (measured first) of pristine -> 3.5.30. */
async function torture20(pristine: string, root: string, check?: typeof checkStorage) {
  const freshDataDir = copier(pristine, root);
  const [port, peerPort] = [await freePort(), await freePort()];
  const args = (dir: string) => [
    '--data-dir',
    dir,
    '--target-version',
    '3.5.30',
    '--bin-dir',
    BIN_DIR,
    '--name',
    'm1',
    '--port',
    String(port),
    '--peer-port',
    String(peerPort),
  ];
  const t0 = Date.now();
  const full = await runCli(args(await freshDataDir()));
  expect(full.exitCode, full.stderr).toBe(0);
  const seed = Number(process.env.TORTURE_SEED ?? Date.now() % 100000);
  return { r: await torture({ freshDataDir, args, kills: 20, seed, maxDelayMs: Date.now() - t0, check }), seed };
}

describe('crash safety', () => {
  it(
    'converges after 20 SIGKILLs at random moments of 3.3.25 -> 3.5.30, version.txt always true',
    { timeout: 240_000 },
    async () => {
      const root = await tmpDir();
      const pristine = path.join(root, 'pristine');
      const keys = await v3Data(pristine);
      const { r, seed } = await torture20(pristine, root);
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.kills).toBe(20);
      expect(r.orphans).toBe(5);
      expect(r.converged, `seed ${seed}`).toBe(true);
      const dir = r.lastDataDir;
      expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
      const m = await startEtcd('3.5.30', dir, { name: 'm1' });
      const after = await dumpKeys('3.5.30', m.endpoint);
      expect(after.map((k) => [k.key, k.value, k.lease])).toEqual(keys.map((k) => [k.key, k.value, k.lease]));
    },
  );

  it(
    'converges after 20 SIGKILLs at random moments of 3.3.25/etcd2 with TTLs -> 3.5.30/etcd3: keys, values, TTLs kept',
    { timeout: 400_000 },
    async () => {
      const root = await tmpDir();
      const pristine = path.join(root, 'pristine');
      const keys = k8sDataSet(200);
      const expiries = await makeV2Data(pristine, keys, 'm1');
      const { r, seed } = await torture20(pristine, root, checkStorage);
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.kills).toBe(20);
      expect(r.converged, `seed ${seed}`).toBe(true);
      const dir = r.lastDataDir;
      expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
      // etcd's default election timeout, as the exec'd etcd of a pod has and as the attach step allows for.
      // A key due within etcd's own shortest lease cannot end sooner: a lease lasts at least 1.5 election
      // timeouts (2 s) after etcd becomes leader, plus the election timeout it adds then (docs/etcd2.md, "How
      // close"); those keys are judged by the live/dead checks below, not by their lease's end.
      const judgeFrom = Date.now() + 3000;
      const m = await startEtcd('3.5.30', dir, {
        name: 'm1',
        extraArgs: ['--heartbeat-interval', '100', '--election-timeout', '1000'],
      });
      const { after, wrongLease, errors } = await checkTtls(m.endpoint, keys, expiries, judgeFrom);
      const now = Date.now();
      const byKey = new Map(after.map((k) => [k.key, k]));
      // Every key that has not expired is there with its value; every key that has is gone (2 s either way is not
      // judged).
      const live = keys.filter((k) => k.ttl === undefined || expiries.get(k.key)! > now + 2000);
      const dead = keys.filter((k) => k.ttl !== undefined && expiries.get(k.key)! < now - 2000);
      expect(live.filter((k) => byKey.get(k.key)?.value !== k.value).map((k) => k.key)).toEqual([]);
      expect(dead.filter((k) => byKey.has(k.key)).map((k) => k.key)).toEqual([]);
      expect(wrongLease).toEqual([]);
      console.log(
        `etcd2 torture: ${r.kills} kills (${r.orphans} orphaning etcd) over ${r.episodes} copies in ${r.runs} runs, ` +
          `seed ${seed}; TTL error ${range(errors)}`,
      );
      expect(Math.max(...errors.map(Math.abs))).toBeLessThanOrEqual(2);
    },
  );

  it('SIGTERM during a step stops the temporary etcd too, and a rerun completes', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await v3Data(dir);
    const args = [
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
    ];
    const proc = execa(process.execPath, [ENTRY, ...args], { reject: false, stdin: 'ignore' });
    // Wait until the temporary etcd runs on the data dir, then stop the entrypoint as kubelet would.
    let etcdPid: number | undefined;
    for (let i = 0; i < 500 && !etcdPid; i++) {
      etcdPid = (await findLeftoverEtcds(dir, proc.pid))[0]?.pid;
      if (!etcdPid) await new Promise((r) => setTimeout(r, 5));
    }
    expect(etcdPid).toBeDefined();
    proc.kill('SIGTERM');
    const r = await proc;
    expect(r.exitCode === 143 || r.signal === 'SIGTERM').toBe(true);
    for (let i = 0; i < 200 && (await findLeftoverEtcds(dir, proc.pid)).length; i++)
      await new Promise((res) => setTimeout(res, 10));
    expect(await findLeftoverEtcds(dir, proc.pid)).toEqual([]);
    const again = await runCli(args);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
  });

  it('stops an etcd that a killed run left on the data dir, then migrates', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await v3Data(dir);
    // A temporary etcd of a killed run: this tool's mark in its environment (src/etcd/process/env.ts).
    const orphan = await startEtcd('3.3.25', dir, { name: 'm1', env: { ETCDMIGRATE_TEMPORARY: '1' } });
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.4.23',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopping etcd pid \d+ on .*, left by an interrupted run/);
    expect(
      await etcdctl('3.3.25', orphan.endpoint, ['endpoint', 'health'], { reject: false }).then((x) => x.exitCode),
    ).not.toBe(0);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
  });

  it('stops an etcdctl (a migrate) that a killed run left in the work area, then migrates', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await v3Data(dir);
    // A stand-in with etcdctl's name and a migrate's arguments (a lifecycle case: what it does does not matter).
    const orphan = execa(
      'bash',
      [
        '-c',
        `exec -a ${BIN_DIR}/etcdctl-3.3.25 "$0" -e "setInterval(() => {}, 1000)" ` +
          `-- migrate --data-dir ${dir}/.etcd-migrate/new --transformer x`,
        process.execPath,
      ],
      { reject: false, env: { ETCDMIGRATE_TEMPORARY: '1' } },
    );
    onCleanup(async () => {
      orphan.kill('SIGKILL');
      await orphan;
    });
    for (let i = 0; i < 200 && !(await findLeftoverEtcds(dir)).some((l) => l.tool === 'etcdctl'); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(await findLeftoverEtcds(dir)).toEqual([
      { pid: orphan.pid, tool: 'etcdctl', dataDir: path.join(dir, '.etcd-migrate', 'new') },
    ]);
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.4.23',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopping etcdctl pid \d+ on .*\.etcd-migrate\/new, left by an interrupted run/);
    expect((await orphan).signal).toBe('SIGTERM');
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
  });

  it("the exec'd etcd keeps the lock: a second entrypoint refuses and changes nothing", async () => {
    const dir = path.join(await tmpDir(), 'data');
    await v3Data(dir);
    const client = `http://127.0.0.1:${await freePort()}`;
    const peer = `http://127.0.0.1:${await freePort()}`;
    const first = execa(
      process.execPath,
      [
        ENTRY,
        '--data-dir',
        dir,
        '--target-version',
        '3.4.23',
        '--bin-dir',
        BIN_DIR,
        '--name',
        'm1',
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
        '--',
        '--name',
        'm1',
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `m1=${peer}`,
      ],
      { reject: false, stdin: 'ignore' },
    );
    onCleanup(async () => {
      first.kill('SIGTERM');
      await first;
    });
    for (let i = 0; i < 200; i++) {
      if ((await etcdctl('3.4.23', client, ['endpoint', 'health'], { reject: false })).exitCode === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const second = await runCli([
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
    ]);
    expect(second.exitCode).toBe(2);
    expect(second.stderr).toMatch(
      new RegExp(`etcd \\(pid ${first.pid}, etcd-3\\.4\\.23\\) is running on .*; stop it before migrating its data`),
    );
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
    first.kill('SIGTERM');
    await first;
    // etcd gone: its lock is stale and the next run takes it over.
    const third = await runCli([
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
    ]);
    expect(third.exitCode, third.stderr).toBe(0);
  });
});
