// Issue 19: the whole one-minor run 3.5.36 -> 3.6.17 on a large member (its verified backup, the v2
// content check, the step), this tree's entrypoint against a baseline commit's, side by side with
// etcd's floor (3.6.17 started on the data until a write commits, then stopped), alternating round
// by round, each on a fresh copy of the same data (the copy and a `sync` before each, not timed).
// The backup alone too (bench/backup-once.ts, each tree's), beside `cp -a member` then `sync -f`.
//   node bench/whole-run.ts --data <a stopped 3.5 member dir> [--runs 3] [--baseline 14b2729]
// The data dir is only read (bench/scale-data.ts makes such dirs).
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BIN_DIR } from '../test/helpers/env.ts';
import { bin, flags, machine, median, untilWrite } from './lib.ts';

const { values: o } = parseArgs({
  options: {
    data: { type: 'string' },
    runs: { type: 'string', default: '3' },
    baseline: { type: 'string', default: '14b2729' },
  },
});
if (!o.data) throw new Error('usage: node bench/whole-run.ts --data <member data dir> [--runs 3] [--baseline ref]');
const repo = path.resolve(import.meta.dirname, '..');
const data = path.resolve(o.data);
const root = await fs.mkdtemp(path.join(path.dirname(data), 'whole-run-'));
const work = (name: string) => path.join(root, name);
const portBase = Number(process.env.BENCH_PORT_BASE ?? 27300);
const [port, peerPort] = [portBase, portBase + 1];
const lone = ['--heartbeat-interval', '10', '--election-timeout', '100'];
const QUOTA = ['--quota-backend-bytes', String(9 * 1024 ** 3)];

/** A commit's tree (this checkout's without one), with this checkout's node_modules. */
async function treeOf(ref: string | undefined): Promise<string> {
  if (!ref) return repo;
  const tree = work(`tree-${ref}`);
  await fs.mkdir(tree);
  await execa('bash', ['-c', `git -C ${repo} archive ${ref} | tar -x -C ${tree}`]);
  await fs.symlink(path.join(repo, 'node_modules'), path.join(tree, 'node_modules'));
  return tree;
}

/** A tree's entrypoint bundle, built by its own build script. */
async function bundleOf(tree: string, dir: string): Promise<string> {
  await execa(process.execPath, [path.join(tree, 'scripts', 'build.mjs'), dir]);
  return path.join(dir, 'etcd-migrate.mjs');
}

/** A tree's verified backup of `dir` alone, in a process of its own. */
async function backupOnce(tree: string, dir: string): Promise<number> {
  const out = work('backup-once');
  await fs.rm(out, { recursive: true, force: true });
  const r = await execa(process.execPath, [path.join(repo, 'bench/backup-once.ts'), path.join(tree, 'src'), dir, out]);
  await fs.rm(out, { recursive: true, force: true });
  return (JSON.parse(r.stdout) as { s: number }).s;
}

async function cpMember(from: string): Promise<number> {
  const out = work('member-copy');
  await fs.rm(out, { recursive: true, force: true });
  await fs.mkdir(out);
  await execa('sync');
  const t0 = performance.now();
  await execa('bash', ['-c', 'cp -a "$0/member" "$1/member" && sync -f "$1"', from, out]);
  const s = (performance.now() - t0) / 1000;
  await fs.rm(out, { recursive: true, force: true });
  return s;
}

const startEtcd = (version: string, dir: string) =>
  execa(bin('etcd', version), [...flags('m1', dir, port, peerPort), ...lone, ...QUOTA], {
    reject: false,
    stdio: 'ignore',
  });

/** The data with 3.5.36 run on it once: the run from there is one minor. */
async function at3536(): Promise<string> {
  const d = work('from');
  await execa('cp', ['-a', data, d]);
  const e = startEtcd('3.5.36', d);
  await untilWrite(port, '/v3', 120_000);
  e.kill('SIGTERM');
  await e;
  await fs.writeFile(path.join(d, 'version.txt'), '3.5.36/etcd3');
  return d;
}

async function copyOf(from: string): Promise<string> {
  const d = work('copy');
  await fs.rm(d, { recursive: true, force: true });
  await fs.rm(work('backups'), { recursive: true, force: true });
  await execa('cp', ['-a', from, d]);
  await execa('sync');
  return d;
}

