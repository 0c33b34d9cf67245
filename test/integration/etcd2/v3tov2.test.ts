// Issue 3: rollback 3.4.23/etcd3 -> 3.3.25/etcd2 (TARGET_STORAGE=etcd2): every key under the data
// prefix, its value and its remaining TTL, served by the v2 API afterwards; protobuf data refused.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../../helpers/env.ts';
import { startEtcd } from '../../helpers/etcd.ts';
import { k8sDataSet, writeV3, type DataKey } from '../../helpers/k8sdata.ts';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { counted, figure } from '../../../src/log.ts';
import { backupId } from '../../../src/backup/retention.ts';
import { freePort, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';
const KEYS = 10_000;
const OUTSIDE: DataKey[] = [
  { key: '/other/a', value: 'x' },
  { key: '/registryfoo', value: 'y' },
];

async function makeV3Data(dir: string, keys: readonly DataKey[]): Promise<void> {
  const m = await startEtcd('3.4.23', dir, { name: NAME });
  await writeV3(m.endpoint, keys);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.4.23/etcd3');
}

async function rollback(dir: string, env: Record<string, string> = {}) {
  return runCli(
    [
      '--data-dir',
      dir,
      '--target-version',
      '3.3.25',
      '--target-storage',
      'etcd2',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ],
    env,
  );
}

interface V2Node {
  key: string;
  value?: string;
  dir?: boolean;
  expiration?: string;
  nodes?: V2Node[];
}

/** Every key of a v2 store through the v2 API, with its expiry (ms) if it has a TTL. */
async function v2Keys(endpoint: string): Promise<Map<string, { value: string; expires?: number }>> {
  const r = await fetch(`${endpoint}/v2/keys/?recursive=true`);
  const out = new Map<string, { value: string; expires?: number }>();
  const visit = (n: V2Node) => {
    if (n.dir) (n.nodes ?? []).forEach(visit);
    else out.set(n.key, { value: n.value ?? '', expires: n.expiration ? Date.parse(n.expiration) : undefined });
  };
  visit(((await r.json()) as { node: V2Node }).node);
  return out;
}

describe('rollback etcd3 -> etcd2', () => {
  it(`rolls back ${KEYS} k8s-like keys 3.4.23/etcd3 -> 3.3.25/etcd2: same data, TTLs within 2 s`, async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(KEYS);
    await makeV3Data(dir, [...keys, ...OUTSIDE]);

    const started = Date.now();
    const r = await rollback(dir, { LOG_LEVEL: 'debug' });
    const ended = Date.now();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        'step 1/1 roll back 3\\.4\\.23/etcd3 -> 3\\.3\\.25/etcd2: ' +
          `${counted(keys.length, 'key')} \\(${figure(keys.filter((k) => k.ttl).length)} with a TTL\\), ` +
          '2 keys outside /registry/ left out, [\\d.]+ s$',
        'm',
      ),
    );
    expect(r.stderr).toContain(
      `read ${keys.length} keys under /registry/ (${keys.filter((k) => k.ttl).length} on a lease); ` +
        '2 keys outside /registry/ are not rolled back',
    );
    const report = joinedRegex(
      /before \(v3, under \/registry\/\): (keys=\S+ ttl-keys=\S+ kv=\S+ ttl=\S+); /,
      /after \(v2\): (keys=\S+ ttl-keys=\S+ kv=\S+ ttl=\S+)/,
    ).exec(r.stderr);
    expect(report, r.stderr).not.toBeNull();
    expect(report![2]).toBe(report![1]);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd2');

    const m = await startEtcd('3.3.25', dir, { name: NAME });
    const got = await v2Keys(m.endpoint);
    expect([...got].map(([k, v]) => [k, v.value]).sort()).toEqual(keys.map((k) => [k.key, k.value]).sort());

    // etcd gives a lease its full TTL again whenever it starts, so the rollback, which starts etcd
    // 3.4.23 on the data, reads each lease's full TTL: the key must end that TTL after a moment
    // during the rollback, give or take 2 s. Keys without a lease get no TTL.
    for (const k of keys) {
      const e = got.get(k.key)!.expires;
      if (k.ttl === undefined) expect(e, k.key).toBeUndefined();
      else {
        expect(e, k.key).toBeGreaterThanOrEqual(started + k.ttl * 1000 - 2000);
        expect(e, k.key).toBeLessThanOrEqual(ended + k.ttl * 1000 + 2000);
      }
    }

    // A short TTL ends when due.
    const short = keys.filter((k) => k.ttl !== undefined && k.ttl < 60);
    const due = Math.max(...short.map((k) => got.get(k.key)!.expires!));
    expect(due - Date.now(), 'the short keys must outlive the rollback for this check').toBeGreaterThan(2000);
    let left: string[] = [];
    do {
      await new Promise((res) => setTimeout(res, 250));
      const now = await v2Keys(m.endpoint);
      left = short.filter((k) => now.has(k.key)).map((k) => k.key);
      expect(now.size).toBe(keys.length - short.length + left.length);
    } while (left.length && Date.now() < due + 2000);
    expect(left).toEqual([]);
  }, 120_000);

  it('refuses Kubernetes protobuf data, leaving the data dir byte-identical', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(200);
    keys.splice(100, 0, { key: '/registry/pods/ns-1/proto', value: 'k8s\0\n\x02v1\x12\x03Pod' });
    await makeV3Data(dir, keys);
    // An older backup of this data dir, and room for one: a refusal writes no backup and deletes none.
    const older = path.join(
      `${dir}.backups`,
      `${backupId(await fs.realpath(dir))}-20200101T000000000Z-3.4.23-etcd3.backup`,
    );
    await fs.mkdir(path.dirname(older), { mode: 0o700 });
    await fs.writeFile(older, 'older', { mode: 0o600 });
    const before = await treeSnapshot(dir);
    const r = await rollback(dir, { KEEP_BACKUPS: '1' });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /error: the value of "\/registry\/pods\/ns-1\/proto" is Kubernetes protobuf .*nothing was changed/,
    );
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

  it.each([
    ['an empty name (//)', '/registry/pods//p', /the key "\/registry\/pods\/\/p" has an empty name in its path/],
    ['a hidden name', '/registry/pods/_p', /the key "\/registry\/pods\/_p" has a name starting with _ in its path/],
    [
      'a key that is also a directory',
      '/registry/pods/ns-1',
      joinedRegex(
        /the key "\/registry\/pods\/ns-1" is also a directory in etcd2 /,
        /\(the key "\/registry\/pods\/ns-1\/pod-\d+" is under it\)/,
      ),
    ],
  ])(
    'refuses a key etcd2 cannot hold (%s) before the target etcd runs, naming it, changing nothing',
    async (_what, key, message) => {
      const dir = path.join(await tmpDir(), 'data');
      await makeV3Data(dir, [...k8sDataSet(100), { key, value: '{"kind":"Pod"}' }]);
      const before = await treeSnapshot(dir);
      const r = await rollback(dir);
      expect(r.exitCode, r.stderr).toBe(2);
      const errors = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('etcd-migrate: error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
      expect(errors[0]).toMatch(/nothing was changed\. Rename or delete/);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(errors[0]);
      expect(await treeSnapshot(dir)).toEqual(before);
    },
  );
});
