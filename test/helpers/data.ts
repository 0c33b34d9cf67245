// Sample data dirs written by a real etcd: v3 keys (some on a lease), or v2 keys (some with a TTL).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { request } from '../../src/etcd/client/probe.ts';
import { dumpKeys, etcdctl, grantLease, startEtcd, type KeyValue } from './etcd.ts';

export interface V3Data {
  keys: KeyValue[];
  lease: string;
}

/** `count` keys under /registry/pods and 3 events on one lease, written by etcd `version`; version.txt set. */
export async function makeV3Data(version: string, dir: string, name: string, count = 20): Promise<V3Data> {
  const m = await startEtcd(version, dir, { name });
  for (let i = 0; i < count; i++)
    await etcdctl(version, m.endpoint, ['put', `/registry/pods/default/p${i}`, `{"pod":${i}}`]);
  const lease = await grantLease(version, m.endpoint, 600);
  for (let i = 0; i < 3; i++)
    await etcdctl(version, m.endpoint, ['put', `/registry/events/e${i}`, `event ${i}`, '--lease', lease]);
  const keys = await dumpKeys(version, m.endpoint);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), `${version}/etcd3`);
  return { keys, lease };
}

export interface V2Key {
  key: string;
  value: string;
  ttl?: number;
}

/** v2 keys written by etcd 3.3.25 through the v2 API (some with a TTL); version.txt = 3.3.25/etcd2. */
export async function makeV2Data(dir: string, name: string): Promise<V2Key[]> {
  const m = await startEtcd('3.3.25', dir, { name });
  const keys: V2Key[] = [];
  for (let i = 0; i < 10; i++) keys.push({ key: `/registry/pods/default/p${i}`, value: `{"pod":${i}}` });
  for (let i = 0; i < 4; i++) keys.push({ key: `/registry/events/default/e${i}`, value: `{"event":${i}}`, ttl: 3600 });
  for (const k of keys) {
    const r = await request(
      m.endpoint,
      'PUT',
      `/v2/keys${k.key}${k.ttl ? `?ttl=${k.ttl}` : ''}`,
      `value=${encodeURIComponent(k.value)}`,
    );
    if (r.status !== 201 && r.status !== 200) throw new Error(`v2 PUT ${k.key}: HTTP ${r.status} ${r.body}`);
  }
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
  return keys;
}

/** Every v2 leaf key under `prefix` with its value and TTL, read through the v2 API. */
export async function dumpV2(endpoint: string, prefix = '/'): Promise<V2Key[]> {
  const r = await request(endpoint, 'GET', `/v2/keys${prefix}?recursive=true&sorted=true`);
  if (r.status !== 200) throw new Error(`v2 GET ${prefix}: HTTP ${r.status}`);
  interface Node {
    key: string;
    value?: string;
    dir?: boolean;
    ttl?: number;
    nodes?: Node[];
  }
  const out: V2Key[] = [];
  const walk = (n: Node) => {
    if (!n.dir) out.push({ key: n.key, value: n.value ?? '', ...(n.ttl !== undefined ? { ttl: n.ttl } : {}) });
    for (const c of n.nodes ?? []) walk(c);
  };
  walk((JSON.parse(r.body) as { node: Node }).node);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}
