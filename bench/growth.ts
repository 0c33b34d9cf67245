// Issue 8, items 4-5: the pre-step backup and a downgrade step at 2-3 sizes up to 1 GiB, next to
// copying the db file and the member dir, in one run (every row once per round, round after round).
//   ETCD_BIN_DIR=.cache/etcd-bin node bench/growth.ts [--sizes 250,500,1000] [--runs 3]
//     [--cache warm|cold] [--baseline <commit>] [--rows cp,backup,enc,downgrade] [--data /work/bench-data-gb]
// --cache cold: `sync; echo 3 > /proc/sys/vm/drop_caches` (root) before every timed row, so the
//   data is read from the disk; warm: the data was just read or written, as in a pod restart.
// --baseline: the backup rows again with that commit's src/ (git archive into the data dir), for
//   side-by-side numbers of a change.
// Data: bench/bigdata.ts (made once, kept in --data). Prints Markdown tables and a mermaid chart;
// writes the medians as JSON to bench/results/growth-<cache>.json.
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dataDirFor, makeBigData, QUOTA, VALUE_BYTES } from './bigdata.ts';
import { median, sizeOf } from './lib.ts';

const { values: o } = parseArgs({
  options: {
    sizes: { type: 'string', default: '250,500,1000' },
    runs: { type: 'string', default: '3' },
    cache: { type: 'string', default: 'warm' },
    baseline: { type: 'string' },
    rows: { type: 'string', default: 'cp,backup,enc,downgrade' },
    data: { type: 'string', default: '/work/bench-data-gb' },
  },
});
const BIN = path.resolve(process.env.ETCD_BIN_DIR ?? '.cache/etcd-bin');
const HERE = path.resolve(import.meta.dirname, '..');
const sizes = o.sizes.split(',').map(Number);
const runs = Number(o.runs);
const cold = o.cache === 'cold';
const want = new Set(o.rows.split(','));
const base = Number(process.env.BENCH_PORT_BASE ?? 27000);
const dataRoot = path.resolve(o.data);
const scratch = path.join(dataRoot, 'scratch');

async function dropCaches(): Promise<void> {
  await execa('sync');
  await fs.writeFile('/proc/sys/vm/drop_caches', '3');
}

/** A tree to run: this worktree, or a commit's src/ and bin/ with this worktree's node_modules. */
async function tree(commit: string | undefined): Promise<{ name: string; root: string }> {
  if (!commit) return { name: 'this branch', root: HERE };
  const root = path.join(dataRoot, `tree-${commit}`);
  await fs.rm(root, { recursive: true, force: true });
  await fs.mkdir(root, { recursive: true });
  await execa('bash', ['-c', `git -C ${HERE} archive ${commit} src bin package.json | tar -x -C ${root}`]);
  await fs.symlink(path.join(HERE, 'node_modules'), path.join(root, 'node_modules'));
  return { name: `main ${commit.slice(0, 7)}`, root };
}

interface Sample {
  s: number;
  cpu?: number;
  bytes?: number;
  rssKiB?: number;
  step?: number;
  backup?: number;
}
interface Row {
  what: string;
  key: string;
  run: (data: string) => Promise<Sample>;
  samples: Sample[];
}

await fs.mkdir(dataRoot, { recursive: true });
const trees = [await tree(undefined), ...(o.baseline ? [await tree(o.baseline)] : [])];
const keyFile = path.join(dataRoot, 'key');
await fs.writeFile(keyFile, crypto.randomBytes(48).toString('base64'), { mode: 0o600 });

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  if (cold) await dropCaches();
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};

