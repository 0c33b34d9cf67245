// What a rehearsal found, and how it reads: pure data and formatting, no I/O.
import { count } from '../../log.ts';
import { keyTotal, type Counts } from '../../etcd/client/count.ts';

/** A count taken with a temporary etcd on the copy, or why it was not taken. */
export type Census = ({ etcd: string; storage: string; seconds: number } & Counts) | { skipped: string };

export interface StepTime {
  description: string;
  /** undefined: the step did not complete. */
  seconds?: number;
}

export interface Rehearsal {
  /** version.txt of the copy before the migration, or a description of an empty dir. */
  from: string;
  target: string;
  plan: string[];
  before: Census;
  steps: StepTime[];
  migrateSeconds?: number;
  after: Census;
  result: 'ok' | 'mismatch' | 'failed';
  /** The phase that failed, when result is 'failed' ('container': the engine did not run the rehearsal). */
  failedAt?: 'container' | 'plan' | 'before' | 'migrate' | 'after';
  /** One line: why this result. */
  message: string;
}

export interface HostFacts {
  source: string;
  copy: string;
  kept: boolean;
  bytes: number;
  copySeconds: number;
  engine: string;
  image?: string;
  imageId?: string;
}

export type Report = Rehearsal & { host: HostFacts };

/** Compares the counts before and after: the keys must all be there. */
export function judge(before: Census, after: Census, targetEtcd: string): Pick<Rehearsal, 'result' | 'message'> {
  if ('skipped' in after) return { result: 'ok', message: `nothing to start: ${after.skipped}` };
  const a = keyTotal(after);
  const b = 'skipped' in before ? undefined : keyTotal(before);
  if (b === undefined)
    return {
      result: 'ok',
      message:
        `etcd ${targetEtcd} served the migrated copy with ${a === undefined ? '? keys' : count(a, 'key')}; ` +
        `the keys before were not counted (${'skipped' in before ? before.skipped : 'no count'})`,
    };
  if (a !== b)
    return {
      result: 'mismatch',
      message:
        `${count(b, 'key')} before the migration, ${a ?? '?'} after: ` +
        'find out why before migrating the real data (keys on expired leases vanish by themselves)',
    };
  return {
    result: 'ok',
    message: `etcd ${targetEtcd} served the migrated copy with every key (${b} before, ${a} after)`,
  };
}

const s = (n: number | undefined): string => (n === undefined ? '' : `${n.toFixed(2)} s`);

function census(c: Census): string {
  if ('skipped' in c) return `not counted: ${c.skipped}`;
  const parts: string[] = [];
  if (c.v3Keys !== undefined) parts.push(`${c.v3Keys} v3 keys`);
  if (c.v3Leases !== undefined) parts.push(`${c.v3Leases} lease${c.v3Leases === 1 ? '' : 's'}`);
  if (c.v2Keys !== undefined) parts.push(`${c.v2Keys} v2 keys (${c.v2KeysWithTtl ?? 0} with a TTL)`);
  return `etcd ${c.etcd}, ${c.storage}: ${parts.join(', ')}; ${s(c.seconds)} to start, count and stop`;
}

const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;

export function formatReport(r: Report): string {
  const h = r.host;
  const ranIn =
    h.engine === 'local'
      ? 'the local etcd binaries'
      : `${h.engine}, image ${h.image} (${h.imageId?.replace(/^sha256:/, '').slice(0, 12)})`;
  const planned = r.failedAt === 'plan' ? 'refused' : r.plan.length ? `${r.plan.length} step(s)` : 'nothing to migrate';
  const lines = [
    `rehearsal of ${h.source}: copied ${mib(h.bytes)} in ${s(h.copySeconds)} to ${h.copy}` +
      `${h.kept ? ' (kept)' : ' (removed afterwards)'}`,
    `ran in: ${ranIn}`,
    r.failedAt === 'container'
      ? 'plan: not made: the container did not run the rehearsal'
      : `plan: ${r.from} -> ${r.target}: ${planned}`,
  ];
  r.plan.forEach((p, i) => {
    const t = r.steps[i];
    const time =
      t?.seconds !== undefined ? s(t.seconds) : r.failedAt === 'migrate' && r.steps.length === i ? 'FAILED' : 'not run';
    lines.push(`  ${i + 1}. ${p}  [${time}]`);
  });
  if (r.migrateSeconds !== undefined) lines.push(`migration: ${s(r.migrateSeconds)} in all`);
  lines.push(`before: ${census(r.before)}`, `after:  ${census(r.after)}`, `result: ${r.result}: ${r.message}`);
  return `${lines.join('\n')}\n`;
}
