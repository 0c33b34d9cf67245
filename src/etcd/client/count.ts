// What a running etcd holds, as counts only (never a key or a value): v3 keys and leases through the
// gRPC gateway, v2 keys (and those with a TTL) through the v2 API.
import { compareMinor, type Storage, type Version } from '../../version.ts';
import { gatewayPrefix, request } from './probe.ts';
import { parseJson } from './json.ts';

export interface Counts {
  /** Keys in the v3 store (count_only range over the whole key space). */
  v3Keys?: number;
  /** Leases in the v3 store (etcd 3.4+: 3.3's gateway cannot list them). */
  v3Leases?: number;
  /** Leaf keys in the v2 store (directories not counted). */
  v2Keys?: number;
  /** v2 keys that carry a TTL. */
  v2KeysWithTtl?: number;
}

const ZERO = Buffer.from([0]).toString('base64');

export async function countV3Keys(endpoint: string, v: Version): Promise<number> {
  const r = await request(
    endpoint,
    'POST',
    `${gatewayPrefix(v)}/kv/range`,
    JSON.stringify({ key: ZERO, range_end: ZERO, count_only: true }),
    30_000,
  );
  if (r.status !== 200) throw new Error(`counting v3 keys failed: HTTP ${r.status}`);
  return Number((JSON.parse(r.body) as { count?: string | number }).count ?? 0);
}

export async function countV3Leases(endpoint: string, v: Version): Promise<number | undefined> {
  if (compareMinor(v, { major: 3, minor: 4, patch: 0 }) < 0) return undefined;
  const r = await request(endpoint, 'POST', `${gatewayPrefix(v)}/lease/leases`, '{}', 30_000);
  if (r.status !== 200) throw new Error(`listing v3 leases failed: HTTP ${r.status}`);
  return ((JSON.parse(r.body) as { leases?: unknown[] }).leases ?? []).length;
}

interface V2Node {
  dir?: boolean;
  ttl?: number;
  nodes?: V2Node[];
}

export async function countV2Keys(endpoint: string): Promise<{ keys: number; withTtl: number }> {
  const r = await request(endpoint, 'GET', '/v2/keys/?recursive=true', undefined, 60_000);
  if (r.status !== 200) throw new Error(`reading the v2 store failed: HTTP ${r.status}`);
  const out = { keys: 0, withTtl: 0 };
  const walk = (n: V2Node) => {
    if (!n.dir) {
      out.keys++;
      if (n.ttl !== undefined) out.withTtl++;
    }
    for (const c of n.nodes ?? []) walk(c);
  };
  walk(parseJson<{ node: V2Node }>(r.body, 'the v2 store').node);
  return out;
}

/** The counts of the store the data lives in: v2 for etcd2 storage, v3 (keys, leases) for etcd3. */
export async function countStore(endpoint: string, v: Version, storage: Storage): Promise<Counts> {
  if (storage === 'etcd2') {
    const { keys, withTtl } = await countV2Keys(endpoint);
    return { v2Keys: keys, v2KeysWithTtl: withTtl };
  }
  return { v3Keys: await countV3Keys(endpoint, v), v3Leases: await countV3Leases(endpoint, v) };
}

/** The number of keys in the store the data lives in, for comparing before and after. */
export const keyTotal = (c: Counts): number | undefined => c.v3Keys ?? c.v2Keys;
