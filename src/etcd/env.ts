// The environment a child etcd or etcdctl gets. etcd reads every ETCD_<FLAG> variable as a flag and
// refuses one given both ways, so a variable is dropped where the command line gives its flag.

/**
 * In the environment of every temporary etcd and etcdctl migrate this tool starts: what stale.ts
 * may stop after a crash. Not ETCD_*, which etcd would read as a flag.
 */
export const TEMPORARY_MARK = 'ETCDMIGRATE_TEMPORARY';

/** Variables this tool reads that are not etcd flags; etcd must not see them. */
const OURS = ['ETCD_DATA_PREFIX', 'ETCD_CREDS', 'ETCD_HOSTNAME'];

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