async function entrypoint(entry: string, dir: string): Promise<number> {
  const t0 = performance.now();
  const args = ['--data-dir', dir, '--target-version', '3.6.17', '--bin-dir', BIN_DIR, '--name', 'm1'];
  args.push('--port', String(port), '--peer-port', String(peerPort), '--backup-dir', work('backups'));
  await execa(process.execPath, [entry, ...args]);
  return (performance.now() - t0) / 1000;
}

async function floor(dir: string): Promise<number> {
  const t0 = performance.now();
  const e = startEtcd('3.6.17', dir);
  await untilWrite(port, '/v3', 300_000);
  e.kill('SIGTERM');
  await e;
  return (performance.now() - t0) / 1000;
}

async function cpDb(from: string, sync: boolean): Promise<number> {
  const out = work('db-copy');
  await fs.rm(out, { force: true });
  await execa('sync');
  const t0 = performance.now();
  await execa('bash', [
    '-c',
    sync ? 'cp "$0" "$1" && sync -f "$1"' : 'cp "$0" "$1"',
    path.join(from, 'member/snap/db'),
    out,
  ]);
  const s = (performance.now() - t0) / 1000;
  await fs.rm(out, { force: true });
  return s;
}

try {
  const [baseTree, hereTree] = [await treeOf(o.baseline), await treeOf(undefined)];
  const baseEntry = await bundleOf(baseTree, work('app-base'));
  const hereEntry = await bundleOf(hereTree, work('app-here'));
  const from = await at3536();
  const db = (await fs.stat(path.join(from, 'member', 'snap', 'db'))).size;
  console.log(`machine: ${machine()}; load average ${os.loadavg()[0]!.toFixed(2)}; db ${(db / 1e9).toFixed(2)} GB`);
  const FLOOR = "etcd's floor: 3.6.17 until a write, stopped";
  const [CP, CP_SYNC] = ['`cp` of the db', '`cp` of the db, then `sync -f`'];
  const [CP_MEMBER, BACKUP] = ['`cp -a member`, then `sync -f`', 'backup, this tree'];
  const BACKUP_BASE = `backup, baseline ${o.baseline}`;
  const rows: Array<[string, () => Promise<number>]> = [
    [CP_MEMBER, () => cpMember(from)],
    [BACKUP_BASE, () => backupOnce(baseTree, from)],
    [BACKUP, () => backupOnce(hereTree, from)],
    [CP, () => cpDb(from, false)],
    [CP_SYNC, () => cpDb(from, true)],
    [`entrypoint, baseline ${o.baseline}`, async () => entrypoint(baseEntry, await copyOf(from))],
    ['entrypoint, this tree', async () => entrypoint(hereEntry, await copyOf(from))],
    [FLOOR, async () => floor(await copyOf(from))],
  ];
  const times = new Map(rows.map(([label]) => [label, [] as number[]]));
  for (let i = 0; i < Number(o.runs); i++) for (const [label, run] of rows) times.get(label)!.push(await run());
  console.log(`| seconds | ${[...Array(Number(o.runs)).keys()].map((i) => `round ${i + 1}`).join(' | ')} | median |`);
  console.log(`|---|${'---:|'.repeat(Number(o.runs) + 1)}`);
  for (const [label, xs] of times) {
    console.log(`| ${label} | ${xs.map((x) => x.toFixed(2)).join(' | ')} | ${median(xs).toFixed(2)} |`);
  }
  const m = (label: string) => median(times.get(label)!);
  for (const label of [BACKUP_BASE, BACKUP]) {
    console.log(`${label}: ${(m(label) / m(CP_MEMBER)).toFixed(2)}x the time of ${CP_MEMBER}`);
  }
  for (const label of [`entrypoint, baseline ${o.baseline}`, 'entrypoint, this tree']) {
    const w = m(label);
    console.log(
      `${label}: ${w.toFixed(2)} / (floor ${m(FLOOR).toFixed(2)} + cp ${m(CP).toFixed(2)}) = ` +
        `${(w / (m(FLOOR) + m(CP))).toFixed(2)}x; with the cp synced: ${(w / (m(FLOOR) + m(CP_SYNC))).toFixed(2)}x`,
    );
  }
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
