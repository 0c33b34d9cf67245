// Client TLS material for the temporary etcd: the files read and checked before anything changes,
// and the options of an https request (loaded only when a step will run).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import tls from 'node:tls';
import { UsageError } from '../../errors.ts';
import type { ClientTls, ClientTlsFiles } from './config.ts';

const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/** Reads and checks the files before anything changes; every problem is one UsageError line. */
export async function loadClientTls(files: ClientTlsFiles | undefined): Promise<ClientTls | undefined> {
  if (!files) return undefined;
  const read = async (p: string, what: string, from: string): Promise<Buffer> => {
    try {
      return await fs.readFile(p);
    } catch (e) {
      throw new UsageError(
        `${what} ${p} (${from}) cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
          'fix the path or its permissions',
      );
    }
  };
  const cert = (pem: Buffer, p: string, what: string, from: string): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new UsageError(`${what} ${p} (${from}) is not a PEM certificate`);
    }
  };
  const server = cert(
    await read(files.serverCertFile, 'the server certificate', 'ETCD_CREDS --cert-file'),
    files.serverCertFile,
    'the server certificate',
    'ETCD_CREDS --cert-file',
  );
  if (!server.checkIP('127.0.0.1') && !server.checkHost('localhost')) {
    throw new UsageError(
      `the server certificate ${files.serverCertFile} (ETCD_CREDS --cert-file) ` +
        'names neither 127.0.0.1 nor localhost, but the temporary etcd serves on 127.0.0.1 only; ' +
        'add IP:127.0.0.1 to its subjectAltName',
    );
  }
  // With client certificate checks, etcd's own JSON gateway presents the server certificate as a client
  // (measured: 3.3-3.5).
  if (files.clientAuth && server.keyUsage && !server.keyUsage.includes(CLIENT_AUTH_EKU)) {
    throw new UsageError(
      `the server certificate ${files.serverCertFile} (ETCD_CREDS --cert-file) does not allow client auth, ` +
        "but with --client-cert-auth etcd's HTTP gateway presents it as a client to itself; " +
        'issue it with extendedKeyUsage serverAuth,clientAuth',
    );
  }
  const ca = await read(files.caFile, 'the CA file', '--client-ca-file');
  if (!ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`the CA file ${files.caFile} (--client-ca-file) holds no PEM certificate`);
  if (!files.certFile || !files.keyFile) return { ca, caFile: files.caFile };
  const certPem = await read(files.certFile, 'the client certificate', '--client-cert-file');
  cert(certPem, files.certFile, 'the client certificate', '--client-cert-file');
  const key = await read(files.keyFile, 'the client key', '--client-key-file');
  try {
    createPrivateKey(key);
  } catch {
    throw new UsageError(
      `the client key ${files.keyFile} (--client-key-file) is not a PEM private key without a passphrase`,
    );
  }
  return { ca, cert: certPem, key, caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile };
}

/**
 * Options for https.request to the temporary etcd: the chain is verified against the CA, and the
 * name must be 127.0.0.1 or localhost (the address is always loopback).
 */
export function httpsOptions(t: ClientTls): {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  checkServerIdentity: typeof tls.checkServerIdentity;
} {
  return {
    ca: t.ca,
    cert: t.cert,
    key: t.key,
    checkServerIdentity: (_host, c) =>
      tls.checkServerIdentity('127.0.0.1', c) === undefined ? undefined : tls.checkServerIdentity('localhost', c),
  };
}
