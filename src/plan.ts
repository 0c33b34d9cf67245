// The pure planner: from what the data dir holds to the target, which steps, in which order.
// No I/O. Every refusal is a PlanError that names what is missing and how to fix it.
import { UsageError } from './errors.ts';
import {
  compare,
  compareMinor,
  fmt,
  fmtData,
  fmtMinor,
  nextMinor,
  previousMinor,
  sameMinor,
  type DataVersion,
  type Version,
} from './version.ts';

/**
 * One step; after it succeeds version.txt holds `to`.
 * - upgrade:  start etcd `to.version` on the data until a write commits, then stop it.
 * - patch:    the same, within one minor, where the next minor needs a newer patch first.
 * - v2-to-v3: offline `etcdctl migrate` with etcd `to.version`'s tools; every TTL is left, with its
 *             absolute expiry, in the data dir's pending TTL file for an attach-ttls step.
 * - attach-ttls: start etcd `to.version` on the data and give each key of the pending TTL file a lease
 *             for what is left of its TTL, then remove the file. Last in the chain (`before` 'target'):
 *             etcd gives every lease its full TTL again whenever it starts, so each start after the
 *             grant lengthens it; there it also does the upgrade to `to` (from the minor below, or
 *             a patch) that would come just before it. Before a rollback (`before` 'rollback'), which
 *             reads the leases.
 * - v3-to-v2: read the v3 keys with etcd `read`, write them with their TTLs into a new v2 store
 *             made by etcd `to.version`, then swap it in.
 * - drop-v2:  (--drop-v2-content) a snapshot of the v3 data by etcd `snapshotWith`, restored with the
 *             same etcd: the v2 store then holds only the member, as 3.6 requires. New IDs.
 * `sealWith` (into 3.6 and 3.7): the previous minor's etcd that seals the WAL first if v2 requests
 *             the next minor cannot replay follow its last snapshot (etcd/process/seal.ts): 3.6 panics on any
 *             but the members' and version PUTs (3.4's QGETs too), 3.7 on every v2 request.
 * - downgrade: snapshot with etcd `snapshotWith`, restore with `to.version`'s tools, swap it in.
 * - etcd-downgrade: etcd's own downgrade (3.6+): on etcd `enableWith` (the current minor), enable a
 *             downgrade to `to`'s minor and wait until the cluster and storage versions show it; then
 *             start etcd `to.version` on the same data until a write commits. IDs and raft log stay.
 */
export type Step =
  | { kind: 'upgrade'; from: DataVersion; to: DataVersion; sealWith?: Version }
  | { kind: 'patch'; from: DataVersion; to: DataVersion }
  | { kind: 'v2-to-v3'; from: DataVersion; to: DataVersion }
  | { kind: 'attach-ttls'; from: DataVersion; to: DataVersion; before: 'target' | 'rollback'; sealWith?: Version }
  | { kind: 'v3-to-v2'; from: DataVersion; to: DataVersion; read: Version }
  | { kind: 'downgrade'; from: DataVersion; to: DataVersion; snapshotWith: Version }
  | { kind: 'etcd-downgrade'; from: DataVersion; to: DataVersion; enableWith: Version }
  | { kind: 'drop-v2'; from: DataVersion; to: DataVersion; snapshotWith: Version };

export type StepKind = Step['kind'];

export class PlanError extends UsageError {}

/** The newest etcd minor that serves the v2 API by default, so can run etcd2 storage. */
export const NEWEST_ETCD2_MINOR: Version = { major: 3, minor: 3, patch: 0 };
/** The newest minor whose etcdctl has `migrate` (v2 -> v3); 3.5 removed it. */
export const NEWEST_MIGRATE_MINOR: Version = { major: 3, minor: 4, patch: 0 };
/**
 * etcd's own rules for moving to a minor: the previous minor's newest bundled patch runs on the
 * data first, and must be at least `min` (`advised`: etcd's upgrade guide asks for it; said in the log).
 */
export interface PatchRule {
  min: Version;
  advised?: Version;
}
export const PATCH_BEFORE: ReadonlyMap<string, PatchRule> = new Map([
  ['3.6', { min: { major: 3, minor: 5, patch: 26 }, advised: { major: 3, minor: 5, patch: 32 } }],
  ['3.7', { min: { major: 3, minor: 6, patch: 11 } }],
]);
/** The first minor that refuses custom v2 content (keys other than the members and the version). */
export const V2_FREE_MINOR: Version = { major: 3, minor: 6, patch: 0 };
/** The first minor that cannot read a v2 request in its WAL (3.7 panics decoding one). */
export const FIRST_V2_FREE_WAL_MINOR: Version = { major: 3, minor: 7, patch: 0 };
/** The first minor that can downgrade itself (etcdctl downgrade enable); older ones go through a snapshot. */
export const FIRST_ETCD_DOWNGRADE_MINOR: Version = { major: 3, minor: 6, patch: 0 };

