// drop-v2 step (--drop-v2-content, a lone member on its way to 3.6): etcd 3.6 refuses custom v2
// content, and 3.5 has no way to drop it (--v2-deprecation=write-only-drop-data drops nothing in
// 3.5.36: confirmed with the real binary). A snapshot of the v3 data, restored with the same etcd,
// makes a member whose v2 store holds only itself: the downgrade step's work, at the same version.
import { isCluster } from '../cluster.ts';
import { UsageError } from '../errors.ts';
import type { Options } from '../options.ts';
import type { Step } from '../plan.ts';
import * as downgrade from './downgrade.ts';
import type { StepContext, StepReport, ToolNeed } from './context.ts';
import type { MemberSizes } from '../backup/space.ts';

type DropStep = Extract<Step, { kind: 'drop-v2' }>;

export const mode = 'rebuild';
export const backupBeside = true;

const asDowngrade = (s: DropStep): Extract<Step, { kind: 'downgrade' }> => ({ ...s, kind: 'downgrade' });

export const needs = (s: DropStep): ToolNeed[] => downgrade.needs(asDowngrade(s));

export const space = (s: DropStep, sizes: MemberSizes): number => downgrade.space(asDowngrade(s), sizes);

export function check(_s: DropStep, opts: Pick<Options, 'initialCluster'>): void {
  if (isCluster(opts.initialCluster)) {
    throw new UsageError(
      '--drop-v2-content restores a snapshot, which makes a new cluster: a member of a ' +
        'multi-member cluster cannot use it; delete the custom v2 keys through etcd 3.5 (--enable-v2) instead',
    );
  }
}

export async function run(s: DropStep, ctx: StepContext): Promise<StepReport> {
  const r = await downgrade.run(asDowngrade(s), ctx);
  return { ...r, detail: `${r.detail ?? ''}; the v2 store now holds only this member` };
}
