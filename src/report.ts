// What the main command prints on stdout: --version, a dry run's plan, and --output json's object.
// Log lines stay on stderr; stdout is for what a script reads.
import { about } from './about.ts';
import { discoverBundled } from './bundled-versions.ts';
import type { Outcome } from './migrate.ts';
import { describe, type Step } from './plan.ts';
import { fmt, fmtData, type DataVersion } from './version.ts';

/** The etcd versions of the bin dir, or why there are none (--version still succeeds). */
export interface VersionReport {
  version: string;
  commit: string;
  binDir: string;
  etcd: string[];
  problem?: string;
}

export async function versionReport(binDir: string): Promise<VersionReport> {
  const { version, commit } = about();
  try {
    return { version, commit, binDir, etcd: (await discoverBundled(binDir)).map(fmt) };
  } catch (e) {
    return { version, commit, binDir, etcd: [], problem: (e as Error).message };
  }
}

export function versionText(r: VersionReport): string {
  const etcd = r.etcd.length ? r.etcd.join(', ') : `none (${r.problem})`;
  return `etcd-migrate ${r.version} (commit ${r.commit})\netcd versions in ${r.binDir}: ${etcd}\n`;
}

/** A dry run's plan as text: the same lines the log used to carry, without the log prefix. */
export function planText(o: Outcome, target: DataVersion): string {
  const count = o.steps.length ? `${o.steps.length} step(s)` : 'nothing to migrate';
  const lines = [`plan (dry run, nothing changed): ${o.origin} -> ${fmtData(target)}: ${count}`];
  o.steps.forEach((s, i) => lines.push(`  ${i + 1}. ${describe(s)}`));
  if (o.first) lines.push(`  first: ${o.first}`);
  return `${lines.join('\n')}\n`;
}

const stepJson = (s: Step) => ({ kind: s.kind, from: fmtData(s.from), to: fmtData(s.to), description: describe(s) });

/**
 * --output json: one object, the plan and the result. `exec`: the etcd that replaces this process
 * next (null without etcd flags or in a dry run).
 */
export function outcomeJson(o: Outcome, o2: { dryRun: boolean; exec: string | null }): string {
  return `${JSON.stringify({
    dryRun: o2.dryRun,
    plan: {
      from: o.from ? fmtData(o.from) : null,
      origin: o.origin,
      to: fmtData(o.final),
      steps: o.steps.map(stepJson),
      first: o.first ?? null,
    },
    result: { ok: true, changed: o.changed, versionTxt: o2.dryRun ? null : fmtData(o.final), exec: o2.exec },
  })}\n`;
}

/** --output json when the run fails: the result, with the exit code the process ends with. */
export function errorJson(message: string, exitCode: number): string {
  return `${JSON.stringify({ plan: null, result: { ok: false, exitCode, error: message } })}\n`;
}