const FIRST_V3: Version = { major: 3, minor: 0, patch: 0 };

export interface PlanInput {
  /** The data dir holds TTLs that a v2-to-v3 step left for an attach-ttls step (an interrupted run). */
  pendingTtls?: boolean;
  /** Drop the custom v2 content that etcd 3.6 refuses, before the upgrade to 3.6. */
  dropV2?: boolean;
}

/**
 * Plans the steps that take data at `current` to `target` with the bundled versions.
 * `current` undefined means an empty data dir: nothing to migrate.
 */
export function plan(
  current: DataVersion | undefined,
  target: DataVersion,
  bundled: readonly Version[],
  input: PlanInput = {},
): Step[] {
  const b = new Bundle(bundled);
  checkStorageVersion(target, 'the target');
  if (!b.has(target.version)) {
    throw new PlanError(
      `target version ${fmt(target.version)} is not bundled (bundled: ${b.list()}); ` +
        `set TARGET_VERSION to one of them, or add etcd-${fmt(target.version)} to the bin dir`,
    );
  }
  if (!current) return [];
  checkStorageVersion(current, 'version.txt');

  const steps: Step[] = [];
  let at = current;
  // Pending TTLs belong to etcd3 data. Beside etcd2 data they are left from a conversion that was
  // undone (a failed step put back the backup taken before it): the v2 store holds the TTLs, and
  // the next conversion's swap replaces the file.
  let pending = (input.pendingTtls ?? false) && current.storage === 'etcd3';
  const push = (s: Step) => {
    steps.push(s);
    at = s.to;
  };
  // The pending TTLs become leases with etcd `version` on the data as it is at that point. Last in
  // the chain, an upgrade (or patch) to that very etcd just before it is left out: the attach step's
  // etcd starts on the data one minor below and upgrades it as it runs, one start of etcd instead of two.
  const attach = (version: Version, before: 'target' | 'rollback') => {
    const last = steps.at(-1);
    let sealWith: Version | undefined;
    if (
      before === 'target' &&
      (last?.kind === 'upgrade' || last?.kind === 'patch') &&
      compare(last.to.version, version) === 0
    ) {
      steps.pop();
      at = last.from;
      sealWith = last.kind === 'upgrade' ? last.sealWith : undefined;
    }
    push({
      kind: 'attach-ttls',
      from: at,
      to: { version, storage: 'etcd3' },
      before,
      ...(sealWith ? { sealWith } : {}),
    });
    pending = false;
  };

  if (at.storage === 'etcd2' && target.storage === 'etcd3') {
    // Convert as early as possible: at the first 3.x minor the chain reaches, before any v3 write.
    if (compareMinor(at.version, NEWEST_MIGRATE_MINOR) > 0) {
      throw new PlanError(
        `version.txt says ${fmtData(at)}, but no etcdctl newer than ${fmtMinor(NEWEST_MIGRATE_MINOR)} ` +
          'can convert etcd2 data (3.5 removed "etcdctl migrate"); ' +
          `restore a backup taken before ${fmtMinor(at.version)}, or set TARGET_STORAGE=etcd2`,
      );
    }
    if (compareMinor(target.version, at.version) < 0 || compareMinor(target.version, FIRST_V3) < 0) {
      const lowest = compareMinor(at.version, FIRST_V3) < 0 ? FIRST_V3 : at.version;
      throw new PlanError(
        `cannot convert ${fmtData(at)} to etcd3 and go down to ${fmtData(target)}; ` +
          `choose a target version at or above ${fmtMinor(lowest)}`,
      );
    }
    for (const s of upgrades(at, FIRST_V3, target, b)) push(s);
    const tool = b.newestOf(at.version, `to convert ${fmtData(at)} to etcd3 (its etcdctl migrate)`);
    push({ kind: 'v2-to-v3', from: at, to: { version: tool, storage: 'etcd3' } });
    pending = true;
  }

  if (at.storage === 'etcd3' && target.storage === 'etcd2') {
    const read = b.newestOf(at.version, `to read the etcd3 data of ${fmtData(at)}`);
    // The rollback reads each key's TTL from its lease: pending TTLs become leases first.
    if (pending) attach(read, 'rollback');
    push({ kind: 'v3-to-v2', from: at, to: target, read });
    return steps;
  }

  const c = compareMinor(target.version, at.version);
  if (c > 0) {
    for (const s of upgrades(at, target.version, target, b)) {
      if (input.dropV2 && s.kind === 'upgrade' && compareMinor(s.to.version, V2_FREE_MINOR) === 0) {
        const snapshotWith = b.newestOf(at.version, 'to drop the v2 content');
        push({ kind: 'drop-v2', from: at, to: at, snapshotWith });
      }
      push(s);
    }
  }
  if (c < 0) {
    if (at.storage === 'etcd2') {
      throw new PlanError(
        `cannot downgrade etcd2 data from ${fmtData(at)} to ${fmtData(target)}: etcd2 storage has no downgrade; ` +
          `restore a backup taken with ${fmtMinor(target.version)}`,
      );
    }
    for (const s of downgrades(at, target, b)) push(s);
  }
  // Last, with the target's etcd: only the start of the target etcd then follows the grant. A
  // downgrade keeps every key, and the pending file stays beside the data, so it waits for the end too.
  if (pending) attach(target.version, 'target');
  return steps;
}

