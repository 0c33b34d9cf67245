// The rehearsal on a copy that rehearse.ts made (here, or inside the image): plan, count the keys
// with the data's own etcd, migrate, start the target etcd on the result and count again.
import type { Install } from '../../steps/index.ts';
import { binPath, discoverBundled } from '../../bundled-versions.ts';
import { inspectDataDir } from '../../datadir.ts';
import { countStore } from '../../etcd/client/count.ts';
import { TempEtcd } from '../../etcd/process/server.ts';
import type { Log } from '../../log.ts';
import { migrate } from '../../migrate.ts';
import { memberOf, type Options } from '../../options.ts';
import { describe } from '../../plan.ts';
import { judge, type Census, type Rehearsal } from './report.ts';
import { compare, fmt, fmtData, fmtMinor, sameMinor, type Storage, type Version } from '../../version.ts';

export interface RunContext {
  env: NodeJS.ProcessEnv;
  log: Log;
  install: Install;
  /** How long a temporary etcd may take to serve. */
  timeoutMs?: number;
}

/** Never throws for what the rehearsal finds: a failure is a report with result 'failed'. */
export async function rehearseCopy(opts: Options, ctx: RunContext): Promise<Rehearsal> {
  const r: Rehearsal = {
    from: '?',
    target: fmtData(opts.target),
    plan: [],
    before: { skipped: 'not reached' },
    steps: [],
    after: { skipped: 'not reached' },
    result: 'failed',
    message: '',
  };
  const failed = (phase: NonNullable<Rehearsal['failedAt']>, e: unknown): Rehearsal => ({
    ...r,
    result: 'failed',
    failedAt: phase,
    message: (e as Error)?.message ?? String(e),
  });
  const run = { ...opts, etcdArgs: undefined };

  let state: Awaited<ReturnType<typeof inspectDataDir>>;
  let bundled: Version[];
  try {
    state = await inspectDataDir(opts.dataDir);
    r.from =
      state.kind === 'data' ? fmtData(state.version) : state.kind === 'missing' ? 'no data dir' : 'an empty data dir';
    r.plan = (await migrate({ ...run, dryRun: true }, { env: ctx.env, log: () => {}, install: ctx.install })).steps.map(
      describe,
    );
    bundled = opts.bundled ?? (await discoverBundled(opts.binDir));
  } catch (e) {
    return failed('plan', e);
  }

  if (state.kind === 'data') {
    const own = bundled
      .filter((v) => sameMinor(v, state.version.version))
      .sort(compare)
      .at(-1);
    if (!own)
      r.before = { skipped: `no etcd ${fmtMinor(state.version.version)}.x is bundled to read the data as it is` };
    else {
      try {
        r.before = await census(opts, own, state.version.storage, ctx);
      } catch (e) {
        return failed('before', e);
      }
    }
  } else r.before = { skipped: 'the data dir holds no data' };

  const t0 = Date.now();
  try {
    await migrate(
      { ...run, dryRun: false },
      {
        env: ctx.env,
        log: ctx.log,
        install: ctx.install,
        onStep: (d) => r.steps.push({ description: describe(d.step), seconds: d.ms / 1000 }),
      },
    );
  } catch (e) {
    r.migrateSeconds = (Date.now() - t0) / 1000;
    return failed('migrate', e);
  }
  r.migrateSeconds = (Date.now() - t0) / 1000;

  if (state.kind !== 'data')
    r.after = { skipped: 'the data dir held no data: version.txt was written, there is no etcd data to start' };
  else {
    try {
      r.after = await census(opts, opts.target.version, opts.target.storage, ctx);
    } catch (e) {
      return failed('after', e);
    }
  }
  return { ...r, ...judge(r.before, r.after, fmt(opts.target.version)) };
}

/** Starts etcd `v` on the copy until a write commits, counts what it serves, stops it. */
async function census(opts: Options, v: Version, storage: Storage, ctx: RunContext): Promise<Census> {
  const t0 = Date.now();
  const etcd = new TempEtcd({
    bin: binPath(opts.binDir, 'etcd', v),
    version: v,
    dataDir: opts.dataDir,
    storage,
    env: ctx.env,
    timeoutMs: ctx.timeoutMs ?? 120_000,
    member: memberOf(opts),
  });
  try {
    await etcd.waitReady();
    const counts = await countStore(etcd.endpoint, v, storage);
    await etcd.stop();
    return { etcd: fmt(v), storage, seconds: (Date.now() - t0) / 1000, ...counts };
  } catch (e) {
    await etcd.kill();
    throw e;
  }
}
