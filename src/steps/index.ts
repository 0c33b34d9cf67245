// The step runners, one module per kind. A kind without a runner is refused before anything changes.
import type { Step, StepKind } from '../plan.ts';
import type { StepContext, ToolNeed } from './context.ts';
import * as upgrade from './upgrade.ts';

interface Runner<S extends Step> {
  needs: (s: S) => ToolNeed[];
  run: (s: S, ctx: StepContext) => Promise<void>;
}

type Runners = { [K in StepKind]?: Runner<Extract<Step, { kind: K }>> };

const RUNNERS: Runners = {
  upgrade,
  patch: upgrade,
};

export function runnerFor<S extends Step>(s: S): Runner<S> | undefined {
  return RUNNERS[s.kind] as Runner<S> | undefined;
}

export type { StepContext, ToolNeed };
