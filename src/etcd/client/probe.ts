// A small HTTP client for a temporary etcd: its /version, its member list, and a probe write over
// the v2 or v3 API. An https endpoint is spoken to with the client TLS material (../tls/config.ts).
import http from 'node:http';
import https from 'node:https';
import { compareMinor, tryParseVersion, type Version } from '../../version.ts';
import { httpsOptions } from '../tls/load.ts';
import type { ClientTls } from '../tls/config.ts';

export interface Response {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function request(
  endpoint: string,
  method: string,
  path: string,
  body?: string,
  timeoutMs = 2000,
  tls?: ClientTls,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, endpoint);
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
      });
      res.on('error', reject);
    };
    const o = { method, timeout: timeoutMs, agent: false as const };
    if (url.protocol === 'https:' && !tls)
      throw new Error(`${endpoint} is https, but no client TLS material was given`);
    const req =
      url.protocol === 'https:'
        ? https.request(url, { ...o, ...httpsOptions(tls!) }, onResponse)
        : http.request(url, o, onResponse);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) {
      req.setHeader(
        'content-type',
        method === 'POST' && path.startsWith('/v3') ? 'application/json' : 'application/x-www-form-urlencoded',
      );
      req.end(body);
    } else req.end();
  });
}

/** The cluster version a member reports (`etcdcluster` of /version), or undefined before it is decided. */
export async function clusterVersion(endpoint: string, tls?: ClientTls): Promise<Version | undefined> {
  return (await versions(endpoint, tls))?.cluster;
}

export interface Versions {
  server: string;
  /** The cluster version; undefined until decided ("not_decided"). */
  cluster: Version | undefined;
  /** The storage version (3.6+, `meta/storageVersion`); undefined before 3.6 or before it is written. */
  storage: Version | undefined;
}

/** /version: the member's own server version, the cluster version and (3.6+) the storage version. */
export async function versions(endpoint: string, tls?: ClientTls): Promise<Versions | undefined> {
  const r = await request(endpoint, 'GET', '/version', undefined, 2000, tls);
  if (r.status !== 200) return undefined;
  const j = JSON.parse(r.body) as { etcdserver?: string; etcdcluster?: string; storage?: string };
  return {
    server: j.etcdserver ?? '',
    cluster: j.etcdcluster ? tryParseVersion(j.etcdcluster) : undefined,
    storage: j.storage ? tryParseVersion(j.storage) : undefined,
  };
}

/**
 * Whether the member answering at `endpoint` is the member `name` and has published `clientUrl`
 * as its client URL through raft (etcd publishes a member's attributes once it has joined).
 */
export async function isJoined(
  endpoint: string,
  v: Version,
  name: string,
  clientUrl: string,
  tls?: ClientTls,
): Promise<boolean> {
  const r = await request(endpoint, 'POST', `${gatewayPrefix(v)}/cluster/member/list`, '{}', 2000, tls);
  if (r.status !== 200) return false;
  // Member IDs are 64-bit: compare them as the strings etcd sends.
  const j = JSON.parse(r.body.replace(/"(ID|member_id)":\s*(\d+)/g, '"$1":"$2"')) as {
    header?: { member_id?: string };
    members?: Array<{ ID?: string; name?: string; clientURLs?: string[] }>;
  };
  const me = j.members?.find((m) => m.name === name);
  return !!me && me.ID === j.header?.member_id && (me.clientURLs ?? []).includes(clientUrl);
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
export async function probeWriteV3(endpoint: string, v: Version, tls?: ClientTls): Promise<boolean> {
  const key = Buffer.from(PROBE_KEY).toString('base64');
  const r = await request(endpoint, 'POST', `${gatewayPrefix(v)}/kv/deleterange`, JSON.stringify({ key }), 2000, tls);
  return r.status === 200 && r.body.includes('"header"');
}

/**
 * The same through the v2 API (etcd2 storage gets no v3 write): a DELETE answered "Key not found" (100) was
 * committed.
 */
export async function probeWriteV2(endpoint: string, tls?: ClientTls): Promise<boolean> {
  const r = await request(endpoint, 'DELETE', `/v2/keys${PROBE_KEY}`, undefined, 2000, tls);
  if (r.status === 200) return true;
  try {
    return (JSON.parse(r.body) as { errorCode?: number }).errorCode === 100;
  } catch {
    return false;
  }
}
