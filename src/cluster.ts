// Multi-member clusters: what a step may wait for, and which plans a member of one cannot run alone.
// Pure: no I/O. The members come from INITIAL_CLUSTER, as they do for etcd itself.
import { UsageError } from './errors.ts';
import { describe, type Step } from './plan.ts';
import { compareMinor, fmt, fmtData, fmtMinor, type DataVersion, type Version } from './version.ts';

/** The member names INITIAL_CLUSTER lists (one entry per peer URL; a name may repeat). */
export function memberNames(initialCluster: string): string[] {
  return [...new Set(initialCluster.split(',').map((e) => e.slice(0, e.indexOf('='))))];
}

export const isCluster = (initialCluster: string): boolean => memberNames(initialCluster).length > 1;

/**
 * The lowest cluster version at which a temporary etcd of step `s` is done.
 *
 * etcd moves the cluster version to a minor only when EVERY member runs that minor or newer (the
 * leader polls each member's version; measured: it jumps straight from 3.3 to 3.5 when all three
 * members run 3.5). So:
 * - a lone member waits for its own minor, as before;
 * - a cluster member leaving this minor for a higher one later in the plan waits for its own minor
 *   too: it must not run the next minor before the whole cluster ran this one, or the cluster
 *   version would skip a minor. The members' steps meet here;
 * - a cluster member at its last minor waits only for the minor it came from: in a rolling upgrade
 *   the others keep serving the old minor, and the cluster version moves only after the last
 *   member runs the new one, which cannot happen while this member waits.
 */
export function clusterVersionNeeded(s: Step, target: Version, cluster: boolean): Version {
  if (!cluster || compareMinor(target, s.to.version) > 0) return s.to.version;
  return s.from.version;
}

/**
 * A storage conversion (v2 -> v3, or the rollback to etcd2) rebuilds the member's data offline and
 * makes a new one-member cluster, so a member of a cluster cannot run it on its own: refused before
 * anything changes, naming the procedure (docs/clusters.md). Downgrades are refused by their
 * runner's check (steps/downgrade.ts), which names theirs: one snapshot restored on every member.
 */
export function checkClusterPlan(steps: readonly Step[], initialCluster: string, target: DataVersion): void {
  const n = memberNames(initialCluster).length;
  if (n < 2) return;
  const s = steps.find((x) => x.kind === 'v2-to-v3' || x.kind === 'v3-to-v2');
  if (!s) return;
  throw new UsageError(
    `the plan to ${fmtData(target)} holds a storage conversion (${describe(s).split(':')[0]}), ` +
      `which a member of a ${n}-member cluster (INITIAL_CLUSTER) cannot run on its own; ` +
      'stop the cluster, make one member a cluster of its own (etcd --force-new-cluster), ' +
      'migrate it with INITIAL_CLUSTER naming only itself, ' +
      'then add the other members back with empty data dirs (docs/clusters.md)',
  );
}

/** One line for the log before a cluster member's first step: what its steps wait for. */
export function clusterNote(steps: readonly Step[], target: Version, initialCluster: string): string | undefined {
  const names = memberNames(initialCluster);
  if (names.length < 2 || steps.length === 0) return undefined;
  const meets = steps.filter((s) => compareMinor(clusterVersionNeeded(s, target, true), s.from.version) > 0);
  const last = steps.at(-1)!;
  const parts = [
    `member of a ${names.length}-member cluster (${names.join(', ')}): ` +
      'each temporary etcd needs a majority of the members up (running their entrypoints or etcd)',
  ];
  if (meets.length)
    parts.push(
      `${meets.map((s) => `etcd ${fmt(s.to.version)}`).join(', ')} ` +
        'also wait(s) until the cluster version is its minor, ' +
        'which needs every member on it (all members migrate together)',
    );
  parts.push(
    `etcd ${fmt(last.to.version)} is done when a write commits ` +
      `at cluster version ${fmtMinor(clusterVersionNeeded(last, target, true))} or newer`,
  );
  return parts.join('; ');
}
