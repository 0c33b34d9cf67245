// TLS on the temporary etcd's client port. When ETCD_CREDS gives the server certificate
// (--cert-file/--key-file), the temporary etcd serves https://127.0.0.1:<port> and this tool's own
// requests verify it with --client-ca-file and, when the server checks clients (--client-cert-auth,
// or --trusted-ca-file, which etcd 3.5 enforces on its own), present --client-cert-file/--client-key-file.
// Pure: no I/O (the files are read and checked by load.ts, when a step will run).
import { UsageError } from '../../errors.ts';

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
export function resolveClientTls(
  extraArgs: readonly string[],
  f: ClientTlsFlags,
  flagValue: (args: readonly string[], name: string) => string | undefined,
): ClientTlsFiles | undefined {
  const serverCert = flagValue(extraArgs, 'cert-file');
  const serverKey = flagValue(extraArgs, 'key-file');
  if (extraArgs.some((a) => /^--?auto-tls(=true)?$/.test(a))) {
    throw new UsageError(
      'ETCD_CREDS has --auto-tls: the temporary etcd would serve a self-signed certificate that cannot be verified; ' +
        'give --cert-file and --key-file in ETCD_CREDS and --client-ca-file instead (--peer-auto-tls is fine)',
    );
  }
  if ((serverCert === undefined) !== (serverKey === undefined)) {
    const half = serverCert === undefined ? '--key-file without --cert-file' : '--cert-file without --key-file';
    throw new UsageError(
      `ETCD_CREDS gives ${half}; give both (the temporary etcd's client certificate and key) or neither`,
    );
  }
  if ((f.certFile === undefined) !== (f.keyFile === undefined)) {
    const half =
      f.certFile === undefined
        ? '--client-key-file is given without --client-cert-file'
        : '--client-cert-file is given without --client-key-file';
    throw new UsageError(`${half}; give both or neither`);
  }
  if (serverCert === undefined) {
    if (f.caFile !== undefined || f.certFile !== undefined) {
      throw new UsageError(
        `${FLAGS} are given, but ETCD_CREDS has no --cert-file/--key-file, ` +
          'so the temporary etcd serves plain http on 127.0.0.1; ' +
          'add the server certificate to ETCD_CREDS or drop the client options',
      );
    }
    return undefined;
  }
  const clientAuth =
    extraArgs.some((a) => /^--?client-cert-auth(=true)?$/.test(a)) ||
    flagValue(extraArgs, 'trusted-ca-file') !== undefined;
  if (f.caFile === undefined) {
    throw new UsageError(
      'ETCD_CREDS gives --cert-file, so the temporary etcd serves https on 127.0.0.1; ' +
        'pass --client-ca-file (or CLIENT_CA_FILE): the CA that signed that certificate',
    );
  }
  if (clientAuth && f.certFile === undefined) {
    throw new UsageError(
      'ETCD_CREDS makes the temporary etcd check client certificates (--client-cert-auth or --trusted-ca-file); ' +
        'pass --client-cert-file and --client-key-file (or CLIENT_CERT_FILE and CLIENT_KEY_FILE): ' +
        'a certificate that CA trusts',
    );
  }
  return { serverCertFile: serverCert!, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, clientAuth };
}

/** etcdctl's TLS flags for the temporary etcd (none for plain http). */
export function etcdctlTls(t: ClientTls | undefined): { cacert?: string; cert?: string; key?: string } {
  return t ? { cacert: t.caFile, cert: t.certFile, key: t.keyFile } : {};
}

export function etcdctlTlsArgs(t: ClientTls | undefined): string[] {
  return Object.entries(etcdctlTls(t)).flatMap(([k, v]) => (v ? [`--${k}`, v] : []));
}