/** Upgrades from `at` through each minor up to and including `until`'s minor. */
function upgrades(from: DataVersion, until: Version, target: DataVersion, b: Bundle): Step[] {
  const steps: Step[] = [];
  let at = from;
  while (compareMinor(at.version, until) < 0) {
    const m = nextMinor(at.version);
    const rule = PATCH_BEFORE.get(fmtMinor(m));
    if (rule) {
      const p = b.newestOf(at.version, `to upgrade to ${fmtMinor(m)}`);
      const best = compare(p, at.version) > 0 ? p : at.version;
      if (compare(best, rule.min) < 0) {
        const advised = rule.advised ? ` (${fmt(rule.advised)} or newer advised)` : '';
        throw new PlanError(
          `etcd ${fmtMinor(m)} needs ${fmtMinor(at.version)} at ${fmt(rule.min)} or newer first, ` +
            `but the newest bundled ${fmtMinor(at.version)} is ${fmt(p)}; ` +
            `bundle etcd ${fmt(rule.min)} or newer${advised}`,
        );
      }
      if (best !== at.version) {
        const to = { version: p, storage: at.storage };
        steps.push({ kind: 'patch', from: at, to });
        at = to;
      }
    }
    const version = sameMinor(m, target.version)
      ? target.version
      : b.newestOf(m, `to step from ${fmtMinor(at.version)} towards ${fmt(target.version)}, one minor at a time`);
    const to = { version, storage: at.storage };
    const seal = compareMinor(m, V2_FREE_MINOR) >= 0 && compareMinor(at.version, FIRST_V2_FREE_WAL_MINOR) < 0;
    const sealWith = seal
      ? b.newestOf(at.version, `to seal the WAL before ${fmtMinor(m)} (etcd/process/seal.ts)`)
      : undefined;
    steps.push({ kind: 'upgrade', from: at, to, ...(sealWith ? { sealWith } : {}) });
    at = to;
  }
  return steps;
}

/**
 * Downgrades one minor at a time: from 3.6 on with etcd's own downgrade, enabled by the current
 * minor's etcd; before, through a snapshot taken by the current minor's etcd.
 */
function downgrades(from: DataVersion, target: DataVersion, b: Bundle): Step[] {
  const steps: Step[] = [];
  let at = from;
  while (compareMinor(at.version, target.version) > 0) {
    const m = previousMinor(at.version)!;
    const own = compareMinor(at.version, FIRST_ETCD_DOWNGRADE_MINOR) >= 0;
    const current = b.newestOf(
      at.version,
      own
        ? `to enable the downgrade from ${fmtMinor(at.version)} (etcdctl downgrade enable)`
        : `to take the snapshot that a downgrade from ${fmtMinor(at.version)} starts with`,
    );
    const version = sameMinor(m, target.version)
      ? target.version
      : b.newestOf(m, `to step down from ${fmtMinor(at.version)} towards ${fmt(target.version)}, one minor at a time`);
    const to = { version, storage: at.storage };
    steps.push(
      own
        ? { kind: 'etcd-downgrade', from: at, to, enableWith: current }
        : { kind: 'downgrade', from: at, to, snapshotWith: current },
    );
    at = to;
  }
  return steps;
}

