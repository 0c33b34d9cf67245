// The step runners, one module per kind. A kind without a runner is refused before anything changes.
import type { Step, StepKind } from '../plan.ts';
import type { Install, StepContext, StepReport, ToolNeed } from './context.ts';
import type { Options } from '../options.ts';
import type { MemberSizes } from '../backup/space.ts';
import * as attach from '../etcd2/steps/attach-ttls.ts';
import * as downgrade from './downgrade.ts';
import * as dropV2 from './drop-v2.ts';
import * as etcdDowngrade from './etcd-downgrade.ts';
import * as upgrade from './upgrade.ts';
import * as v2tov3 from '../etcd2/steps/v2tov3.ts';
import * as v3tov2 from '../etcd2/steps/v3tov2.ts';

/**
 * mode 'in-place': runs etcd on the live data dir (an upgrade: etcd's own WAL keeps it safe, and a
 *   rerun repeats it). mode 'rebuild': reads the live data without changing it and builds the new
 *   member dir at ctx.newMember; the executor swaps it in under a journal.
 */
export interface Runner<S extends Step> {
  mode: 'in-place' | 'rebuild';
  needs: (s: S) => ToolNeed[];
  run: (s: S, ctx: StepContext) => Promise<StepReport | void>;
  /** Refuses (UsageError), before anything changes, what this runner cannot do. */
  check?: (s: S, opts: Options) => void;
  /** Scratch bytes it needs on the data dir's file system (default: backup/space.ts defaultScratch). */
  space?: (s: S, sizes: MemberSizes) => number;
  /**
   * A rebuild step whose work leaves a core idle (waits on etcd and the disk) can have the run's
   * backup beside it, until its swap (backup/guard.ts): the run ends sooner (BENCHMARKS.md).
   */
  backupBeside?: boolean;
}

type Runners = { [K in StepKind]?: Runner<Extract<Step, { kind: K }>> };

const RUNNERS: Runners = {
  upgrade,
  patch: upgrade,
  'v2-to-v3': v2tov3,
  'v3-to-v2': v3tov2,
  downgrade,
  'etcd-downgrade': etcdDowngrade,
  'drop-v2': dropV2,
  'attach-ttls': attach,
};

export function runnerFor<S extends Step>(s: S): Runner<S> | undefined {
  return RUNNERS[s.kind] as Runner<S> | undefined;
}

export type { Install, StepContext, StepReport, ToolNeed };
