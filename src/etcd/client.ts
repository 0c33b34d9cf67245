// A small HTTP client for a temporary etcd: its /version, and a probe write over the v2 or v3 API.
import http from 'node:http';
import { compareMinor, tryParseVersion, type Version } from '../version.ts';

export interface Response {
  status: number;
  body: string;
}

export function request(endpoint: string, method: string, path: string, body?: string, timeoutMs = 2000): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, endpoint), { method, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) {
      req.setHeader('content-type', method === 'POST' && path.startsWith('/v3') ? 'application/json' : 'application/x-www-form-urlencoded');
      req.end(body);
    } else req.end();
  });
}

/** The cluster version a member reports (`etcdcluster` of /version), or undefined before it is decided. */
export async function clusterVersion(endpoint: string): Promise<Version | undefined> {
  const r = await request(endpoint, 'GET', '/version');
  if (r.status !== 200) return undefined;
  const v = (JSON.parse(r.body) as { etcdcluster?: string }).etcdcluster;
  return v ? tryParseVersion(v) : undefined;
}

/** The gRPC gateway's path prefix: /v3alpha (3.0-3.2), /v3beta (3.3), /v3 (3.4+). */
export function gatewayPrefix(v: Version): string {
  if (compareMinor(v, { major: 3, minor: 3, patch: 0 }) < 0) return '/v3alpha';
  if (compareMinor(v, { major: 3, minor: 4, patch: 0 }) < 0) return '/v3beta';
  return '/v3';
}

/** A key this tool never creates: deleting it is a write that commits through raft and changes nothing. */
export const PROBE_KEY = '/etcd-migrate/probe';

/**
 * A write through the v3 API that leaves no trace: DeleteRange of a key that does not exist goes
 * through raft like any write, but creates no revision.
 */
export async function probeWriteV3(endpoint: string, v: Version): Promise<boolean> {
  const key = Buffer.from(PROBE_KEY).toString('base64');
  const r = await request(endpoint, 'POST', `${gatewayPrefix(v)}/kv/deleterange`, JSON.stringify({ key }));
  return r.status === 200 && r.body.includes('"header"');
}

/** The same through the v2 API (etcd2 storage gets no v3 write): a DELETE answered "Key not found" (100) was committed. */
export async function probeWriteV2(endpoint: string): Promise<boolean> {
  const r = await request(endpoint, 'DELETE', `/v2/keys${PROBE_KEY}`);
  if (r.status === 200) return true;
  try {
    return (JSON.parse(r.body) as { errorCode?: number }).errorCode === 100;
  } catch {
    return false;
  }
}
