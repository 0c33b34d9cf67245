// Issue 15: what 3.6 and 3.7 need from the data and the flags, with the real binaries.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBinaries } from '../helpers/env.ts';
import { dumpKeys, startEtcd } from '../helpers/etcd.ts';
import { makeV3Data } from '../helpers/data.ts';
import { migrate, NAME } from '../helpers/matrix.ts';
import { treeSnapshot } from '../helpers/cli.ts';
import { request } from '../../src/etcd/client/probe.ts';
import { readV2Content } from '../../src/inspect/v2content.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

/** 3.5.30 data with v2 keys written through --enable-v2 (in the WAL: 3.5's default snapshot count). */
async function withCustomV2(dir: string): Promise<void> {
  await makeV3Data('3.5.30', dir, NAME, 3);
  const m = await startEtcd('3.5.30', dir, { name: NAME, extraArgs: ['--enable-v2=true'] });
  for (const k of ['/apps/a', '/apps/b', '/flannel/network/config', '/x']) {
    const r = await request(m.endpoint, 'PUT', `/v2/keys${k}`, 'value=secret-value');
    expect(r.status).toBe(201);
  }
  await m.stop();
}

describe('etcd 3.6 and 3.7 with the real binaries', () => {
  it("3.7 never meets 3.5 v2 requests after the WAL's last snapshot: 3.6 seals data reaching it unsealed", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const { keys } = await makeV3Data('3.5.36', dir, NAME, 5);
    // 3.6 with etcd's defaults (not this tool's sealed 3.6 step) leaves 3.5's entries after the last snapshot.
    const m = await startEtcd('3.6.17', dir, { name: NAME });
    await m.stop();
    await fs.writeFile(path.join(dir, 'version.txt'), '3.6.17/etcd3');
    expect((await readV2Content(dir)).v2EntriesAfterSnapshot).toBeGreaterThan(0);

    const r = await migrate(dir, '3.7.3');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/etcd 3\.6\.17 sealed the WAL: \d+ v2 requests before its snapshot at index \d+/);
    expect((await readV2Content(dir)).v2EntriesAfterSnapshot).toBe(0);
    const m7 = await startEtcd('3.7.3', dir, { name: NAME });
    expect((await dumpKeys('3.7.3', m7.endpoint)).map((k) => k.key)).toEqual(keys.map((k) => k.key));
  });

  it('3.4 data whose /health was probed (WAL QGETs, on which 3.6 panics) is sealed by the 3.5 step first', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const { keys } = await makeV3Data('3.4.23', dir, NAME, 3);
    const m = await startEtcd('3.4.23', dir, { name: NAME });
    for (let i = 0; i < 3; i++) expect((await request(m.endpoint, 'GET', '/health')).body).toContain('true');
    await m.stop();
    expect((await readV2Content(dir)).walRequests.map((r) => r.method)).toContain('QGET');
    const r = await migrate(dir, '3.6.17');
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readV2Content(dir)).walRequests).toEqual([]);
    const m6 = await startEtcd('3.6.17', dir, { name: NAME });
    expect((await dumpKeys('3.6.17', m6.endpoint)).map((k) => k.key)).toEqual(keys.map((k) => k.key));
  });

  it('the 3.6 step seals the WAL itself: no v2 request is left after its last snapshot', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.5.30', dir, NAME, 3);
    expect((await readV2Content(dir)).v2EntriesAfterSnapshot).toBeGreaterThan(0);
    const r = await migrate(dir, '3.6.17');
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readV2Content(dir)).v2EntriesAfterSnapshot).toBe(0);
  });

  it('refuses custom v2 content before 3.6 (count, keys), changing nothing; --drop-v2-content drops it', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await withCustomV2(dir);
    const before = await treeSnapshot(dir);
    const r = await migrate(dir, '3.6.17');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      joinedRegex(
        /the v2 store holds custom content, which etcd 3\.6 refuses: /,
        /4 v2 writes in the WAL \(PUT \/apps\/a, PUT \/apps\/b, PUT \/flannel\/network\/config, \.\.\.\); /,
        /.*--drop-v2-content.*nothing was changed/,
      ),
    );
    expect(r.stderr).not.toContain('secret-value');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readdir(path.dirname(dir))).toEqual(['data']);

    const dropped = await migrate(dir, '3.7.3', ['--drop-v2-content']);
    expect(dropped.exitCode, dropped.stderr).toBe(0);
    expect(dropped.stderr).toMatch(/drop v2 content 3\.5\.36\/etcd3/);
    const m = await startEtcd('3.7.3', dir, { name: NAME });
    expect((await dumpKeys('3.7.3', m.endpoint)).map((k) => k.key)).toHaveLength(6);
  });

  it("refuses flags the target or a step's etcd refuses, before any change, naming what replaces them", async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.5.30', dir, NAME, 1);
    const before = await treeSnapshot(dir);
    const pod = await migrate(dir, '3.7.3', ['--', '--experimental-initial-corrupt-check=true']);
    expect(pod.exitCode).toBe(2);
    expect(pod.stderr).toMatch(
      joinedRegex(
        /the etcd flag --experimental-initial-corrupt-check \(after --\) is refused by etcd 3\.7\.3, the target: /,
        /.*use --feature-gates=InitialCorruptCheck=true/,
      ),
    );
    const creds = await migrate(dir, '3.6.17', [], { ETCD_CREDS: '--enable-v2=true' });
    expect(creds.exitCode).toBe(2);
    expect(creds.stderr).toMatch(
      /ETCD_CREDS has --enable-v2, which etcd 3\.6\.17 \(a step of this migration\) refuses: .*drop --enable-v2/,
    );
    const gate = await migrate(dir, '3.6.17', [], { ETCD_CREDS: '--feature-gates=InitialCorruptCheck=true' });
    expect(gate.exitCode).toBe(2);
    expect(gate.stderr).toMatch(
      /ETCD_CREDS has --feature-gates, which etcd 3\.5\.36 \(a step of this migration\) refuses/,
    );
    const env = await migrate(dir, '3.7.3', ['--', '--name', NAME], {
      ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: 'true',
    });
    expect(env.exitCode).toBe(2);
    expect(env.stderr).toMatch(
      joinedRegex(
        /the pod's variable ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK is etcd's /,
        /.*use --feature-gates=InitialCorruptCheck=true/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('a 3.6 target without a 3.5.26 or newer in the bundle is refused, nothing changed', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.5.16', dir, NAME, 1);
    const before = await treeSnapshot(dir);
    const r = await migrate(dir, '3.6.17', [], { BUNDLED_VERSIONS: '3.5.16 3.6.17' });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /etcd 3\.6 needs 3\.5 at 3\.5\.26 or newer first, but the newest bundled 3\.5 is 3\.5\.16/,
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('a 3.5 older than 3.5.32 before 3.6 is said in the log', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.5.30', dir, NAME, 1);
    const r = await migrate(dir, '3.6.17', [], { BUNDLED_VERSIONS: '3.5.30 3.6.17' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      "etcd-migrate: warning: etcd 3.5.30 runs before 3.6; etcd's upgrade guide advises 3.5.32 or newer",
    );
  });
});
