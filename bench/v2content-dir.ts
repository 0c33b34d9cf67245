// The v2 content check (readV2Content) on an existing stopped member, this tree against a baseline
// commit, alternating run by run in one process. The data dir is only read.
// Usage: node bench/v2content-dir.ts <data dir> [runs=7] [baseline=f661aad~1]
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmtMs, machine } from './lib.ts';

const [dir, runs, baseline] = [process.argv[2], Number(process.argv[3] ?? 7), process.argv[4] ?? 'f661aad~1'];
if (!dir) throw new Error('usage: node bench/v2content-dir.ts <data dir> [runs] [baseline]');
const repo = path.resolve(import.meta.dirname, '..');
const base = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-v2base-'));
try {
  await execa('bash', ['-c', `git -C ${repo} archive ${baseline} src | tar -x -C ${base}`]);
  await fs.symlink(path.join(repo, 'node_modules'), path.join(base, 'node_modules'));
  type Read = (d: string) => Promise<{ snapshot?: { index: number }; v2EntriesAfterSnapshot: number }>;
  const load = async (src: string) =>
    ((await import(path.join(src, 'inspect', 'v2content.ts'))) as { readV2Content: Read }).readV2Content;
  const trees: Array<[string, Read]> = [
    [`baseline ${baseline}`, await load(path.join(base, 'src'))],
    ['this tree', await load(path.join(repo, 'src'))],
  ];
  const wal = path.join(dir, 'member', 'wal');
  const sizes = await Promise.all((await fs.readdir(wal)).map(async (f) => (await fs.stat(path.join(wal, f))).size));
  console.log(`machine: ${machine()}, load average ${os.loadavg()[0]!.toFixed(2)}`);
  console.log(`${dir}: WAL ${sizes.length} files, ${(sizes.reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(0)} MiB`);
  const times = new Map<string, number[]>(trees.map(([label]) => [label, []]));
  for (const [label, read] of trees) {
    const c = await read(dir); // warm-up, and the answer both must give
    console.log(`  ${label}: snapshot ${c.snapshot?.index ?? 'none'}, v2 after it ${c.v2EntriesAfterSnapshot}`);
  }
  for (let i = 0; i < runs; i++) {
    for (const [label, read] of trees) {
      const t0 = performance.now();
      await read(dir);
      times.get(label)!.push(performance.now() - t0);
    }
  }
  for (const [label, xs] of times) console.log(`  ${label}: ${fmtMs(xs)}`);
} finally {
  await fs.rm(base, { recursive: true, force: true });
}
