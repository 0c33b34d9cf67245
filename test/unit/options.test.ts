// Options resolution: flag -> environment variable -> default, a pure function.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { flagValue, memberOf, resolveOptions, type Env, type Flags } from '../../src/options.ts';
import { fmtData } from '../../src/version.ts';
import { joinedRegex } from '../helpers/regex.ts';

const ctx = { hostname: 'node1' };
const base: Flags = { dataDir: '/d', targetVersion: '3.5.30' };
const resolve = (flags: Flags, env: Env = {}) => resolveOptions(flags, env, ctx);

describe('resolveOptions', () => {
  it('applies the defaults', () => {
    const o = resolve(base);
    expect(o).toMatchObject({
      dataDir: '/d',
      binDir: '/usr/local/bin',
      bundled: undefined,
      name: 'etcd-node1',
      initialCluster: 'etcd-node1=http://127.0.0.1:2380',
      listenPeerUrls: 'http://127.0.0.1:2380',
      initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
      port: 18629,
      peerPort: 2380,
      dataPrefix: '/registry',
      ttlKeysDirectory: '/registry/events',
      extraArgs: [],
      dryRun: false,
      etcdArgs: undefined,
    });
    expect(fmtData(o.target)).toBe('3.5.30/etcd3');
  });

  it('reads every variable Kubernetes manifests set', () => {
    const o = resolve(
      {},
      {
        DATA_DIRECTORY: '/var/etcd/data',
        TARGET_VERSION: '3.3.25',
        TARGET_STORAGE: 'etcd2',
        BUNDLED_VERSIONS: '3.3.25, 3.4.23 3.5.30',
        ETCD_NAME: 'etcd-a',
        INITIAL_CLUSTER: 'etcd-a=http://10.0.0.1:2380,etcd-b=http://10.0.0.2:2380',
        LISTEN_PEER_URLS: 'http://10.0.0.1:2380',
        INITIAL_ADVERTISE_PEER_URLS: 'http://10.0.0.1:2380',
        ETCD_DATA_PREFIX: '/k8s',
        ETCD_CREDS: ' --peer-cert-file=/p.crt   --peer-key-file=/p.key ',
      },
    );
    expect(o.dataDir).toBe('/var/etcd/data');
    expect(fmtData(o.target)).toBe('3.3.25/etcd2');
    expect(o.bundled?.map((v) => `${v.major}.${v.minor}.${v.patch}`)).toEqual(['3.3.25', '3.4.23', '3.5.30']);
    expect(o.name).toBe('etcd-a');
    expect(o.initialCluster).toBe('etcd-a=http://10.0.0.1:2380,etcd-b=http://10.0.0.2:2380');
    expect(o.listenPeerUrls).toBe('http://10.0.0.1:2380');
    expect(o.dataPrefix).toBe('/k8s');
    expect(o.ttlKeysDirectory).toBe('/k8s/events');
    expect(o.extraArgs).toEqual(['--peer-cert-file=/p.crt', '--peer-key-file=/p.key']);
  });

  it('a flag wins over its variable', () => {
    const o = resolve(
      { ...base, name: 'from-flag', targetStorage: 'etcd3', etcdDataPrefix: '/f' },
      {
        ETCD_NAME: 'from-env',
        TARGET_VERSION: '3.4.23',
        TARGET_STORAGE: 'etcd2',
        DATA_DIRECTORY: '/env',
        ETCD_DATA_PREFIX: '/e',
      },
    );
    expect(o.name).toBe('from-flag');
    expect(o.dataDir).toBe('/d');
    expect(fmtData(o.target)).toBe('3.5.30/etcd3');
    expect(o.dataPrefix).toBe('/f');
  });

  it('an empty variable counts as unset', () => {
    const o = resolve(base, {
      ETCD_NAME: '',
      TARGET_STORAGE: '',
      BUNDLED_VERSIONS: '',
      ETCD_CREDS: '',
      INITIAL_CLUSTER: '',
    });
    expect(o.name).toBe('etcd-node1');
    expect(o.target.storage).toBe('etcd3');
    expect(o.bundled).toBeUndefined();
    expect(o.initialCluster).toBe('etcd-node1=http://127.0.0.1:2380');
  });

  it('derives the peer URLs from --peer-port and the name', () => {
    const o = resolve({ ...base, peerPort: 2381, name: 'ev' });
    expect(o.initialCluster).toBe('ev=http://127.0.0.1:2381');
    expect(o.listenPeerUrls).toBe('http://127.0.0.1:2381');
  });

  it('keeps the etcd flags after --', () => {
    expect(resolve({ ...base, etcdArgs: ['--name', 'x'] }).etcdArgs).toEqual(['--name', 'x']);
  });

  it("knows the target etcd's election timeout: the etcd flags after --, ETCD_ELECTION_TIMEOUT, etcd's 1000 ms", () => {
    expect(resolve(base).targetElectionTimeoutMs).toBe(1000);
    expect(resolve(base, { ETCD_ELECTION_TIMEOUT: '' }).targetElectionTimeoutMs).toBe(1000);
    expect(resolve(base, { ETCD_ELECTION_TIMEOUT: '2500' }).targetElectionTimeoutMs).toBe(2500);
    expect(
      resolve({ ...base, etcdArgs: ['--election-timeout', '300'] }, { ETCD_ELECTION_TIMEOUT: '2500' })
        .targetElectionTimeoutMs,
    ).toBe(300);
    expect(resolve({ ...base, etcdArgs: ['--election-timeout=5000'] }).targetElectionTimeoutMs).toBe(5000);
  });

  it.each<[string, Flags, Env, RegExp]>([
    ['no data dir', { targetVersion: '3.5.30' }, {}, /--data-dir \(or DATA_DIRECTORY\) is required/],
    ['no target', { dataDir: '/d' }, {}, /--target-version \(or TARGET_VERSION\) is required/],
    ['bad target version', { dataDir: '/d', targetVersion: '3.5' }, {}, /--target-version "3\.5" is not a version/],
    [
      'bad target version in env',
      { dataDir: '/d' },
      { TARGET_VERSION: 'latest' },
      /TARGET_VERSION "latest" is not a version/,
    ],
    ['unknown storage', base, { TARGET_STORAGE: 'etcd4' }, /TARGET_STORAGE "etcd4" is unknown: use etcd2 or etcd3/],
    ['bad bundled entry', base, { BUNDLED_VERSIONS: '3.4.23,3.5' }, /BUNDLED_VERSIONS entry "3\.5" is not a version/],
    ['bundled list of separators only', base, { BUNDLED_VERSIONS: ' , ' }, /lists no version/],
    ['port out of range', { ...base, port: 70000 }, {}, /--port 70000 is not a TCP port/],
    ['port not an integer', { ...base, peerPort: 1.5 }, {}, /--peer-port 1\.5 is not a TCP port/],
    ['same ports', { ...base, port: 2380 }, {}, /--port and --peer-port are both 2380/],
    ['malformed INITIAL_CLUSTER', base, { INITIAL_CLUSTER: 'etcd-node1' }, /initial cluster "etcd-node1" is malformed/],
    [
      'INITIAL_CLUSTER url',
      base,
      { INITIAL_CLUSTER: 'etcd-node1=127.0.0.1:2380' },
      /must be http\(s\):\/\/host:port|is not a URL/,
    ],
    [
      'INITIAL_CLUSTER without this member',
      base,
      { INITIAL_CLUSTER: 'other=http://127.0.0.1:2380' },
      /does not name this member "etcd-node1"/,
    ],
    ['bad LISTEN_PEER_URLS', base, { LISTEN_PEER_URLS: 'peer-url' }, /LISTEN_PEER_URLS: "peer-url" is not a URL/],
    ['bad name', { ...base, name: 'a b' }, {}, /member name "a b" is not usable/],
    ['prefix without slash', base, { ETCD_DATA_PREFIX: 'registry' }, /must start with "\/"/],
    [
      'etcd --data-dir differs',
      { ...base, etcdArgs: ['--data-dir=/other'] },
      {},
      /--data-dir=\/other is not the data dir being migrated \(\/d\)/,
    ],
    [
      'election timeout not a number',
      { ...base, etcdArgs: ['--election-timeout=1s'] },
      {},
      joinedRegex(
        /the target etcd's election timeout "1s" \(--election-timeout after --, or ETCD_ELECTION_TIMEOUT\) /,
        /is not a whole number of milliseconds/,
      ),
    ],
    ['election timeout zero in env', base, { ETCD_ELECTION_TIMEOUT: '0' }, /election timeout "0"/],
  ])('refuses %s', (_name, flags, env, message) => {
    expect(() => resolve(flags, env)).toThrow(UsageError);
    expect(() => resolve(flags, env)).toThrow(message);
  });
});

