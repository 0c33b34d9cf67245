// A cluster of etcd members on 127.0.0.1 for tests: ports, flags, members started directly or
// through the entrypoint (which then execs etcd), and a small client over the JSON gateway.
import { execa, type ResultPromise } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gatewayPrefix, request } from '../../src/etcd/client/probe.ts';
import type { ClientTls } from '../../src/etcd/tls/config.ts';
import { parseVersion } from '../../src/version.ts';
import type { Certs } from './certs.ts';
import { BIN_DIR, ENTRY } from './env.ts';
import { freePort, onCleanup } from './tmp.ts';

export interface Node {
  name: string;
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  /** The entrypoint's hidden client port. */
  hiddenPort: number;
}

export interface Cluster {
  nodes: Node[];
  initialCluster: string;
  tls: ClientTls | undefined;
}

export async function planCluster(root: string, n: number, certs?: Certs): Promise<Cluster> {
  const scheme = certs ? 'https' : 'http';
  const nodes: Node[] = [];
  for (let i = 1; i <= n; i++) {
    nodes.push({
      name: `m${i}`,
      dataDir: path.join(root, `m${i}`),
      clientUrl: `${scheme}://127.0.0.1:${await freePort()}`,
      peerUrl: `${scheme}://127.0.0.1:${await freePort()}`,
      hiddenPort: await freePort(),
    });
  }
  const tls = certs
    ? {
        ca: await fs.readFile(certs.ca),
        cert: await fs.readFile(certs.crt('client')),
        key: await fs.readFile(certs.key('client')),
        caFile: certs.ca,
        certFile: certs.crt('client'),
        keyFile: certs.key('client'),
      }
    : undefined;
  return { nodes, initialCluster: nodes.map((m) => `${m.name}=${m.peerUrl}`).join(','), tls };
}

/** The flags of a member's real etcd (as a pod gives them after `--`). */
export function memberFlags(c: Cluster, m: Node, extra: readonly string[] = []): string[] {
  return [
    '--name',
    m.name,
    '--data-dir',
    m.dataDir,
    '--listen-client-urls',
    m.clientUrl,
    '--advertise-client-urls',
    m.clientUrl,
    '--listen-peer-urls',
    m.peerUrl,
    '--initial-advertise-peer-urls',
    m.peerUrl,
    '--initial-cluster',
    c.initialCluster,
    '--initial-cluster-token',
    'etcd-migrate-test',
    ...extra,
  ];
}

export interface Proc {
  proc: ResultPromise;
  /** Everything it wrote so far (stdout and stderr). */
  output: () => string;
  /** SIGTERM to its process group, and wait; SIGKILL after 15 s. */
  stop: () => Promise<void>;
}

function track(proc: ResultPromise): Proc {
  let out = '';
  proc.all?.setEncoding('utf8');
  proc.all?.on('data', (d: string) => {
    out += d;
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-proc.pid!, sig);
        } catch {
          /* gone */
        }
      };
      if (proc.exitCode === null && proc.signalCode === null) kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 15_000);
      await proc;
      clearTimeout(t);
    })());
  onCleanup(stop);
  return { proc, output: () => out, stop };
}

/** Starts etcd `version` directly with the member's flags. */
export function startMember(version: string, c: Cluster, m: Node, extra: readonly string[] = []): Proc {
  return track(
    execa(path.join(BIN_DIR, `etcd-${version}`), memberFlags(c, m, extra), {
      reject: false,
      detached: true,
      stdin: 'ignore',
      all: true,
      buffer: false,
      env: {},
      extendEnv: false,
    }),
  );
}

export interface EntryOptions {
  target: string;
  /** The entrypoint's own extra flags (TLS client options, ...). */
  args?: string[];
  env?: Record<string, string>;
  /** The real etcd's extra flags (TLS), after the member flags. */
  etcdExtra?: string[];
}

