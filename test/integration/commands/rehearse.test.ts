// etcd-migrate rehearse with the local binaries (--engine none): a copy is migrated and checked,
// the original is only read. The same inside the image: test/image/image.test.ts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { makeV2Data, makeV3Data } from '../../helpers/data.ts';
import { BIN_DIR, requireBinaries } from '../../helpers/env.ts';
import { startEtcd } from '../../helpers/etcd.ts';
import { freePort, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

async function rehearse(dir: string, work: string, extra: string[], bin = BIN_DIR) {
  return runCli([
    'rehearse',
    '--data-dir',
    dir,
    '--engine',
    'none',
    '--bin-dir',
    bin,
    '--name',
    NAME,
    '--work-dir',
    work,
    '--port',
    String(await freePort()),
    '--peer-port',
    String(await freePort()),
    ...extra,
  ]);
}

describe('etcd-migrate rehearse (local binaries)', () => {
  it('migrates a copy of 3.3.25 data to 3.5.30, reports plan, step times, key counts; original untouched', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const { keys } = await makeV3Data('3.3.25', dir, NAME);
    const before = await treeSnapshot(dir);
    const work = await tmpDir();
    const r = await rehearse(dir, work, ['--target-version', '3.5.30']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('ran in: the local etcd binaries');
    expect(r.stdout).toContain('plan: 3.3.25/etcd3 -> 3.5.30/etcd3: 2 step(s)');
    expect(r.stdout).toMatch(/1\. upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: .*\[\d+\.\d\d s\]/);
    expect(r.stdout).toMatch(/2\. upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: .*\[\d+\.\d\d s\]/);
    expect(r.stdout).toContain(`before: etcd 3.3.25, etcd3: ${keys.length} v3 keys;`);
    expect(r.stdout).toContain(`after:  etcd 3.5.30, etcd3: ${keys.length} v3 keys, 1 lease;`);
    expect(r.stdout).toContain(
      `result: ok: etcd 3.5.30 served the migrated copy with every key (${keys.length} before, ${keys.length} after)`,
    );
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readdir(work)).toEqual([]);
  });

  it('--keep leaves the migrated copy; --json gives the same facts as data', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.3.25', dir, NAME, 5);
    const work = await tmpDir();
    const r = await rehearse(dir, work, ['--target-version', '3.4.23', '--keep', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as {
      result: string;
      host: { copy: string; kept: boolean };
      before: { v3Keys: number };
      after: { v3Keys: number };
    };
    expect(rep).toMatchObject({ result: 'ok', host: { kept: true }, before: { v3Keys: 8 }, after: { v3Keys: 8 } });
    expect(path.dirname(path.dirname(rep.host.copy))).toBe(work);
    expect(await fs.readFile(path.join(rep.host.copy, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd3');
  });

  it('a step that fails is reported as FAILED with exit code 1, and the original is untouched', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.3.25', dir, NAME, 3);
    const before = await treeSnapshot(dir);
    const bin = await tmpDir();
    for (const v of ['3.3.25', '3.5.30'])
      await fs.symlink(path.join(BIN_DIR, `etcd-${v}`), path.join(bin, `etcd-${v}`));
    await fs.writeFile(path.join(bin, 'etcd-3.4.23'), '#!/bin/sh\necho "broken etcd" >&2\nexit 3\n', { mode: 0o755 });
    const work = await tmpDir();
    const r = await rehearse(dir, work, ['--target-version', '3.5.30'], bin);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/1\. upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: .*\[FAILED\]/);
    expect(r.stdout).toMatch(/2\. upgrade .*\[not run\]/);
    expect(r.stdout).toMatch(
      joinedRegex(
        /result: failed: step 1\/2 \(upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: .*\) failed: /,
        /etcd 3\.4\.23 exited before a write committed \(exit code 3\)/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readdir(work)).toEqual([]);
  });

  it('counts v2 keys and their TTLs for etcd2 data', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = await makeV2Data(dir, NAME);
    const r = await rehearse(dir, await tmpDir(), ['--target-version', '3.3.25', '--target-storage', 'etcd2']);
    expect(r.exitCode, r.stderr).toBe(0);
    const ttl = keys.filter((k) => k.ttl).length;
    expect(r.stdout).toContain('plan: 3.3.25/etcd2 -> 3.3.25/etcd2: nothing to migrate');
    expect(r.stdout).toContain(`before: etcd 3.3.25, etcd2: ${keys.length} v2 keys (${ttl} with a TTL)`);
    expect(r.stdout).toContain(`after:  etcd 3.3.25, etcd2: ${keys.length} v2 keys (${ttl} with a TTL)`);
  });

  it('refuses a data dir that a running etcd holds, before copying anything', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.3.25', dir, NAME, 2);
    await startEtcd('3.3.25', dir, { name: NAME });
    const work = await tmpDir();
    const r = await rehearse(dir, work, ['--target-version', '3.5.30']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /error: a process \(etcd\?\) holds .* open: a copy of a live data dir is not consistent; stop it first/,
    );
    expect(await fs.readdir(work)).toEqual([]);
  });

  it('refuses --already-copied on a data dir that rehearse did not copy', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.3.25', dir, NAME, 2);
    const before = await treeSnapshot(dir);
    const r = await rehearse(dir, await tmpDir(), ['--target-version', '3.5.30', '--already-copied']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--already-copied is only for the copy that rehearse makes');
    expect(await treeSnapshot(dir)).toEqual(before);
  });
});