describe('flagValue', () => {
  it.each<[string[], string | undefined]>([
    [['--data-dir', '/a'], '/a'],
    [['--data-dir=/a'], '/a'],
    [['-data-dir', '/a'], '/a'],
    [['-data-dir=/a'], '/a'],
    [['--data-dir-x=/a'], undefined],
    [['--name', 'n'], undefined],
    [['--data-dir=/a', '--data-dir=/b'], '/b'],
  ])('%j', (args, value) => expect(flagValue(args, 'data-dir')).toBe(value));
});

describe('ETCD_CREDS cannot override what the tool sets for its temporary etcds', () => {
  const refused = (creds: string) => () => resolve(base, { ETCD_CREDS: creds });
  it.each([
    '--data-dir=/elsewhere',
    '--wal-dir /w',
    '--name other',
    '-name=other',
    '--listen-client-urls=http://0.0.0.0:2379',
    '--listen-peer-urls http://0.0.0.0:2380',
    '--listen-metrics-urls=http://0.0.0.0:2381',
    '--listen-client-http-urls=http://0.0.0.0:2382',
    '--advertise-client-urls=http://10.0.0.1:2379',
    '--initial-advertise-peer-urls=http://10.0.0.1:2380',
    '--initial-cluster=a=http://10.0.0.1:2380',
    '--initial-cluster-state=existing',
    '--initial-cluster-token=t',
    '--discovery=https://d',
    '--discovery-srv=example.com',
    '--force-new-cluster',
    '--config-file=/etc/etcd.yaml',
  ])('%s: refused', (creds) => {
    const flag = /^--?([a-z-]+)/.exec(creds)![1];
    expect(refused(`--peer-auto-tls ${creds}`)).toThrow(UsageError);
    expect(refused(creds)).toThrow(
      new RegExp(
        `^ETCD_CREDS gives --${flag}, which etcd-migrate sets itself for every temporary etcd .*; ` +
          'remove it from ETCD_CREDS',
      ),
    );
  });
  it('TLS, quotas, logging and tuning pass', () => {
    const creds =
      '--cert-file=/s.crt --key-file=/s.key --peer-cert-file /p.crt --peer-key-file=/p.key ' +
      '--quota-backend-bytes=8589934592 --log-level=warn --snapshot-count=5000 --auth-token=simple';
    expect(resolve(base, { ETCD_CREDS: creds, CLIENT_CA_FILE: '/ca.crt' }).extraArgs).toEqual(creds.split(' '));
  });
  it('--etcd-server-extra-args is named as what gave it', () => {
    expect(() => resolve({ ...base, etcdServerExtraArgs: '--force-new-cluster' }, {})).toThrow(
      /^--etcd-server-extra-args gives --force-new-cluster/,
    );
  });
});

