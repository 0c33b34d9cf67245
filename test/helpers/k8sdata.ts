// A Kubernetes-shaped data set, written fast (concurrent HTTP requests on kept-alive connections)
// through the v2 or the v3 API of a running etcd. Values are JSON, as the apiserver wrote them with
// STORAGE_MEDIA_TYPE=application/json.
import http from 'node:http';

export interface DataKey {
  key: string;
  value: string;
  /** TTL in seconds when written; undefined for a permanent key. */
  ttl?: number;
}

/** Short TTLs: long enough to outlive a conversion, short enough to watch one expire in a test. */
export const SHORT_TTL = 15;

/**
 * `n` keys (n >= 100): pods, services and secrets without TTL (about 70 %), events with TTL 1 h
 * (about 25 %), and a few keys with short and long TTLs inside and outside the events directory.
 */
export function k8sDataSet(n: number): DataKey[] {
  const keys: DataKey[] = [];
  const ns = (i: number) => `ns-${i % 7}`;
  const obj = (kind: string, i: number) =>
    JSON.stringify({
      kind,
      apiVersion: 'v1',
      metadata: { name: `${kind.toLowerCase()}-${i}`, namespace: ns(i), uid: `uid-${i}` },
      spec: { n: i, text: 'ü€ "quoted" \\ back\nslash' },
    });
  const special = 40;
  const events = Math.floor((n - special) * 0.25);
  const rest = n - special - events;
  for (let i = 0; i < rest; i++) {
    const kind = ['Pod', 'Service', 'Secret'][i % 3]!;
    const dir = { Pod: 'pods', Service: 'services/specs', Secret: 'secrets' }[kind];
    keys.push({ key: `/registry/${dir}/${ns(i)}/${kind.toLowerCase()}-${i}`, value: obj(kind, i) });
  }
  for (let i = 0; i < events; i++)
    keys.push({ key: `/registry/events/${ns(i)}/event-${i}`, value: obj('Event', i), ttl: 3600 });
  for (let i = 0; i < 10; i++) {
    keys.push({ key: `/registry/events/${ns(i)}/short-${i}`, value: obj('Event', i), ttl: SHORT_TTL + (i % 3) });
    keys.push({ key: `/registry/events/${ns(i)}/long-${i}`, value: obj('Event', i), ttl: 86_400 * (1 + i) });
    keys.push({
      key: `/registry/masterleases/10.0.0.${i}`,
      value: JSON.stringify({ ip: `10.0.0.${i}` }),
      ttl: SHORT_TTL + 5 + (i % 3),
    });
    keys.push({ key: `/registry/ranges/long-${i}`, value: '', ttl: 7 * 86_400 + i * 1000 });
  }
  return keys;
}

/** Empty v2 directories, which v3 does not have. */
export const EMPTY_DIRS = ['/registry/empty', '/registry/pods/ns-empty', '/other/empty-dir'];

/** Writes keys through the v2 API; returns each key's absolute expiry (ms) as etcd computed it. */
export async function writeV2(
  endpoint: string,
  keys: readonly DataKey[],
  concurrency = 64,
): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const expiries = new Map<string, number>();
  try {
    await inParallel(keys, concurrency, async (k) => {
      const path = `/v2/keys${k.key.split('/').map(encodeURIComponent).join('/')}${k.ttl ? `?ttl=${k.ttl}` : ''}`;
      const r = await send(
        agent,
        endpoint,
        'PUT',
        path,
        `value=${encodeURIComponent(k.value)}`,
        'application/x-www-form-urlencoded',
      );
      if (r.status !== 201 && r.status !== 200) throw new Error(`v2 PUT ${k.key}: ${r.status} ${r.body}`);
      const exp = (JSON.parse(r.body) as { node: { expiration?: string } }).node.expiration;
      if (exp) expiries.set(k.key, Date.parse(exp));
    });
    for (const d of EMPTY_DIRS) {
      const r = await send(agent, endpoint, 'PUT', `/v2/keys${d}?dir=true`, '', 'application/x-www-form-urlencoded');
      if (r.status !== 201) throw new Error(`v2 PUT dir ${d}: ${r.status} ${r.body}`);
    }
  } finally {
    agent.destroy();
  }
  return expiries;
}

/** Writes keys through the v3 JSON gateway (3.4+: /v3), each TTL key on a lease per distinct TTL. */
export async function writeV3(
  endpoint: string,
  keys: readonly DataKey[],
  gateway = '/v3',
  concurrency = 64,
): Promise<Map<number, string>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const leases = new Map<number, string>();
  try {
    for (const ttl of new Set(keys.flatMap((k) => (k.ttl ? [k.ttl] : [])))) {
      const r = await send(
        agent,
        endpoint,
        'POST',
        `${gateway}/lease/grant`,
        JSON.stringify({ TTL: ttl }),
        'application/json',
      );
      leases.set(ttl, (JSON.parse(r.body) as { ID: string }).ID);
    }
    await inParallel(keys, concurrency, async (k) => {
      const body = { key: b64(k.key), value: b64(k.value), ...(k.ttl ? { lease: leases.get(k.ttl) } : {}) };
      const r = await send(agent, endpoint, 'POST', `${gateway}/kv/put`, JSON.stringify(body), 'application/json');
      if (r.status !== 200) throw new Error(`v3 put ${k.key}: ${r.status} ${r.body}`);
    });
  } finally {
    agent.destroy();
  }
  return leases;
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

export function send(
  agent: http.Agent,
  endpoint: string,
  method: string,
  path: string,
  body: string | undefined,
  type: string,
  retried = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, endpoint),
      { method, agent, headers: body !== undefined ? { 'content-type': type } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      // The server closed a kept-alive connection as the request went out: send it again.
      if (!retried && req.reusedSocket && e.code === 'ECONNRESET')
        send(agent, endpoint, method, path, body, type, true).then(resolve, reject);
      else reject(e);
    });
    req.end(body);
  });
}

async function inParallel<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
