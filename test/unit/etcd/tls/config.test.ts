// src/etcd/tls/config.ts: when the temporary etcd speaks TLS, and which client options that needs.
import { describe, expect, it } from 'vitest';
import { resolveClientTls, type ClientTlsFlags } from '../../../../src/etcd/tls/config.ts';
import { UsageError } from '../../../../src/errors.ts';
import { flagValue } from '../../../../src/options.ts';

const resolve = (creds: string, f: ClientTlsFlags = {}) =>
  resolveClientTls(creds.split(/\s+/).filter(Boolean), f, flagValue);
const err = (creds: string, f: ClientTlsFlags = {}) => {
  try {
    resolve(creds, f);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('not refused');
};
const PEER = '--peer-cert-file=/p.crt --peer-key-file=/p.key --peer-trusted-ca-file=/ca.crt --peer-client-cert-auth';

describe('resolveClientTls', () => {
  it('plain http without a server certificate (peer TLS alone changes nothing)', () => {
    expect(resolve('')).toBeUndefined();
    expect(resolve(PEER)).toBeUndefined();
    expect(resolve('--peer-auto-tls')).toBeUndefined();
  });

  it('https with the server certificate, in either flag form', () => {
    expect(resolve(`${PEER} --cert-file /s.crt --key-file=/s.key`, { caFile: '/ca.crt' })).toEqual({
      serverCertFile: '/s.crt',
      caFile: '/ca.crt',
      certFile: undefined,
      keyFile: undefined,
      clientAuth: false,
    });
    expect(
      resolve('--cert-file=/s.crt --key-file=/s.key --client-cert-auth', {
        caFile: '/ca.crt',
        certFile: '/c.crt',
        keyFile: '/c.key',
      }),
    ).toEqual({ serverCertFile: '/s.crt', caFile: '/ca.crt', certFile: '/c.crt', keyFile: '/c.key', clientAuth: true });
  });

  it('needs client certificates with --client-cert-auth or --trusted-ca-file (etcd 3.5 checks with the latter)', () => {
    expect(err('--cert-file=/s.crt --key-file=/s.key --client-cert-auth', { caFile: '/ca.crt' })).toMatch(
      /pass --client-cert-file and --client-key-file/,
    );
    expect(err('--cert-file=/s.crt --key-file=/s.key --trusted-ca-file=/ca.crt', { caFile: '/ca.crt' })).toMatch(
      /pass --client-cert-file/,
    );
    expect(
      resolve('--cert-file=/s.crt --key-file=/s.key --client-cert-auth=false', { caFile: '/ca.crt' })?.clientAuth,
    ).toBe(false);
  });

  it('refuses what cannot work, naming the fix', () => {
    expect(err('--cert-file=/s.crt --key-file=/s.key')).toMatch(/pass --client-ca-file \(or CLIENT_CA_FILE\)/);
    expect(err('--cert-file=/s.crt')).toMatch(/--cert-file without --key-file; give both/);
    expect(err('--key-file=/s.key')).toMatch(/--key-file without --cert-file/);
    expect(err('', { caFile: '/ca.crt' })).toMatch(/ETCD_CREDS has no --cert-file\/--key-file/);
    expect(err('--cert-file=/s.crt --key-file=/s.key', { caFile: '/ca.crt', certFile: '/c.crt' })).toMatch(
      /--client-cert-file is given without --client-key-file/,
    );
    expect(err('--auto-tls')).toMatch(/--auto-tls/);
  });
});