describe('paths are normalised once', () => {
  it('the data dir and backup dir: absolute, without trailing or double slashes', () => {
    const o = resolve({ ...base, dataDir: '/var/etcd//data/', etcdArgs: ['--data-dir', '/var/etcd/data'] });
    expect(o.dataDir).toBe('/var/etcd/data');
    expect(o.backupDir).toBe('/var/etcd/data.backups');
    expect(resolve({ ...base, dataDir: 'data' }, { BACKUP_DIR: 'b/' })).toMatchObject({
      dataDir: path.resolve('data'),
      backupDir: path.resolve('b'),
    });
  });
  it('an etcd --data-dir that names the same dir differently is the same dir', () => {
    expect(() =>
      resolve({ ...base, dataDir: '/var/etcd/data/', etcdArgs: ['--data-dir=/var/etcd/./data'] }),
    ).not.toThrow();
    expect(() => resolve({ ...base, dataDir: '/var/etcd/data', etcdArgs: ['--data-dir=/var/etcd/other'] })).toThrow(
      /--data-dir=\/var\/etcd\/other is not the data dir being migrated \(\/var\/etcd\/data\)/,
    );
  });
});

describe('memberOf', () => {
  it("is the temporary etcd's member as the options resolve it, ETCD_CREDS included", () => {
    const o = resolve(
      { dataDir: '/d', targetVersion: '3.5.30', name: 'm2', port: 23790 },
      { INITIAL_CLUSTER: 'm1=https://a:2380,m2=https://b:2380', ETCD_CREDS: '--peer-auto-tls' },
    );
    expect(memberOf(o)).toEqual({
      name: 'm2',
      initialCluster: 'm1=https://a:2380,m2=https://b:2380',
      listenPeerUrls: o.listenPeerUrls,
      initialAdvertisePeerUrls: o.initialAdvertisePeerUrls,
      port: 23790,
      extraArgs: ['--peer-auto-tls'],
    });
  });
});
