// Options for clusters and TLS: the step timeout and the client certificate options (flag -> env -> default).
import { describe, expect, it } from 'vitest';
import { resolveOptions, type Env, type Flags } from '../../src/options.ts';

const base: Flags = { dataDir: '/d', targetVersion: '3.5.30', name: 'a' };
const resolve = (flags: Flags, env: Env = {}) => resolveOptions(flags, env, { hostname: 'node1' });
const THREE = 'a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380';
const SERVER = '--cert-file=/s.crt --key-file=/s.key --client-cert-auth --peer-cert-file=/p.crt';

describe('step timeout', () => {
  it('120 s for a lone member, 600 s in a cluster, whose members meet', () => {
    expect(resolve(base).stepTimeoutMs).toBe(120_000);
    expect(resolve(base, { INITIAL_CLUSTER: THREE }).stepTimeoutMs).toBe(600_000);
  });

  it('STEP_TIMEOUT, and --step-timeout over it, in seconds', () => {
    expect(resolve(base, { STEP_TIMEOUT: '30' }).stepTimeoutMs).toBe(30_000);
    expect(resolve(base, { STEP_TIMEOUT: '' }).stepTimeoutMs).toBe(120_000);
    expect(resolve({ ...base, stepTimeout: 2.5 }, { STEP_TIMEOUT: '30', INITIAL_CLUSTER: THREE }).stepTimeoutMs).toBe(
      2_500,
    );
  });

  it.each([
    [{ ...base, stepTimeout: 0 }, {}, /--step-timeout must be a number of seconds above 0 \(got 0\)/],
    [{ ...base, stepTimeout: -5 }, {}, /--step-timeout must be/],
    [base, { STEP_TIMEOUT: '2m' }, /STEP_TIMEOUT must be a number of seconds above 0 \(got 2m\)/],
  ] as const)('refuses %j %j', (flags, env, message) => expect(() => resolve(flags, env)).toThrow(message));
});

describe('client TLS options', () => {
  it('none: plain http', () => expect(resolve(base).clientTls).toBeUndefined());

  it('from the environment, with ETCD_CREDS giving the server certificate', () => {
    const o = resolve(base, {
      ETCD_CREDS: SERVER,
      CLIENT_CA_FILE: '/ca.crt',
      CLIENT_CERT_FILE: '/c.crt',
      CLIENT_KEY_FILE: '/c.key',
    });
    expect(o.clientTls).toEqual({
      serverCertFile: '/s.crt',
      caFile: '/ca.crt',
      certFile: '/c.crt',
      keyFile: '/c.key',
      clientAuth: true,
    });
  });

  it('a flag wins over its variable', () => {
    const o = resolve(
      { ...base, clientCaFile: '/flag-ca.crt', clientCertFile: '/f.crt', clientKeyFile: '/f.key' },
      { ETCD_CREDS: SERVER, CLIENT_CA_FILE: '/ca.crt', CLIENT_CERT_FILE: '/c.crt', CLIENT_KEY_FILE: '/c.key' },
    );
    expect(o.clientTls).toMatchObject({ caFile: '/flag-ca.crt', certFile: '/f.crt', keyFile: '/f.key' });
  });

  it('refuses a server certificate without a CA to check it', () => {
    expect(() => resolve(base, { ETCD_CREDS: SERVER })).toThrow(/pass --client-ca-file \(or CLIENT_CA_FILE\)/);
  });
});
