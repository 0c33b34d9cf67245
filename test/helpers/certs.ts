// Certificates made at test time with openssl: a CA, one certificate per name (server and client
// auth, subjectAltName 127.0.0.1 and localhost), all EC P-256 and valid for two days.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface Certs {
  dir: string;
  ca: string;
  crt: (name: string) => string;
  key: (name: string) => string;
}

export interface CertOptions {
  /** extendedKeyUsage of the certificates (default: serverAuth,clientAuth). */
  usage?: string;
  /** subjectAltName (default: IP:127.0.0.1,DNS:localhost). */
  san?: string;
}

export async function makeCerts(dir: string, names: readonly string[], o: CertOptions = {}): Promise<Certs> {
  await fs.mkdir(dir, { recursive: true });
  const p = (f: string) => path.join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await execa('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=etcd-migrate-test-ca',
  ]);
  await fs.writeFile(
    p('ext.cnf'),
    `subjectAltName=${o.san ?? 'IP:127.0.0.1,DNS:localhost'}\nextendedKeyUsage=${o.usage ?? 'serverAuth,clientAuth'}\n`,
  );
  for (const n of names) {
    await execa('openssl', ['req', ...ec, '-keyout', p(`${n}.key`), '-out', p(`${n}.csr`), '-subj', `/CN=${n}`]);
    await execa('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${n}.csr`),
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-out',
      p(`${n}.crt`),
      '-days',
      '2',
      '-extfile',
      p('ext.cnf'),
    ]);
  }
  return { dir, ca: p('ca.crt'), crt: (n) => p(`${n}.crt`), key: (n) => p(`${n}.key`) };
}

/** etcd flags for TLS between peers (what ETCD_CREDS carried upstream). */
export function peerTlsFlags(c: Certs, name: string): string[] {
  return [
    '--peer-cert-file',
    c.crt(name),
    '--peer-key-file',
    c.key(name),
    '--peer-trusted-ca-file',
    c.ca,
    '--peer-client-cert-auth',
  ];
}

/** etcd flags for TLS on the client port, with client certificates checked. */
export function clientTlsFlags(c: Certs, name: string): string[] {
  return ['--cert-file', c.crt(name), '--key-file', c.key(name), '--trusted-ca-file', c.ca, '--client-cert-auth'];
}
