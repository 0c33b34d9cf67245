// Which etcd flags each minor refuses, for the flags that changed from 3.5 to 3.7 (confirmed with
// the real binaries: an unknown flag makes etcd exit with "flag provided but not defined"). Pure.
import { UsageError } from '../../errors.ts';
import { compare, compareMinor, fmt, type Version } from '../../version.ts';

const V3_6: Version = { major: 3, minor: 6, patch: 0 };
const V3_7: Version = { major: 3, minor: 7, patch: 0 };

/** 3.6 renamed these `--experimental-<name>` flags to `--<name>`; 3.7 removed the old names. */
const RENAMED = new Set([
  'bootstrap-defrag-threshold-megabytes',
  'compaction-batch-limit',
  'compact-hash-check-time',
  'compaction-sleep-interval',
  'corrupt-check-time',
  'downgrade-check-time',
  'max-learners',
  'memory-mlock',
  'peer-skip-client-san-verification',
  'snapshot-catchup-entries',
  'warning-apply-duration',
  'warning-unary-request-duration',
  'watch-progress-notify-interval',
]);

/** 3.6 turned these `--experimental-<name>` flags into feature gates. */
const GATES: ReadonlyMap<string, string> = new Map([
  ['initial-corrupt-check', 'InitialCorruptCheck'],
  ['compact-hash-check-enabled', 'CompactHashCheck'],
  ['enable-lease-checkpoint', 'LeaseCheckpoint'],
  ['enable-lease-checkpoint-persist', 'LeaseCheckpointPersist'],
  ['stop-grpc-service-on-defrag', 'StopGRPCServiceOnDefrag'],
  ['txn-mode-write-with-shared-buffer', 'TxnModeWriteWithSharedBuffer'],
]);

/** Flags that first appeared in 3.6 (the new names above, and these). */
const NEW_IN_3_6 = new Set([
  'feature-gates',
  'log-format',
  'enable-distributed-tracing',
  'discovery-token',
  'discovery-endpoints',
]);

export interface FlagProblem {
  flag: string;
  /** What to do instead, as one clause. */
  fix: string;
}

/** The problem etcd `v` has with one command-line argument, or undefined when it takes it. */
export function flagProblem(v: Version, arg: string): FlagProblem | undefined {
  const m = /^--?([A-Za-z0-9-]+)(?:=(.*))?$/.exec(arg);
  if (!m) return undefined;
  const [name, value] = [m[1]!, m[2]];
  const fix =
    compareMinor(v, V3_6) < 0
      ? before36(name)
      : (removedIn36(name, value) ?? (compareMinor(v, V3_7) >= 0 ? removedIn37(name, value) : undefined));
  if (fix === undefined) return undefined;
  const shown = name === 'v2-deprecation' ? arg : `--${name}`;
  return { flag: shown, fix: `etcd ${fmt(v)} ${fix}` };
}

function removedIn36(name: string, value: string | undefined): string | undefined {
  if (name === 'enable-v2' || name === 'experimental-enable-v2v3') {
    return `has no v2 API (removed in 3.6): drop --${name}`;
  }
  if (name === 'proxy' || name.startsWith('proxy-')) return `has no proxy mode (removed in 3.6): drop --${name}`;
  if (name === 'v2-deprecation' && value === 'not-yet') {
    return 'takes write-only or later (3.6 removed not-yet): drop --v2-deprecation=not-yet';
  }
  return undefined;
}

function removedIn37(name: string, value: string | undefined): string | undefined {
  if (name === 'discovery' || name === 'discovery-proxy') {
    return 'has no v2 discovery (removed in 3.7): use --discovery-endpoints and --discovery-token';
  }
  if (!name.startsWith('experimental-')) return undefined;
  return `has no --experimental-* flags (removed in 3.7): ${replacement(name.slice('experimental-'.length), value)}`;
}

function before36(name: string): string | undefined {
  const newName = NEW_IN_3_6.has(name) || RENAMED.has(name) || name.startsWith('distributed-tracing-');
  return newName ? `does not know --${name} (new in 3.6)${oldName(name)}` : undefined;
}

/** Every problem etcd `v` has with `args`. */
export const flagProblems = (v: Version, args: readonly string[]): FlagProblem[] =>
  args.map((a) => flagProblem(v, a)).filter((p): p is FlagProblem => p !== undefined);

function replacement(exp: string, value: string | undefined): string {
  const gate = GATES.get(exp);
  if (gate) return `use --feature-gates=${gate}=${value ?? 'true'}`;
  if (RENAMED.has(exp)) return `use --${exp}${value === undefined ? '' : `=${value}`}`;
  if (exp === 'enable-distributed-tracing' || exp.startsWith('distributed-tracing-')) return `use --${exp}`;
  return 'drop it';
}

function oldName(name: string): string {
  if (RENAMED.has(name) || name === 'enable-distributed-tracing' || name.startsWith('distributed-tracing-')) {
    return `: etcd 3.5 calls it --experimental-${name}`;
  }
  return '';
}

/**
 * Refuses, before anything changes, ETCD_CREDS entries that one of the temporary etcds would refuse
 * (they reach every one) and etcd flags after `--` that the target would refuse.
 */
export function checkFlags(
  temps: readonly Version[],
  extraArgs: readonly string[],
  etcdArgs: readonly string[] | undefined,
  target: Version,
): void {
  const seen = [...new Map(temps.map((v) => [fmt(v), v])).values()].sort(compare);
  for (const v of seen) {
    const p = flagProblems(v, extraArgs)[0];
    if (p) {
      throw new UsageError(
        `ETCD_CREDS has ${p.flag}, which etcd ${fmt(v)} (a step of this migration) refuses: ` +
          `${p.fix}; nothing was changed`,
      );
    }
  }
  const p = etcdArgs && flagProblems(target, etcdArgs)[0];
  if (p) {
    throw new UsageError(
      `the etcd flag ${p.flag} (after --) is refused by etcd ${fmt(target)}, the target: ${p.fix} ` +
        "in the pod's command; nothing was changed",
    );
  }
}

/** Variables of this tool that look like etcd's but are not (etcd/process/env.ts keeps them from etcd). */
const NOT_ETCDS = new Set(['ETCD_DATA_PREFIX', 'ETCD_CREDS', 'ETCD_HOSTNAME']);

/**
 * Refuses, before anything changes, an ETCD_* variable of the pod that the exec'd target etcd reads
 * as a flag it no longer has: etcd only warns of an unknown variable and ignores it, so the setting
 * would be lost without a word (3.7 ignores every ETCD_EXPERIMENTAL_*).
 */
export function checkEnvFlags(env: Readonly<Record<string, string | undefined>>, target: Version): void {
  for (const [k, value] of Object.entries(env)) {
    if (!k.startsWith('ETCD_') || NOT_ETCDS.has(k) || value === undefined || value === '') continue;
    const p = flagProblem(target, `--${k.slice('ETCD_'.length).toLowerCase().replace(/_/g, '-')}=${value}`);
    if (p) {
      throw new UsageError(
        `the pod's variable ${k} is etcd's ${p.flag}, which etcd ${fmt(target)} (the target) ` +
          `ignores: ${p.fix}; nothing was changed`,
      );
    }
  }
}
