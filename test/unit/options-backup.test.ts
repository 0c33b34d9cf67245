// The backup options and the cluster token: flag -> environment variable -> default.
import { describe, expect, it } from 'vitest';
import { resolveOptions, type Env, type Flags } from '../../src/options.ts';

const base: Flags = { dataDir: '/var/etcd/data/', targetVersion: '3.4.23' };
const resolve = (flags: Flags, env: Env = {}) => resolveOptions(flags, env, { hostname: 'node1' });

describe('backup options', () => {
  it("default: beside the data dir, keep 3, no encryption, etcd's cluster token", () => {
    expect(resolve(base)).toMatchObject({
      backupDir: '/var/etcd/data.backups',
      keepBackups: 3,
      backupKeyFile: undefined,
      initialClusterToken: 'etcd-cluster',
    });
  });

  it('flag wins over variable; an empty variable counts as unset', () => {
    const env = {
      BACKUP_DIR: '/b-env',
      KEEP_BACKUPS: '5',
      BACKUP_ENCRYPTION_KEY_FILE: '/k-env',
      INITIAL_CLUSTER_TOKEN: 't-env',
    };
    expect(resolve(base, env)).toMatchObject({
      backupDir: '/b-env',
      keepBackups: 5,
      backupKeyFile: '/k-env',
      initialClusterToken: 't-env',
    });
    expect(
      resolve(
        { ...base, backupDir: '/b', keepBackups: 1, backupEncryptionKeyFile: '/k', initialClusterToken: 't' },
        env,
      ),
    ).toMatchObject({ backupDir: '/b', keepBackups: 1, backupKeyFile: '/k', initialClusterToken: 't' });
    expect(resolve(base, { BACKUP_DIR: '', KEEP_BACKUPS: '' })).toMatchObject({
      backupDir: '/var/etcd/data.backups',
      keepBackups: 3,
    });
  });

  it('takes the cluster token from the etcd flags, then ETCD_INITIAL_CLUSTER_TOKEN', () => {
    expect(
      resolve({ ...base, etcdArgs: ['--initial-cluster-token=k8s'] }, { ETCD_INITIAL_CLUSTER_TOKEN: 'e' })
        .initialClusterToken,
    ).toBe('k8s');
    expect(resolve(base, { ETCD_INITIAL_CLUSTER_TOKEN: 'e' }).initialClusterToken).toBe('e');
  });

  it.each([
    [{ backupDir: '/var/etcd/data' }, /inside the data dir/],
    [{ backupDir: '/var/etcd/data/backups' }, /inside the data dir/],
    [{ backupDir: '/var/etcd/data/../data/x' }, /inside the data dir/],
    [{ keepBackups: 0 }, /--keep-backups must be a whole number of backups to keep, 1 or more/],
    [{ keepBackups: 1.5 }, /--keep-backups must be/],
  ] as const)('refuses %o', (flags, message) => {
    expect(() => resolve({ ...base, ...flags })).toThrow(message);
  });

  it('stores backups uncompressed unless told zstd; refuses any other codec, naming where it came from', () => {
    expect(resolve(base).backupCompression).toBe('none');
    expect(resolve(base, { BACKUP_COMPRESSION: 'zstd' }).backupCompression).toBe('zstd');
    expect(resolve({ ...base, backupCompression: 'none' }, { BACKUP_COMPRESSION: 'zstd' }).backupCompression).toBe(
      'none',
    );
    expect(() => resolve(base, { BACKUP_COMPRESSION: 'gzip' })).toThrow(
      /^BACKUP_COMPRESSION must be one of none, zstd \(got "gzip"\)/,
    );
    expect(() => resolve({ ...base, backupCompression: 'lz4' })).toThrow(
      /^--backup-compression must be one of none, zstd/,
    );
  });

  it('refuses a KEEP_BACKUPS that is not a count, naming the variable', () => {
    expect(() => resolve(base, { KEEP_BACKUPS: 'many' })).toThrow(/KEEP_BACKUPS must be/);
  });

  it('accepts a backup dir that merely shares a prefix with the data dir', () => {
    expect(resolve({ ...base, backupDir: '/var/etcd/data-backups' }).backupDir).toBe('/var/etcd/data-backups');
  });
});
