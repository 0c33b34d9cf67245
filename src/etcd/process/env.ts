// The environment a child etcd or etcdctl gets. etcd reads every ETCD_<FLAG> variable as a flag and
// refuses one given both ways, so a variable is dropped where the command line gives its flag.

/**
 * In the environment of every temporary etcd and etcdctl migrate this tool starts: what leftovers.ts
 * may stop after a crash. Not ETCD_*, which etcd would read as a flag.
 */
export const TEMPORARY_MARK = 'ETCDMIGRATE_TEMPORARY';

/** Variables this tool reads that are not etcd flags, and its mark: no child gets them from the caller. */
const OURS = ['ETCD_DATA_PREFIX', 'ETCD_CREDS', 'ETCD_HOSTNAME', TEMPORARY_MARK];

export function childEnv(env: NodeJS.ProcessEnv, args: readonly string[], prefix = 'ETCD_'): Record<string, string> {
  const given = new Set<string>();
  for (const a of args) {
    const m = /^--?([a-z0-9-]+)/.exec(a);
    if (m) given.add(prefix + m[1]!.toUpperCase().replace(/-/g, '_'));
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || given.has(k) || OURS.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * The ETCD_* variables a temporary etcd inherits from the pod (docs/reliability.md lists them):
 * TLS, logging, quotas and limits, auth tokens, raft and backend tuning. The others are dropped,
 * above all every listener, advertised or cluster URL, discovery, proxy, metrics and gateway
 * setting: a temporary etcd serves on 127.0.0.1 only, and its flags say how.
 */
export const TEMPORARY_ETCD_VARS: ReadonlySet<string> = new Set(
  [
    // TLS (client and peer)
    'CERT_FILE',
    'KEY_FILE',
    'CLIENT_CERT_AUTH',
    'CLIENT_CRL_FILE',
    'CLIENT_CERT_ALLOWED_HOSTNAME',
    'TRUSTED_CA_FILE',
    'CLIENT_CERT_FILE',
    'CLIENT_KEY_FILE',
    'PEER_CERT_FILE',
    'PEER_KEY_FILE',
    'PEER_CLIENT_CERT_AUTH',
    'PEER_TRUSTED_CA_FILE',
    'PEER_CRL_FILE',
    'PEER_CERT_ALLOWED_CN',
    'PEER_CERT_ALLOWED_HOSTNAME',
    'PEER_AUTO_TLS',
    'PEER_CLIENT_CERT_FILE',
    'PEER_CLIENT_KEY_FILE',
    'CIPHER_SUITES',
    'TLS_MIN_VERSION',
    'TLS_MAX_VERSION',
    'SELF_SIGNED_CERT_VALIDITY',
    // logging
    'LOGGER',
    'LOG_LEVEL',
    'LOG_OUTPUTS',
    'LOG_FORMAT',
    'DEBUG',
    'LOG_PACKAGE_LEVELS',
    'ENABLE_LOG_ROTATION',
    'LOG_ROTATION_CONFIG_JSON',
    // quotas and limits
    'QUOTA_BACKEND_BYTES',
    'MAX_REQUEST_BYTES',
    'MAX_TXN_OPS',
    'MAX_SNAPSHOTS',
    'MAX_WALS',
    'MAX_CONCURRENT_STREAMS',
    'MAX_LEARNERS',
    // auth
    'AUTH_TOKEN',
    'AUTH_TOKEN_TTL',
    'BCRYPT_COST',
    // raft, backend and runtime tuning
    'SNAPSHOT_COUNT',
    'HEARTBEAT_INTERVAL',
    'ELECTION_TIMEOUT',
    'INITIAL_ELECTION_TICK_ADVANCE',
    'PRE_VOTE',
    'STRICT_RECONFIG_CHECK',
    'BACKEND_BATCH_INTERVAL',
    'BACKEND_BATCH_LIMIT',
    'BACKEND_BBOLT_FREELIST_TYPE',
    'AUTO_COMPACTION_MODE',
    'AUTO_COMPACTION_RETENTION',
    'GRPC_KEEPALIVE_MIN_TIME',
    'GRPC_KEEPALIVE_INTERVAL',
    'GRPC_KEEPALIVE_TIMEOUT',
    'SOCKET_REUSE_PORT',
    'SOCKET_REUSE_ADDRESS',
    'UNSUPPORTED_ARCH',
    'ENABLE_PPROF',
  ].map((v) => `ETCD_${v}`),
);

/**
 * etcd's experimental tuning flags are kept too, but not tracing (it sends data to an address) nor
 * v2v3 (3.3-3.4 would serve the v2 API from the v3 store, where the v2 steps read and write).
 */
const isAllowedExperimental = (k: string): boolean =>
  k.startsWith('ETCD_EXPERIMENTAL_') && !k.includes('TRACING') && !k.includes('V2V3');

/** A temporary etcd's environment: childEnv's, its ETCD_* variables cut to TEMPORARY_ETCD_VARS, and TEMPORARY_MARK. */
export function temporaryEtcdEnv(env: NodeJS.ProcessEnv, args: readonly string[]): Record<string, string> {
  const out = childEnv(env, args);
  for (const k of Object.keys(out)) {
    if (k.startsWith('ETCD_') && !TEMPORARY_ETCD_VARS.has(k) && !isAllowedExperimental(k)) delete out[k];
  }
  out[TEMPORARY_MARK] = '1';
  return out;
}
