// TLS on the temporary etcd's client port (a lone member): ETCD_CREDS gives the server certificate
// and client certificate checks; the entrypoint speaks https with --client-ca-file and a client cert.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { clientTlsFlags, makeCerts, peerTlsFlags, type Certs } from '../helpers/certs.ts';
import { runCli } from '../helpers/cli.ts';
import { request } from '../../src/etcd/client/probe.ts';
import { planCluster, put, range, startMember, waitServing } from '../helpers/cluster.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

/** TLS on the peer port (https peer URLs) and the client port, with client certificates checked. */
const tlsFlags = (certs: Certs, name: string) => [...peerTlsFlags(certs, name), ...clientTlsFlags(certs, name)];

/** A lone member of `version` with TLS writes 10 keys. */
async function tlsData(root: string, certs: Certs, version = '3.4.23') {
  const c = await planCluster(root, 1, certs);
  const m = c.nodes[0]!;
  const p = startMember(version, c, m, tlsFlags(certs, m.name));
  await waitServing(m.clientUrl, c.tls, version, 30_000, p);
  for (let i = 0; i < 10; i++) expect(await put(m.clientUrl, version, c.tls, `/registry/k${i}`, `v${i}`)).toBe(true);
  const before = await range(m.clientUrl, version, c.tls, '/registry/');
  await p.stop();
  await fs.writeFile(path.join(m.dataDir, 'version.txt'), `${version}/etcd3`);
  return { c, m, before };
}

describe('client TLS to the temporary etcd', () => {
  it('upgrades a lone member whose ETCD_CREDS turns on client TLS with client certificate checks', async () => {
    const root = await tmpDir();
    const certs = await makeCerts(path.join(root, 'certs'), ['m1', 'client']);
    const { c, m, before } = await tlsData(root, certs);
    const r = await runCli(
      [
        '--data-dir',
        m.dataDir,
        '--target-version',
        '3.5.30',
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
        String(await freePort()),
        '--client-ca-file',
        certs.ca,
      ],
      {
        ETCD_CREDS: tlsFlags(certs, m.name).join(' '),
        CLIENT_CERT_FILE: certs.crt('client'),
        CLIENT_KEY_FILE: certs.key('client'),
      },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/1 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/m);
    expect(await fs.readFile(path.join(m.dataDir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
    const p = startMember('3.5.30', c, m, tlsFlags(certs, m.name));
    await waitServing(m.clientUrl, c.tls, '3.5.30', 30_000, p);
    expect(await range(m.clientUrl, '3.5.30', c.tls, '/registry/')).toEqual(before);
  });

  it('does not trust a server certificate from another CA: the step fails and version.txt stays', async () => {
    const root = await tmpDir();
    const certs = await makeCerts(path.join(root, 'certs'), ['m1', 'client']);
    const other = await makeCerts(path.join(root, 'other'), ['client']);
    const { c, m } = await tlsData(root, certs);
    const r = await runCli(
      [
        '--data-dir',
        m.dataDir,
        '--target-version',
        '3.5.30',
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
        String(await freePort()),
        '--step-timeout',
        '3',
        '--client-ca-file',
        other.ca,
        '--client-cert-file',
        certs.crt('client'),
        '--client-key-file',
        certs.key('client'),
      ],
      { ETCD_CREDS: tlsFlags(certs, m.name).join(' ') },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      joinedRegex(
        /etcd 3\.5\.30 was not ready within 3 s \(last: .*(certificate|self.signed).*\)/,
        /.*version\.txt says 3\.4\.23\/etcd3/s,
      ),
    );
    expect(await fs.readFile(path.join(m.dataDir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
  });
});

describe('client TLS in the steps that rebuild data (a lone member)', () => {
  const migrate = async (
    certs: Certs,
    m: { name: string; dataDir: string; peerUrl: string },
    initialCluster: string,
    target: string[],
  ) =>
    runCli(
      [
        '--data-dir',
        m.dataDir,
        ...target,
        '--bin-dir',
        BIN_DIR,
        '--name',
        m.name,
        '--initial-cluster',
        initialCluster,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--port',
        String(await freePort()),
        '--client-ca-file',
        certs.ca,
        '--client-cert-file',
        certs.crt('client'),
        '--client-key-file',
        certs.key('client'),
      ],
      { ETCD_CREDS: tlsFlags(certs, m.name).join(' ') },
    );

  it('downgrades 3.5.30 -> 3.4.23 over https (snapshot, key counts and hashes with client certificates)', async () => {
    const root = await tmpDir();
    const certs = await makeCerts(path.join(root, 'certs'), ['m1', 'client']);
    const { c, m, before } = await tlsData(root, certs, '3.5.30');
    const r = await migrate(certs, m, c.initialCluster, ['--target-version', '3.4.23']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 1\/1 downgrade 3\.5\.30\/etcd3 -> 3\.4\.23\/etcd3: .+, [\d.]+ s$/m);
    const q = startMember('3.4.23', c, m, tlsFlags(certs, m.name));
    await waitServing(m.clientUrl, c.tls, '3.4.23', 30_000, q);
    expect(await range(m.clientUrl, '3.4.23', c.tls, '/registry/')).toEqual(before);
  });

  it('converts 3.3.25 etcd2 data to etcd3 through https (v2 reads and writes, leases)', async () => {
    const root = await tmpDir();
    const certs = await makeCerts(path.join(root, 'certs'), ['m1', 'client']);
    const c = await planCluster(root, 1, certs);
    const m = c.nodes[0]!;
    const p = startMember('3.3.25', c, m, tlsFlags(certs, m.name));
    await waitServing(m.clientUrl, c.tls, '3.3.25', 30_000, p);
    for (let i = 0; i < 10; i++) {
      const ttl = i < 3 ? '?ttl=3600' : '';
      const w = await request(m.clientUrl, 'PUT', `/v2/keys/registry/pods/p${i}${ttl}`, `value=v${i}`, 5000, c.tls);
      expect(w.status, w.body).toBe(201);
    }
    await p.stop();
    await fs.writeFile(path.join(m.dataDir, 'version.txt'), '3.3.25/etcd2');
    const r = await migrate(certs, m, c.initialCluster, ['--target-version', '3.4.23', '--target-storage', 'etcd3']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/convert 3\.3\.25\/etcd2 -> 3\.3\.25\/etcd3/);
    const q = startMember('3.4.23', c, m, tlsFlags(certs, m.name));
    await waitServing(m.clientUrl, c.tls, '3.4.23', 30_000, q);
    const after = await range(m.clientUrl, '3.4.23', c.tls, '/registry/');
    expect(after.map((kv) => `${kv.key}=${kv.value}`).sort()).toEqual(
      [...Array(10).keys()].map((i) => `/registry/pods/p${i}=v${i}`).sort(),
    );
    expect(after.filter((kv) => kv.lease !== '0')).toHaveLength(3);
  });
});
