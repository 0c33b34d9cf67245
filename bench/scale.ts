// Issue 19: backups and a whole one-minor upgrade at etcd's real sizes, side by side in one run.
//   node bench/scale.ts [--sizes 1,4,8] [--runs 1] [--data .cache/bench-data/scale] [--baseline 06cbc08]
//     [--out bench/results]
// For each size (GB of bbolt db, bench/scale-data.ts makes the data once): `cp` of the member dir
// and of the db (the disk's limit), `etcdctl snapshot save` from a running etcd, the verified backup
// (plain, encrypted; uncompressed and zstd) and its restore, the baseline's (the last commit with
// archive version 1) backup and restore, and the whole entrypoint run 3.5.36 -> 3.6.17 against
// etcd's floor: etcd 3.6.17 started on the data until a write commits, then stopped. Every row
// runs in its own process; peak RSS is the largest process of the row. Prints Markdown tables and
// writes <out>/scale.svg (time against size).
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
// @ts-expect-error: a plain .mjs build script without types
import { bundle } from '../scripts/build.mjs';
import { BIN_DIR } from '../test/helpers/env.ts';
import { bin, flags, machine, median, untilWrite } from './lib.ts';
import { makeScaleData, scaleDir } from './scale-data.ts';

const { values: o } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,4,8' },
    runs: { type: 'string', default: '1' },
    data: { type: 'string', default: '.cache/bench-data/scale' },
    baseline: { type: 'string', default: '06cbc08' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const sizes = o.sizes.split(',').map(Number);
const runs = Number(o.runs);
const data = path.resolve(o.data);
const repo = path.resolve(import.meta.dirname, '..');
const portBase = Number(process.env.BENCH_PORT_BASE ?? 27200);
const [port, peerPort] = [portBase, portBase + 1];
const lone = ['--heartbeat-interval', '10', '--election-timeout', '100'];
const QUOTA = ['--quota-backend-bytes', String(9 * 1024 ** 3)];

await fs.mkdir(data, { recursive: true });
const root = await fs.mkdtemp(path.join(data, 'run-'));
const work = (name: string) => path.join(root, name);

/** This tree and the baseline, each as a src dir node can import (the baseline with our node_modules). */
async function trees(): Promise<{ here: string; base: string; entry: string }> {
  const base = work('baseline');
  await fs.mkdir(base);
  await execa('bash', ['-c', `git -C ${repo} archive ${o.baseline} src | tar -x -C ${base}`]);
  await fs.symlink(path.join(repo, 'node_modules'), path.join(base, 'node_modules'));
  await (bundle as (dir: string) => Promise<void>)(work('app'));
  return {
    here: path.join(repo, 'src'),
    base: path.join(base, 'src'),
    entry: path.join(work('app'), 'etcd-migrate.mjs'),
  };
}

interface Sample {
  s: number;
  rssKiB: number;
  bytes?: number;
}

/** Runs a command under GNU time: wall seconds and the peak RSS of its largest process. */
async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Sample & { stdout: string }> {
  const r = await execa('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env, reject: false });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  const [s, kib] = String(r.stderr).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { s: s!, rssKiB: kib!, stdout: String(r.stdout) };
}

/** A node script of bench/ that prints {"s", "rssKiB", ...}: its own measure of the work, without node's start. */
async function script(name: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  const r = await timed(process.execPath, [path.join(repo, 'bench', name), ...args], env);
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Sample;
  return { s: j.s, rssKiB: Math.max(j.rssKiB, r.rssKiB), bytes: j.bytes };
}

/** An empty dir, and no dirty pages left by the row before: each row pays for its own writes only. */
const fresh = async (p: string) => {
  await fs.rm(p, { recursive: true, force: true });
  await fs.mkdir(p, { recursive: true });
  await execa('sync');
};
const dropCopy = (p: string) => fs.rm(p, { recursive: true, force: true });

function startEtcd(version: string, dir: string, extra: string[] = []) {
  return execa(bin('etcd', version), [...flags('m1', dir, port, peerPort), ...lone, ...QUOTA, ...extra], {
    reject: false,
    stdio: 'ignore',
  });
}

/** A copy of the size's data on which 3.5.36 ran once: the whole run from there is one minor, 3.5 -> 3.6. */
async function at3536(src: string): Promise<string> {
  const d = work('data-3.5.36');
  await dropCopy(d);
  await execa('cp', ['-a', src, d]);
  const e = startEtcd('3.5.36', d);
  await untilWrite(port, '/v3', 120_000);
  e.kill('SIGTERM');
  await e;
  await fs.writeFile(path.join(d, 'version.txt'), '3.5.36/etcd3');
  return d;
}

async function main(): Promise<void> {
  await makeScaleData(data, sizes);
  const { here, base, entry } = await trees();
  const key = work('key');
  await fs.writeFile(key, crypto.randomBytes(48).toString('base64'), { mode: 0o600 });
  console.log(`Machine: ${machine()}; ${runs} run(s) per row, median; baseline ${o.baseline} (archive version 1).\n`);
  const all: Array<{ gb: number; db: number; member: number; rows: Map<string, Sample[]> }> = [];
  for (const gb of sizes) {
    const src = scaleDir(data, gb);
    const dbBytes = (await fs.stat(path.join(src, 'member/snap/db'))).size;
    const member = Number((await execa('du', ['-sb', path.join(src, 'member')])).stdout.split('\t')[0]);
    const rows = new Map<string, Sample[]>();
    const add = (what: string, x: Sample) => {
      rows.set(what, [...(rows.get(what) ?? []), x]);
      process.stderr.write(
        `${gb} GB: ${what}: ${x.s.toFixed(2)} s, ${(x.rssKiB / 1024).toFixed(0)} MiB ` +
          `(load ${os.loadavg()[0]!.toFixed(1)})\n`,
      );
    };
    const out = work('out');
    const from36 = await at3536(src);
    for (let run = 0; run < runs; run++) {
      await fresh(out);
      add(
        "`cp -a member` (the disk's limit)",
        await timed('cp', ['-a', path.join(src, 'member'), path.join(out, 'member')]),
      );
      await fresh(out);
      // What a backup also does: the copy on disk, not only in the page cache.
      add(
        '`cp -a member`, then `sync -f`',
        await timed('bash', ['-c', `cp -a "$0/member" "$1/member" && sync -f "$1"`, src, out]),
      );
      await fresh(out);
      add('`cp member/snap/db`', await timed('cp', [path.join(src, 'member/snap/db'), path.join(out, 'db')]));
      await fresh(out);
      const live = startEtcd('3.5.30', src);
      await untilWrite(port, '/v3', 120_000);
      add(
        '`etcdctl snapshot save` (live etcd)',
        await timed(bin('etcdctl', '3.5.30'), [
          '--endpoints',
          `http://127.0.0.1:${port}`,
          'snapshot',
          'save',
          path.join(out, 'snap'),
        ]),
      );
      live.kill('SIGTERM');
      await live;
      for (const [label, tree, codec, withKey] of [
        ['backup, this tree', here, 'none', false],
        ['backup, this tree, encrypted', here, 'none', true],
        ['backup, this tree, zstd', here, 'zstd', false],
        ['backup, this tree, zstd, encrypted', here, 'zstd', true],
        ['backup, baseline (zstd)', base, 'none', false],
        ['backup, baseline (zstd), encrypted', base, 'none', true],
      ] as const) {
        await fresh(out);
        add(label, await script('backup-once.ts', [tree, src, out, ...(withKey ? [key] : [])], { BENCH_CODEC: codec }));
        const [file] = (await fs.readdir(out)).filter((n) => n.includes('.backup'));
        await execa('sync');
        add(
          label.replace('backup', 'restore'),
          await script('restore-once.ts', [tree, path.join(out, file!), work('restored'), ...(withKey ? [key] : [])]),
        );
        await dropCopy(work('restored'));
      }
      await fresh(out);
      // The whole run and the floor, each on its own copy (the copy is not timed).
      const copy = work('copy');
      await dropCopy(copy);
      await execa('cp', ['-a', from36, copy]);
      await execa('sync');
      add(
        'whole run 3.5.36 -> 3.6.17 (entrypoint)',
        await timed(process.execPath, [
          entry,
          '--data-dir',
          copy,
          '--target-version',
          '3.6.17',
          '--bin-dir',
          BIN_DIR,
          '--name',
          'm1',
          '--port',
          String(port),
          '--peer-port',
          String(peerPort),
          '--backup-dir',
          out,
        ]),
      );
      await dropCopy(copy);
      await fresh(out);
      await execa('cp', ['-a', from36, copy]);
      await execa('sync');
      add("etcd's floor: 3.6.17 started until a write, stopped", await floor(copy));
      await dropCopy(copy);
    }
    await dropCopy(from36);
    await dropCopy(out);
    all.push({ gb, db: dbBytes, member, rows });
    printSize(all.at(-1)!);
  }
  await fs.mkdir(path.resolve(o.out), { recursive: true });
  await fs.writeFile(path.join(path.resolve(o.out), 'scale.svg'), svg(all));
  console.log(`\nPlot: ${path.join(o.out, 'scale.svg')}. Load average at the end: ${os.loadavg()[0]!.toFixed(1)}.`);
}

/** etcd's floor for the run: the target etcd started on the data until a write commits, then stopped. */
async function floor(dir: string): Promise<Sample> {
  const t0 = performance.now();
  const e = startEtcd('3.6.17', dir);
  await untilWrite(port, '/v3', 300_000);
  // etcd's own high-water mark, read before it stops (a wrapper such as GNU time would not pass SIGTERM on).
  const status = await fs.readFile(`/proc/${e.pid}/status`, 'utf8');
  const peak = Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
  e.kill('SIGTERM');
  await e;
  return { s: (performance.now() - t0) / 1000, rssKiB: peak };
}

const gbs = (b: number) => (b / 1e9).toFixed(2);

function printSize(x: { gb: number; db: number; member: number; rows: Map<string, Sample[]> }): void {
  const cp = median(x.rows.get("`cp -a member` (the disk's limit)")!.map((r) => r.s));
  console.log(`\n### ${x.gb} GB: db ${gbs(x.db)} GB, member dir ${gbs(x.member)} GB\n`);
  console.log('| what | seconds | MB/s of the member dir | vs `cp -a member` | peak RSS (MiB) | file (GB) |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [what, xs] of x.rows) {
    const s = median(xs.map((r) => r.s));
    const bytes = xs.at(-1)!.bytes;
    console.log(
      `| ${what} | ${s.toFixed(2)} | ${(x.member / 1e6 / s).toFixed(0)} | ${(s / cp).toFixed(2)}x | ` +
        `${(Math.max(...xs.map((r) => r.rssKiB)) / 1024).toFixed(0)} | ${bytes ? gbs(bytes) : ''} |`,
    );
  }
  const whole = median(x.rows.get('whole run 3.5.36 -> 3.6.17 (entrypoint)')!.map((r) => r.s));
  const fl = median(x.rows.get("etcd's floor: 3.6.17 started until a write, stopped")!.map((r) => r.s));
  const cpDb = median(x.rows.get('`cp member/snap/db`')!.map((r) => r.s));
  console.log(
    `\nWhole run / (floor + cp of the db): ${whole.toFixed(2)} / (${fl.toFixed(2)} + ${cpDb.toFixed(2)}) = ` +
      `${(whole / (fl + cpDb)).toFixed(2)}x`,
  );
}

/** A plain SVG line chart: seconds against GB, one line per row. */
function svg(all: Array<{ gb: number; rows: Map<string, Sample[]> }>): string {
  const W = 900,
    H = 520,
    L = 60,
    B = 40,
    R = 340,
    T = 20;
  const names = [...all[0]!.rows.keys()].filter((n) => !n.startsWith('restore, baseline'));
  const maxS = Math.max(...all.flatMap((a) => names.map((n) => median(a.rows.get(n)!.map((r) => r.s)))));
  const maxG = Math.max(...all.map((a) => a.gb));
  const x = (g: number) => L + ((W - L - R) * g) / maxG;
  const y = (s: number) => H - B - ((H - B - T) * s) / maxS;
  const colors = [
    '#000',
    '#888',
    '#c00',
    '#e66',
    '#06c',
    '#6af',
    '#090',
    '#6c6',
    '#a0a',
    '#d8d',
    '#f80',
    '#fb6',
    '#0aa',
    '#555',
    '#963',
  ];
  const lines = names.map((n, i) => {
    const pts = all
      .map((a) => `${x(a.gb).toFixed(1)},${y(median(a.rows.get(n)!.map((r) => r.s))).toFixed(1)}`)
      .join(' ');
    const c = colors[i % colors.length];
    return (
      `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>` +
      `<text x="${W - R + 10}" y="${T + 14 * i + 10}" fill="${c}" font-size="11">` +
      `${n.replace(/`/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`
    );
  });
  const ticks = all.map(
    (a) => `<text x="${x(a.gb)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${a.gb} GB</text>`,
  );
  const yt = [0, 0.25, 0.5, 0.75, 1].map(
    (f) =>
      `<text x="${L - 6}" y="${y(maxS * f) + 4}" font-size="11" text-anchor="end">${(maxS * f).toFixed(0)} s</text>`,
  );
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    '<rect width="100%" height="100%" fill="#fff"/>' +
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#000"/>` +
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#000"/>` +
    `${ticks.join('')}${yt.join('')}${lines.join('')}</svg>\n`
  );
}

try {
  await main();
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