/** Runs the entrypoint for member m as a pod would: migrate, then exec etcd with the member's flags. */
export function startEntrypoint(c: Cluster, m: Node, o: EntryOptions): Proc {
  const args = [
    ENTRY,
    '--data-dir',
    m.dataDir,
    '--target-version',
    o.target,
    '--bin-dir',
    BIN_DIR,
    '--name',
    m.name,
    '--initial-cluster',
    c.initialCluster,
    '--listen-peer-urls',
    m.peerUrl,
    '--initial-advertise-peer-urls',
    m.peerUrl,
    '--port',
    String(m.hiddenPort),
    ...(o.args ?? []),
    '--',
    ...memberFlags(c, m, o.etcdExtra),
  ];
  return track(
    execa(process.execPath, args, {
      reject: false,
      detached: true,
      stdin: 'ignore',
      all: true,
      buffer: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...o.env },
      extendEnv: false,
    }),
  );
}

/** Waits until `url` answers /version as etcd `version` (any, when undefined). */
export async function waitServing(
  url: string,
  tls: ClientTls | undefined,
  version: string | undefined,
  timeoutMs: number,
  p?: Proc,
): Promise<{ server: string; cluster: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (p && (p.proc.exitCode !== null || p.proc.signalCode !== null))
      throw new Error(`exited while waiting for ${url}: ${p.output().slice(-2000)}`);
    try {
      const r = await request(url, 'GET', '/version', undefined, 2000, tls);
      const j = JSON.parse(r.body) as { etcdserver: string; etcdcluster: string };
      last = r.body;
      if (r.status === 200 && (!version || j.etcdserver === version)) {
        const h = await request(url, 'GET', '/health', undefined, 2000, tls);
        if (h.status === 200 && h.body.includes('true')) return { server: j.etcdserver, cluster: j.etcdcluster };
      }
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${url} did not serve ${version ?? 'etcd'} within ${timeoutMs} ms (last: ${last})` +
      (p ? `; output: ${p.output().slice(-2000)}` : ''),
  );
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A put through the JSON gateway; true when acknowledged. */
export async function put(
  url: string,
  version: string,
  tls: ClientTls | undefined,
  key: string,
  value: string,
  lease?: string,
  timeoutMs = 3000,
): Promise<boolean> {
  const body: Record<string, string> = { key: b64(key), value: b64(value) };
  if (lease) body.lease = lease;
  const r = await request(
    url,
    'POST',
    `${gatewayPrefix(parseVersion(version))}/kv/put`,
    JSON.stringify(body),
    timeoutMs,
    tls,
  );
  return r.status === 200 && r.body.includes('"header"');
}

/** Grants a lease; its ID as the decimal string the gateway takes. */
export async function grant(url: string, version: string, tls: ClientTls | undefined, ttl: number): Promise<string> {
  const r = await request(
    url,
    'POST',
    `${gatewayPrefix(parseVersion(version))}/lease/grant`,
    JSON.stringify({ TTL: ttl }),
    5000,
    tls,
  );
  const id = /"ID":"?(\d+)/.exec(r.body)?.[1];
  if (!id) throw new Error(`lease grant failed: ${r.body}`);
  return id;
}

export interface Kv {
  key: string;
  value: string;
  lease: string;
}

/** Every key under prefix (linearizable read), with value and lease. */
export async function range(url: string, version: string, tls: ClientTls | undefined, prefix: string): Promise<Kv[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1]!++;
  const r = await request(
    url,
    'POST',
    `${gatewayPrefix(parseVersion(version))}/kv/range`,
    JSON.stringify({ key: b64(prefix), range_end: end.toString('base64') }),
    30_000,
    tls,
  );
  if (r.status !== 200) throw new Error(`range failed: ${r.status} ${r.body}`);
  const j = JSON.parse(r.body.replace(/"lease":\s*"?(\d+)"?/g, '"lease":"$1"')) as {
    kvs?: Array<{ key: string; value?: string; lease?: string }>;
  };
  return (j.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString(),
    value: Buffer.from(kv.value ?? '', 'base64').toString(),
    lease: kv.lease ?? '0',
  }));
}

export async function readVersionTxt(m: Node): Promise<string> {
  return fs.readFile(path.join(m.dataDir, 'version.txt'), 'utf8');
}

/** The executable a process runs now (after an exec, the target etcd). */
export async function exeOf(p: Proc): Promise<string> {
  return fs.readlink(`/proc/${p.proc.pid}/exe`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