function rows(): Row[] {
  const out: Row[] = [];
  const add = (what: string, key: string, run: Row['run']) => out.push({ what, key, run, samples: [] });
  if (want.has('cp')) {
    add('`cp member/snap/db` (baseline: the db file)', 'cp-db', async (d) => ({
      s: await timed(() => execa('cp', [path.join(d, 'member/snap/db'), path.join(scratch, 'db')])),
    }));
    add('`cp -a member` (baseline: the member dir)', 'cp-member', async (d) => ({
      s: await timed(() => execa('cp', ['-a', path.join(d, 'member'), path.join(scratch, 'member')])),
    }));
  }
  const backup =
    (t: { root: string }, enc: boolean) =>
    async (d: string): Promise<Sample> => {
      if (cold) await dropCaches();
      const r = await execa(process.execPath, [
        path.join(HERE, 'bench/backup-once.ts'),
        path.join(t.root, 'src'),
        d,
        path.join(scratch, 'b'),
        ...(enc ? [keyFile] : []),
      ]);
      const j = JSON.parse(r.stdout) as { s: number; cpu: number; rssKiB: number; bytes: number };
      return { s: j.s, cpu: j.cpu, bytes: j.bytes, rssKiB: j.rssKiB };
    };
  for (const enc of [false, true]) {
    if (!want.has(enc ? 'enc' : 'backup')) continue;
    for (const t of trees)
      add(
        `pre-step backup${enc ? ', encrypted' : ''} (${t.name})`,
        `backup${enc ? '-enc' : ''}${t === trees[0] ? '' : '-base'}`,
        backup(t, enc),
      );
  }
  // The whole CLI run of a downgrade in both trees (the executor decides when the run's backup runs).
  if (want.has('downgrade')) {
    for (const t of trees) {
      add(
        `downgrade 3.5.30 -> 3.4.23, whole CLI run (${t.name})`,
        `downgrade${t === trees[0] ? '' : '-base'}`,
        async (d) => {
          const dir = path.join(scratch, 'data');
          await execa('cp', ['-a', d, dir]);
          const rss = path.join(scratch, 'rss');
          if (cold) await dropCaches();
          const t0 = performance.now();
          const r = await execa(
            process.execPath,
            [
              '--import',
              path.join(HERE, 'bench/rss-hook.mjs'),
              path.join(t.root, 'bin/etcd-migrate.js'),
              '--data-dir',
              dir,
              '--target-version',
              '3.4.23',
              '--bin-dir',
              BIN,
              '--name',
              'm1',
              '--port',
              String(base + 20),
              '--peer-port',
              String(base + 21),
            ],
            { reject: false, env: { RSS_OUT: rss } },
          );
          const s = (performance.now() - t0) / 1000;
          if (r.exitCode !== 0) throw new Error(`downgrade failed: ${r.stderr}`);
          const step = Number(/step 1\/1 done in ([\d.]+) s/.exec(r.stderr)?.[1]);
          const backupS = Number(/verified in ([\d.]+) s/.exec(r.stderr)?.[1]);
          return {
            s,
            step,
            backup: backupS,
            rssKiB: Number(await fs.readFile(rss, 'utf8')),
            bytes: await sizeOf(path.join(dir, 'member')),
          };
        },
      );
    }
  }
  return out;
}

