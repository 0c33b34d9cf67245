// Real etcd for tests: start a member of a given version on a data dir, talk to it with etcdctl.
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { BIN_DIR } from './env.ts';
import { freePort, onCleanup } from './tmp.ts';

export interface Member {
  endpoint: string;
  port: number;
  peerPort: number;
  name: string;
  version: string;
  stop: () => Promise<void>;
  /** SIGKILL: no clean stop (etcd's backend keeps only what it had committed). */
  kill: () => Promise<void>;
}

export interface MemberOptions {
  name?: string;
  port?: number;
  peerPort?: number;
  extraArgs?: string[];
  /** More environment; with ETCD_DATA_DIR in it, no --data-dir flag is given. */
  env?: Record<string, string>;
  /** A command that runs etcd (e.g. unshare ...), its argv before etcd's. */
  wrap?: string[];
}

/** Starts etcd `version` on `dataDir` and waits until it serves; stopped after the test. */
export async function startEtcd(version: string, dataDir: string, o: MemberOptions = {}): Promise<Member> {
  const name = o.name ?? 'test-member';
  const port = o.port ?? (await freePort());
  const peerPort = o.peerPort ?? (await freePort());
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const argv = [...(o.wrap ?? []), path.join(BIN_DIR, `etcd-${version}`)];
  const proc: ResultPromise = execa(
    argv[0]!,
    [
      ...argv.slice(1),
      '--name',
      name,
      ...(o.env?.ETCD_DATA_DIR ? [] : ['--data-dir', dataDir]),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `${name}=${peer}`,
      '--heartbeat-interval',
      '10',
      '--election-timeout',
      '100',
      ...(o.extraArgs ?? []),
    ],
    {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
      env: { ETCD_UNSUPPORTED_ARCH: '', ...o.env },
      extendEnv: false,
    },
  );
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // unshare blocks SIGTERM while it waits for its child; killed, it takes etcd along (--kill-child).
    proc.kill(o.wrap ? 'SIGKILL' : 'SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await proc;
    clearTimeout(t);
  };
  onCleanup(stop);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await etcdctl(version, client, ['endpoint', 'health'], { reject: false });
    if (r.exitCode === 0) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`etcd ${version} did not become healthy: ${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  const kill = async () => {
    stopped = true;
    proc.kill('SIGKILL');
    await proc;
  };
  return { endpoint: client, port, peerPort, name, version, stop, kill };
}

/** Runs etcdctl `version` against an endpoint through the v3 API. */
export function etcdctl(
  version: string,
  endpoint: string,
  args: string[],
  o: { reject?: boolean; input?: string } = {},
) {
  return execa(path.join(BIN_DIR, `etcdctl-${version}`), ['--endpoints', endpoint, ...args], {
    env: { ETCDCTL_API: '3' },
    extendEnv: false,
    reject: o.reject ?? true,
    input: o.input,
  });
}

export interface KeyValue {
  key: string;
  value: string;
  lease: string;
  createRevision: number;
  modRevision: number;
}

/** Every key with its value and lease, through `etcdctl get -w json` (keys and values base64). */
export async function dumpKeys(version: string, endpoint: string, prefix = '/'): Promise<KeyValue[]> {
  const r = await etcdctl(version, endpoint, ['get', prefix, '--prefix', '-w', 'json']);
  const j = JSON.parse(bigIdsAsStrings(r.stdout)) as {
    kvs?: Array<{
      key: string;
      value?: string;
      lease?: number | string;
      create_revision: number;
      mod_revision: number;
    }>;
  };
  return (j.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString('utf8'),
    value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
    lease: kv.lease ? BigInt(kv.lease).toString(16) : '0',
    createRevision: kv.create_revision,
    modRevision: kv.mod_revision,
  }));
}

/** Remaining TTL in seconds of a lease (hex id), or -1 when it has expired or does not exist. */
export async function leaseTtl(version: string, endpoint: string, leaseHex: string): Promise<number> {
  const r = await etcdctl(version, endpoint, ['lease', 'timetolive', leaseHex, '-w', 'json']);
  return (JSON.parse(r.stdout) as { ttl: number }).ttl;
}

/** etcd prints 64-bit lease IDs as JSON numbers, which lose precision in JS: read them as strings. */
export function bigIdsAsStrings(json: string): string {
  return json.replace(/"(ID|id|lease)":(\d+)/g, '"$1":"$2"');
}

/** Grants a lease and returns its ID in hex, as etcdctl's --lease takes it. */
export async function grantLease(version: string, endpoint: string, ttl: number): Promise<string> {
  const g = await etcdctl(version, endpoint, ['lease', 'grant', String(ttl), '-w', 'json']);
  return BigInt((JSON.parse(bigIdsAsStrings(g.stdout)) as { ID: string }).ID).toString(16);
}
