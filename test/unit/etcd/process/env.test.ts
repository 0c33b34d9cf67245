import { describe, expect, it } from 'vitest';
import { childEnv, temporaryEtcdEnv } from '../../../../src/etcd/process/env.ts';
import { etcdArgs } from '../../../../src/etcd/process/server.ts';
import { targetCommand } from '../../../../src/exec.ts';
import { resolveOptions } from '../../../../src/options.ts';
import { parseVersion } from '../../../../src/version.ts';

describe('childEnv', () => {
  it('drops ETCD_<FLAG> where the flag is given, and our own variables, keeps the rest', () => {
    const env = {
      ETCD_NAME: 'a',
      ETCD_DATA_DIR: '/x',
      ETCD_SNAPSHOT_COUNT: '5',
      ETCD_CREDS: '--x',
      ETCD_DATA_PREFIX: '/r',
      PATH: '/bin',
      HOME: '/root',
    };
    expect(childEnv(env, ['--name', 'a', '-data-dir=/y', '--listen-client-urls', 'http://x'])).toEqual({
      ETCD_SNAPSHOT_COUNT: '5',
      PATH: '/bin',
      HOME: '/root',
    });
  });
  it('keeps ETCD_NAME when the flags do not name the member', () => {
    expect(childEnv({ ETCD_NAME: 'a' }, ['--data-dir', '/d'])).toEqual({ ETCD_NAME: 'a' });
  });
});

describe('temporaryEtcdEnv', () => {
  it('keeps TLS, logging, quotas, auth, tuning; drops all URLs, discovery, proxy, metrics, gateways; marks it', () => {
    const kept = {
      ETCD_PEER_CERT_FILE: '/p.crt',
      ETCD_TRUSTED_CA_FILE: '/ca',
      ETCD_LOG_LEVEL: 'warn',
      ETCD_QUOTA_BACKEND_BYTES: '1',
      ETCD_AUTH_TOKEN: 'simple',
      ETCD_SNAPSHOT_COUNT: '5',
      ETCD_UNSUPPORTED_ARCH: 'arm64',
      ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: 'true',
      PATH: '/bin',
    };
    const dropped = {
      ETCD_LISTEN_METRICS_URLS: 'http://0.0.0.0:2381',
      ETCD_LISTEN_CLIENT_HTTP_URLS: 'http://0.0.0.0:2382',
      ETCD_ADVERTISE_CLIENT_URLS: 'http://10.0.0.1:2379',
      ETCD_INITIAL_CLUSTER_STATE: 'existing',
      ETCD_DISCOVERY: 'https://d',
      ETCD_PROXY: 'on',
      ETCD_ENABLE_GRPC_GATEWAY: 'false',
      ETCD_ENABLE_V2: 'false',
      ETCD_CORS: '*',
      ETCD_METRICS: 'extensive',
      ETCD_EXPERIMENTAL_ENABLE_DISTRIBUTED_TRACING: 'true',
      ETCD_EXPERIMENTAL_DISTRIBUTED_TRACING_ADDRESS: '10.0.0.9:4317',
      ETCD_CREDS: '--x',
      ETCD_EXPERIMENTAL_ENABLE_V2V3: '/v2',
      ETCDMIGRATE_TEMPORARY: '0',
    };
    expect(temporaryEtcdEnv({ ...kept, ...dropped }, ['--name', 'm'])).toEqual({ ...kept, ETCDMIGRATE_TEMPORARY: '1' });
  });
});

describe('the exec of the target etcd', () => {
  const opts = (podArgs: string[]) =>
    resolveOptions(
      { dataDir: '/var/etcd/data', targetVersion: '3.5.30', binDir: '/b', etcdArgs: podArgs },
      {},
      { hostname: 'h' },
    );
  it('adds --data-dir when the flags lack it', () => {
    const c = targetCommand(opts(['--name', 'n']), { ETCD_NAME: 'n', PATH: '/bin' });
    expect(c.file).toBe('/b/etcd-3.5.30');
    expect(c.args).toEqual(['--name', 'n', '--data-dir', '/var/etcd/data']);
    expect(c.env).toEqual({ PATH: '/bin' });
  });
  it('keeps a --data-dir the flags give', () => {
    expect(targetCommand(opts(['--data-dir=/var/etcd/data/']), {}).args).toEqual(['--data-dir=/var/etcd/data/']);
  });
});

describe('temporary etcd flags', () => {
  const member = {
    name: 'm',
    initialCluster: 'm=http://127.0.0.1:2380',
    listenPeerUrls: 'http://127.0.0.1:2380',
    initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
    port: 18629,
    extraArgs: ['--peer-auto-tls'],
  };
  const args = (v: string, storage: 'etcd2' | 'etcd3', m = member) =>
    etcdArgs({ bin: 'etcd', version: parseVersion(v), dataDir: '/d', member: m, storage, env: {}, timeoutMs: 1 });
  it('listens for clients on 127.0.0.1 only, user extra args last', () => {
    const a = args('3.5.30', 'etcd3');
    expect(a.slice(a.indexOf('--listen-client-urls'), a.indexOf('--listen-client-urls') + 2)).toEqual([
      '--listen-client-urls',
      'http://127.0.0.1:18629',
    ]);
    expect(a.at(-1)).toBe('--peer-auto-tls');
  });
  it('short election timeouts for a lone member only', () => {
    expect(args('3.5.30', 'etcd3')).toContain('--election-timeout');
    expect(
      args('3.5.30', 'etcd3', { ...member, initialCluster: 'm=http://127.0.0.1:2380,n=http://127.0.0.1:2381' }),
    ).not.toContain('--election-timeout');
  });
  it('enables v2 for etcd2 on 3.3+ (whatever ETCD_ENABLE_V2 says), never for etcd3, not on 3.0-3.2 (no flag)', () => {
    expect(args('3.4.23', 'etcd2')).toContain('--enable-v2=true');
    expect(args('3.3.25', 'etcd2')).toContain('--enable-v2=true');
    expect(args('3.2.24', 'etcd2')).not.toContain('--enable-v2=true');
    expect(args('3.4.23', 'etcd3')).not.toContain('--enable-v2=true');
  });
});