const cpu = (await fs.readFile('/proc/cpuinfo', 'utf8')).match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
console.log(
  `Machine: ${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
    `${os.type()} ${os.release()}, Node ${process.version}; ${new Date().toISOString().slice(0, 16)}Z; ` +
    `page cache ${cold ? 'dropped before every timed row (cold)' : 'warm'}; median of ${runs} rounds.`,
);
console.log(
  `Data: ${VALUE_BYTES >> 10} KiB values (base64 of random bytes) written by etcd 3.5.30 ` +
    `with --quota-backend-bytes ${QUOTA / 2 ** 30} GiB and --snapshot-count 1000.\n`,
);
await makeBigData(dataRoot, sizes);
const summary: Array<{
  mib: number;
  db: number;
  member: number;
  rows: Record<string, { s: number; cpu?: number; step?: number; backup?: number; rssKiB?: number; bytes?: number }>;
}> = [];
const loads: number[] = [];
for (const mib of sizes) {
  const data = dataDirFor(dataRoot, mib);
  const db = (await fs.stat(path.join(data, 'member/snap/db'))).size;
  const member = await sizeOf(path.join(data, 'member'));
  const rs = rows();
  for (let round = 0; round < runs; round++) {
    for (const r of rs) {
      await fs.rm(scratch, { recursive: true, force: true });
      await fs.mkdir(scratch, { recursive: true });
      r.samples.push(await r.run(data));
      loads.push(os.loadavg()[0]!);
      process.stderr.write(
        `${mib} MiB round ${round + 1}: ${r.what}: ${r.samples.at(-1)!.s.toFixed(2)} s ` +
          `(load ${os.loadavg()[0]!.toFixed(1)})\n`,
      );
    }
  }
  await fs.rm(scratch, { recursive: true, force: true });
  const m = (r: Row, f: (s: Sample) => number | undefined) => {
    const xs = r.samples.map(f).filter((x): x is number => x !== undefined && !Number.isNaN(x));
    return xs.length ? median(xs) : undefined;
  };
  const cp = median(rs[0]!.samples.map((s) => s.s));
  console.log(
    `### db ${(db / 2 ** 20).toFixed(0)} MiB, member dir ${(member / 2 ** 20).toFixed(0)} MiB (${mib} MiB of values)\n`,
  );
  console.log(
    '| what | seconds (median) | min-max | CPU s | MB/s of the member dir | vs `cp` of the db | ' +
      'output MiB | peak RSS MiB |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  const entry: (typeof summary)[number] = { mib, db, member, rows: {} };
  for (const r of rs) {
    const s = m(r, (x) => x.s)!;
    const xs = r.samples.map((x) => x.s);
    const rss = m(r, (x) => x.rssKiB);
    const bytes = m(r, (x) => x.bytes);
    const extra = r.key.startsWith('downgrade')
      ? ` (step ${m(r, (x) => x.step)?.toFixed(2)} s, its backup ${m(r, (x) => x.backup)?.toFixed(2)} s)`
      : '';
    console.log(
      `| ${r.what}${extra} | ${s.toFixed(2)} | ${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)} | ` +
        `${m(r, (x) => x.cpu)?.toFixed(1) ?? ''} | ${(member / 1e6 / s).toFixed(0)} | ${(s / cp).toFixed(1)}x | ` +
        `${bytes === undefined ? '' : (bytes / 2 ** 20).toFixed(0)} | ` +
        `${rss === undefined ? '' : (rss / 1024).toFixed(0)} |`,
    );
    entry.rows[r.key] = {
      s,
      cpu: m(r, (x) => x.cpu),
      step: m(r, (x) => x.step),
      backup: m(r, (x) => x.backup),
      rssKiB: rss,
      bytes,
    };
  }
  console.log('');
  summary.push(entry);
}
console.log(
  `Load average (1 min) during the run: ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} ` +
    `on ${os.cpus().length} cores.\n`,
);

// The growth curve, for GitHub's mermaid renderer.
const series = (key: string) => summary.map((e) => e.rows[key]?.s);
const lines = [
  ['cp-db', 'cp of the db'],
  ['backup', 'pre-step backup'],
  ['backup-enc', 'backup, encrypted'],
  ['downgrade', 'downgrade, whole run'],
].filter(([k]) => series(k!).every((x) => x !== undefined));
const top = Math.max(...lines.flatMap(([k]) => series(k!) as number[]));
console.log('```mermaid\nxychart-beta');
console.log(`  title "Seconds vs db size (${cold ? 'cold' : 'warm'} page cache)"`);
console.log(`  x-axis "db size (MiB)" [${summary.map((e) => (e.db / 2 ** 20).toFixed(0)).join(', ')}]`);
console.log(`  y-axis "seconds" 0 --> ${Math.ceil(top * 1.1)}`);
for (const [k] of lines)
  console.log(
    `  line [${series(k!)
      .map((x) => x!.toFixed(2))
      .join(', ')}]`,
  );
console.log('```');
console.log(`Lines, bottom to top: ${lines.map(([, n]) => n).join(', ')}.`);
await fs.mkdir(path.join(HERE, 'bench/results'), { recursive: true });
await fs.writeFile(
  path.join(HERE, `bench/results/growth-${cold ? 'cold' : 'warm'}.json`),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cache: o.cache,
      runs,
      baseline: o.baseline,
      loads: [Math.min(...loads), Math.max(...loads)],
      summary,
    },
    null,
    1,
  ) + '\n',
);
await fs.rm(path.join(dataRoot, 'key'), { force: true });
