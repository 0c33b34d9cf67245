// Data dirs for the backup, restore and downgrade tests (a compacted history, leases), and bin dirs with one binary
// replaced.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BIN_DIR } from './env.ts';
import { dumpKeys, etcdctl, grantLease, startEtcd, type KeyValue } from './etcd.ts';
import { tmpDir } from './tmp.ts';

export interface HistoryData {
  keys: KeyValue[];
  lease: string;
  revision: number;
}

/**
 * Plain keys, keys on a 600 s lease, an overwritten and a deleted key (so the revision is not the
 * key count), history compacted, written by etcd `version`; version.txt says `version`/etcd3.
 */
export async function makeHistoryData(version: string, dir: string, name: string): Promise<HistoryData> {
  const m = await startEtcd(version, dir, { name });
  for (let i = 0; i < 12; i++)
    await etcdctl(version, m.endpoint, ['put', `/registry/pods/default/p${i}`, `{"pod":${i}}`]);
  await etcdctl(version, m.endpoint, ['put', '/registry/pods/default/p0', '{"pod":"changed"}']);
  await etcdctl(version, m.endpoint, ['del', '/registry/pods/default/p11']);
  // Compacted history, as every Kubernetes etcd has (the API server compacts every 5 minutes).
  const compactAt =
    Number(
      /"revision":(\d+)/.exec((await etcdctl(version, m.endpoint, ['endpoint', 'status', '-w', 'json'])).stdout)![1],
    ) - 2;
  await etcdctl(version, m.endpoint, ['compact', String(compactAt)]);
  const lease = await grantLease(version, m.endpoint, 600);
  for (let i = 0; i < 4; i++)
    await etcdctl(version, m.endpoint, ['put', `/registry/events/e${i}`, `event ${i}`, '--lease', lease]);
  const keys = await dumpKeys(version, m.endpoint);
  const status = await etcdctl(version, m.endpoint, ['endpoint', 'status', '-w', 'json']);
  const revision = Number(/"revision":(\d+)/.exec(status.stdout)![1]);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), `${version}/etcd3`);
  return { keys, lease, revision };
}

/**
 * A bin dir like BIN_DIR, every binary a symlink to the real one, except `scripts`: name -> a sh
 * script body, in which $REAL is the real binary it stands in for.
 */
export async function fixtureBinDir(scripts: Record<string, string>): Promise<string> {
  const dir = path.join(await tmpDir('etcd-migrate-bin-'), 'bin');
  await fs.mkdir(dir);
  for (const name of await fs.readdir(BIN_DIR)) {
    if (name.startsWith('.')) continue;
    const real = path.join(BIN_DIR, name);
    if (scripts[name] !== undefined) {
      await fs.writeFile(path.join(dir, name), `#!/bin/sh\nREAL=${real}\n${scripts[name]}\n`, { mode: 0o755 });
    } else await fs.symlink(real, path.join(dir, name));
  }
  return dir;
}

/** The revision and key count etcd `version` serves on `dir` (started and stopped here). */
export async function served(
  version: string,
  dir: string,
  name: string,
): Promise<{ keys: KeyValue[]; revision: number; members: string }> {
  const m = await startEtcd(version, dir, { name });
  const keys = await dumpKeys(version, m.endpoint);
  const status = await etcdctl(version, m.endpoint, ['endpoint', 'status', '-w', 'json']);
  const members = (await etcdctl(version, m.endpoint, ['member', 'list'])).stdout;
  await m.stop();
  return { keys, revision: Number(/"revision":(\d+)/.exec(status.stdout)![1]), members };
}

/** File mode bits. */
export async function modeOf(p: string): Promise<number> {
  return (await fs.stat(p)).mode & 0o777;
}