/** Lines for the log about the plan: a patch older than etcd's upgrade guide advises. */
export function planNotes(steps: readonly Step[]): string[] {
  const notes: string[] = [];
  for (const s of steps) {
    if (s.kind !== 'upgrade' && s.kind !== 'attach-ttls') continue;
    const advised = PATCH_BEFORE.get(fmtMinor(s.to.version))?.advised;
    if (advised && !sameMinor(s.from.version, s.to.version) && compare(s.from.version, advised) < 0) {
      notes.push(
        `etcd ${fmt(s.from.version)} runs before ${fmtMinor(s.to.version)}; etcd's upgrade guide advises ` +
          `${fmt(advised)} or newer: bundle it`,
      );
    }
  }
  return notes;
}

function checkStorageVersion(d: DataVersion, what: string): void {
  if (what === 'the target' && d.storage === 'etcd2' && compareMinor(d.version, NEWEST_ETCD2_MINOR) > 0) {
    throw new PlanError(
      `the target ${fmtData(d)} is not possible: ` +
        `etcd ${fmtMinor(d.version)} does not serve etcd2 storage by default; ` +
        `choose ${fmtMinor(NEWEST_ETCD2_MINOR)} or older for etcd2, or set TARGET_STORAGE=etcd3`,
    );
  }
  if (d.storage === 'etcd3' && compareMinor(d.version, FIRST_V3) < 0) {
    throw new PlanError(
      `${what} says ${fmtData(d)}, but etcd3 storage needs etcd 3.0 or newer; use etcd2 with ${fmt(d.version)}`,
    );
  }
}

class Bundle {
  private readonly versions: Version[];
  constructor(versions: readonly Version[]) {
    this.versions = [...versions].sort(compare);
  }
  has(v: Version): boolean {
    return this.versions.some((x) => compare(x, v) === 0);
  }
  /** The newest bundled patch of v's minor; `why` explains the need in the error. */
  newestOf(v: Version, why: string): Version {
    const found = this.versions.filter((x) => sameMinor(x, v)).at(-1);
    if (!found)
      throw new PlanError(
        `etcd ${fmtMinor(v)} is needed ${why}, but no ${fmtMinor(v)}.x is bundled (bundled: ${this.list()}); ` +
          `add etcd-${fmtMinor(v)}.x to the bin dir or BUNDLED_VERSIONS`,
      );
    return found;
  }
  list(): string {
    return this.versions.length ? this.versions.map(fmt).join(', ') : 'none';
  }
}

/** One line per step, for logs and --dry-run. */
/** What a step is, without how: "convert 3.3.25/etcd2 -> 3.3.25/etcd3" (describe() up to its colon). */
export function stepName(s: Step): string {
  return describe(s).split(':')[0]!;
}

export function describe(s: Step): string {
  switch (s.kind) {
    case 'upgrade':
      return (
        `upgrade ${fmtData(s.from)} -> ${fmtData(s.to)}: ` +
        `start etcd ${fmt(s.to.version)} until a write commits, then stop it`
      );
    case 'patch':
      return (
        `patch ${fmtData(s.from)} -> ${fmtData(s.to)}: ` +
        `start etcd ${fmt(s.to.version)} until a write commits, then stop it`
      );
    case 'v2-to-v3':
      return (
        `convert ${fmtData(s.from)} -> ${fmtData(s.to)}: ` +
        `etcdctl ${fmt(s.to.version)} migrate; every TTL kept aside until the end of the chain`
      );
    case 'attach-ttls':
      return (
        `attach TTLs ${fmtData(s.from)} -> ${fmtData(s.to)}: start etcd ${fmt(s.to.version)}` +
        `${sameMinor(s.from.version, s.to.version) ? '' : ' (the upgrade to it)'}` +
        ' and give every key with a pending TTL a lease for what is left of it'
      );
    case 'v3-to-v2':
      return (
        `roll back ${fmtData(s.from)} -> ${fmtData(s.to)}: read keys with etcd ${fmt(s.read)}, ` +
        `write them with TTLs into a new etcd ${fmt(s.to.version)} v2 store`
      );
    case 'downgrade':
      return (
        `downgrade ${fmtData(s.from)} -> ${fmtData(s.to)}: ` +
        `snapshot with etcd ${fmt(s.snapshotWith)}, restore with etcd ${fmt(s.to.version)}`
      );
    case 'drop-v2':
      return (
        `drop v2 content ${fmtData(s.from)}: snapshot and restore with etcd ${fmt(s.snapshotWith)}; ` +
        'the v3 data kept, new member and cluster IDs'
      );
    case 'etcd-downgrade':
      return (
        `downgrade ${fmtData(s.from)} -> ${fmtData(s.to)}: etcd ${fmt(s.enableWith)} enables the downgrade to ` +
        `${fmtMinor(s.to.version)}, then etcd ${fmt(s.to.version)} starts on the same data`
      );
  }
}
