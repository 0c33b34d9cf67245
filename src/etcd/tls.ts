// TLS on the temporary etcd's client port. When ETCD_CREDS gives the server certificate
// (--cert-file/--key-file), the temporary etcd serves https://127.0.0.1:<port> and this tool's own
// requests verify it with --client-ca-file and, when the server checks clients (--client-cert-auth,
// or --trusted-ca-file, which etcd 3.5 enforces on its own), present --client-cert-file/--client-key-file.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import tls from 'node:tls';
import { UsageError } from '../errors.ts';

/** Where the client side's files are; undefined when the temporary etcd speaks plain http. */
export interface ClientTlsFiles {
  /** The temporary etcd's server certificate (ETCD_CREDS --cert-file), checked before a start. */
  serverCertFile: string;
  caFile: string;
  certFile: string | undefined;
  keyFile: string | undefined;
  /** The server demands a client certificate. */
  clientAuth: boolean;
}

/** The loaded material for https requests, and the files for etcdctl. */
export interface ClientTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

export interface ClientTlsFlags {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

const FLAGS = '--client-ca-file/--client-cert-file/--client-key-file (CLIENT_CA_FILE/CLIENT_CERT_FILE/CLIENT_KEY_FILE)';

/**
 * Pure: decides from ETCD_CREDS and the client flags whether the temporary etcd speaks TLS, and
 * checks they agree. `flagValue` reads `--name value` / `--name=value` (options.ts's).
 */
export function resolveClientTls(extraArgs: readonly string[], f: ClientTlsFlags, flagValue: (args: readonly string[], name: string) => string | undefined): ClientTlsFiles | undefined {
  const serverCert = flagValue(extraArgs, 'cert-file');
  const serverKey = flagValue(extraArgs, 'key-file');
  if (extraArgs.some((a) => /^--?auto-tls(=true)?$/.test(a))) {
    throw new UsageError('ETCD_CREDS has --auto-tls: the temporary etcd would serve a self-signed certificate that cannot be verified; give --cert-file and --key-file in ETCD_CREDS and --client-ca-file instead (--peer-auto-tls is fine)');
  }
  if ((serverCert === undefined) !== (serverKey === undefined)) {
    throw new UsageError(`ETCD_CREDS gives ${serverCert === undefined ? '--key-file without --cert-file' : '--cert-file without --key-file'}; give both (the temporary etcd's client certificate and key) or neither`);
  }
  if ((f.certFile === undefined) !== (f.keyFile === undefined)) {
    throw new UsageError(`${f.certFile === undefined ? '--client-key-file is given without --client-cert-file' : '--client-cert-file is given without --client-key-file'}; give both or neither`);
  }
  if (serverCert === undefined) {
    if (f.caFile !== undefined || f.certFile !== undefined) {
      throw new UsageError(`${FLAGS} are given, but ETCD_CREDS has no --cert-file/--key-file, so the temporary etcd serves plain http on 127.0.0.1; add the server certificate to ETCD_CREDS or drop the client options`);
    }
    return undefined;
  }
  const clientAuth = extraArgs.some((a) => /^--?client-cert-auth(=true)?$/.test(a)) || flagValue(extraArgs, 'trusted-ca-file') !== undefined;
  if (f.caFile === undefined) {
    throw new UsageError('ETCD_CREDS gives --cert-file, so the temporary etcd serves https on 127.0.0.1; pass --client-ca-file (or CLIENT_CA_FILE): the CA that signed that certificate');
  }
  if (clientAuth && f.certFile === undefined) {
    throw new UsageError('ETCD_CREDS makes the temporary etcd check client certificates (--client-cert-auth or --trusted-ca-file); pass --client-cert-file and --client-key-file (or CLIENT_CERT_FILE and CLIENT_KEY_FILE): a certificate that CA trusts');
  }
  return { serverCertFile: serverCert!, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, clientAuth };
}

const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/** Reads and checks the files before anything changes; every problem is one UsageError line. */
export async function loadClientTls(files: ClientTlsFiles | undefined): Promise<ClientTls | undefined> {
  if (!files) return undefined;
  const read = async (p: string, what: string, from: string): Promise<Buffer> => {
    try {
      return await fs.readFile(p);
    } catch (e) {
      throw new UsageError(`${what} ${p} (${from}) cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); fix the path or its permissions`);
    }
  };
  const cert = (pem: Buffer, p: string, what: string, from: string): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new UsageError(`${what} ${p} (${from}) is not a PEM certificate`);
    }
  };
  const server = cert(await read(files.serverCertFile, 'the server certificate', 'ETCD_CREDS --cert-file'), files.serverCertFile, 'the server certificate', 'ETCD_CREDS --cert-file');
  if (!server.checkIP('127.0.0.1') && !server.checkHost('localhost')) {
    throw new UsageError(`the server certificate ${files.serverCertFile} (ETCD_CREDS --cert-file) names neither 127.0.0.1 nor localhost, but the temporary etcd serves on 127.0.0.1 only; add IP:127.0.0.1 to its subjectAltName`);
  }
  // With client certificate checks, etcd's own JSON gateway presents the server certificate as a client (measured: 3.3-3.5).
  if (files.clientAuth && server.keyUsage && !server.keyUsage.includes(CLIENT_AUTH_EKU)) {
    throw new UsageError(`the server certificate ${files.serverCertFile} (ETCD_CREDS --cert-file) does not allow client auth, but with --client-cert-auth etcd's HTTP gateway presents it as a client to itself; issue it with extendedKeyUsage serverAuth,clientAuth`);
  }
  const ca = await read(files.caFile, 'the CA file', '--client-ca-file');
  if (!ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`the CA file ${files.caFile} (--client-ca-file) holds no PEM certificate`);
  if (!files.certFile || !files.keyFile) return { ca, caFile: files.caFile };
  const certPem = await read(files.certFile, 'the client certificate', '--client-cert-file');
  cert(certPem, files.certFile, 'the client certificate', '--client-cert-file');
  const key = await read(files.keyFile, 'the client key', '--client-key-file');
  try {
    createPrivateKey(key);
  } catch {
    throw new UsageError(`the client key ${files.keyFile} (--client-key-file) is not a PEM private key without a passphrase`);
  }
  return { ca, cert: certPem, key, caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile };
}

/** etcdctl's TLS flags for the temporary etcd (none for plain http). */
export function etcdctlTls(t: ClientTls | undefined): { cacert?: string; cert?: string; key?: string } {
  return t ? { cacert: t.caFile, cert: t.certFile, key: t.keyFile } : {};
}

export function etcdctlTlsArgs(t: ClientTls | undefined): string[] {
  return Object.entries(etcdctlTls(t)).flatMap(([k, v]) => (v ? [`--${k}`, v] : []));
}

/**
 * Options for https.request to the temporary etcd: the chain is verified against the CA, and the
 * name must be 127.0.0.1 or localhost (the address is always loopback).
 */
export function httpsOptions(t: ClientTls): { ca: Buffer; cert?: Buffer; key?: Buffer; checkServerIdentity: typeof tls.checkServerIdentity } {
  return {
    ca: t.ca, cert: t.cert, key: t.key,
    checkServerIdentity: (_host, c) => (tls.checkServerIdentity('127.0.0.1', c) === undefined ? undefined : tls.checkServerIdentity('localhost', c)),
  };
}
