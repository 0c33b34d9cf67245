// When is a temporary etcd done? Pure: what it reported in, what is still missing out.
//
// A lone member (as before): its cluster version is the step's minor, then a probe write commits.
// From 3.6 on, the storage version (the db's schema, which etcd moves after the cluster version)
// must have reached the same minor too: only then is the data the next minor's.
// A member of a cluster: it answers as the etcd version that was started, it has joined (it is
// listed under its name with the hidden client URL, published through raft), the cluster version
// is at least `clusterAtLeast` (cluster.ts decides which), and then a probe write commits, which
// needs a majority of the members.
import { compareMinor, fmt, fmtMinor, type Version } from '../../version.ts';

const V3_6: Version = { major: 3, minor: 6, patch: 0 };

export interface Expectation {
  version: Version;
  /** The lowest cluster version that counts; only for etcd 3.x. */
  clusterAtLeast: Version;
  /** In a cluster: how many members, and the name that must be listed with the hidden client URL. */
  cluster?: { members: number; name: string; clientUrl: string };
}

export interface Seen {
  /** undefined: no answer on the client port (yet). */
  server?: string;
  cluster?: Version;
  /** 3.6+: the storage version (undefined until etcd has written it). */
  storage?: Version;
  /** Cluster only: undefined when not asked. */
  joined?: boolean;
}

/** What is still missing before the probe write, or undefined when only the write is left. */
export function missing(e: Expectation, s: Seen): string | undefined {
  if (s.server === undefined) {
    return e.cluster
      ? `no answer yet (a member of ${e.cluster.members} serves only once ` +
          `${Math.floor(e.cluster.members / 2) + 1} members run and have elected a leader)`
      : 'no answer yet';
  }
  if (e.cluster && s.server !== fmt(e.version))
    return `the hidden client port answers as etcd ${s.server || 'of no version'}, not ${fmt(e.version)}`;
  if (e.version.major >= 3 && (!s.cluster || compareMinor(s.cluster, e.clusterAtLeast) < 0)) {
    const cv = `cluster version ${s.cluster ? fmtMinor(s.cluster) : 'not decided'}`;
    return e.cluster
      ? `${cv}, waiting for ${fmtMinor(e.clusterAtLeast)}, ` +
          `which etcd sets only once every member runs etcd ${fmtMinor(e.clusterAtLeast)} or newer ` +
          "(start the other members' entrypoints; a rolling upgrade moves one minor at a time)"
      : cv;
  }
  if (compareMinor(e.clusterAtLeast, V3_6) >= 0 && (!s.storage || compareMinor(s.storage, e.clusterAtLeast) < 0)) {
    return (
      `storage version ${s.storage ? fmtMinor(s.storage) : 'not written'}, ` +
      `waiting for ${fmtMinor(e.clusterAtLeast)}`
    );
  }
  if (e.cluster && s.joined === false)
    return `member ${e.cluster.name} is not yet listed with its client URL ${e.cluster.clientUrl}`;
  return undefined;
}
