// Issue 8, items 1-2: what the entrypoint adds.
//  1. nothing to migrate: entrypoint + exec of etcd until etcd commits a write, vs exec'ing etcd directly;
//     the entrypoint as the image ships it (with its compile cache) and without the cache, alternating;
//     1b. the same entrypoint without the exec (process start to exit), against `node` running an empty module;
//  2. one upgrade step (3.4.23 -> 3.5.30) as the entrypoint logs it, vs a raw etcd start + first write + stop
//     with the same flags; and the whole 3.3.25 -> 3.5.30 chain on a fresh data dir.
// Run: node bench/steps.ts [runs]   (make etcd-bin first; Node 24; BASELINE_ENTRY: see 1b)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: a plain .mjs build script without types
import { bundle, fillCompileCache } from '../scripts/build.mjs';
import { BIN_DIR } from '../test/helpers/env.ts';
import { bin, fmtMs, flags, machine, makeData, median, medianDiff, pairs, rounds, untilWrite } from './lib.ts';

const runs = Number(process.argv[2] ?? 9);
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
// The entrypoint as image/build.sh lays it out: the bundle and its compile cache.
const app = path.join(root, 'app');
await (bundle as (dir: string) => Promise<void>)(app);
await (fillCompileCache as (dir: string) => Promise<void>)(app);
const entry = path.join(app, 'etcd-migrate.mjs');
const noCache = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' };
// BENCH_PORT_BASE moves the four loopback ports, for two benchmarks on one machine at once.
const portBase = Number(process.env.BENCH_PORT_BASE ?? 10379);
const [port, peerPort, hidden, hiddenPeer] = [portBase, portBase + 1, portBase + 2, portBase + 3];
const lone = ['--heartbeat-interval', '10', '--election-timeout', '100'];
console.log(
  `machine: ${machine()}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; ${runs} runs each, alternating`,
);

// 1. Nothing to migrate.
const d1 = path.join(root, 'd1');
await makeData('3.5.30', d1, port, peerPort);
await fs.writeFile(path.join(d1, 'version.txt'), '3.5.30/etcd3');
const serve = async (cmd: string, args: string[], env = process.env): Promise<number> => {
  const t0 = performance.now();
  const p = execa(cmd, args, { reject: false, env, extendEnv: false });
  await untilWrite(port);
  const ms = performance.now() - t0;
  p.kill('SIGTERM');
  await p;
  return ms;
};
const etcdArgs = [...flags('m1', d1, port, peerPort), ...lone];
const own = [
  '--data-dir',
  d1,
  '--target-version',
  '3.5.30',
  '--bin-dir',
  BIN_DIR,
  '--name',
  'm1',
  '--port',
  String(hidden),
  '--peer-port',
  String(hiddenPeer),
];
const [direct, cached, uncached] = await rounds(runs, [
  () => serve(bin('etcd', '3.5.30'), etcdArgs),
  () => serve(process.execPath, [entry, ...own, '--', ...etcdArgs]),
  () => serve(process.execPath, [entry, ...own, '--', ...etcdArgs], noCache),
]);
console.log(
  `1. nothing to migrate, start to first committed write: etcd directly ${fmtMs(direct!)}; ` +
    `entrypoint+exec with its compile cache ${fmtMs(cached!)}; without ${fmtMs(uncached!)}`,
);
console.log(
  `   added by the entrypoint: with the cache ${medianDiff(cached!, direct!).toFixed(1)} ms, ` +
    `without ${medianDiff(uncached!, direct!).toFixed(1)} ms (medians of round-by-round differences); ` +
    `the cache saves ${medianDiff(uncached!, cached!).toFixed(1)} ms`,
);

// 1b. The entrypoint's own work: the same run without the exec, process start to exit, against an
// empty module. Also the CPU time each process used (user + sys, read at its exit by a one-line
// --import hook that every variant loads), which a busy machine disturbs less than wall time.
const empty = path.join(root, 'empty.mjs');
await fs.writeFile(empty, '');
const hook =
  'data:text/javascript,' +
  "process.on('exit',()=>{const u=process.cpuUsage();process._rawDebug('cpu-ms '+(u.user+u.system)/1000)})";
// BASELINE_ENTRY=<another build's etcd-migrate.mjs> adds it as a fourth variant (e.g. main's dist/).
const baseline = process.env.BASELINE_ENTRY;
const cpu: number[][] = [[], [], [], []];
const wall =
  (k: number, args: string[], env = process.env) =>
  async (): Promise<number> => {
    const t0 = performance.now();
    const r = await execa(process.execPath, ['--import', hook, ...args], { env, extendEnv: false });
    const ms = performance.now() - t0;
    cpu[k]!.push(Number(/cpu-ms ([\d.]+)/.exec(String(r.stderr))![1]));
    return ms;
  };
const [bare, ownCached, ownUncached, other] = await rounds(runs * 3, [
  wall(0, [empty]),
  wall(1, [entry, ...own]),
  wall(2, [entry, ...own], noCache),
  ...(baseline ? [wall(3, [baseline, ...own])] : []),
]);
for (const c of cpu) c.splice(0, 1); // the warm-up round
console.log(
  `1b. without the exec, process start to exit: node on an empty module ${fmtMs(bare!)}; ` +
    `entrypoint with its compile cache ${fmtMs(ownCached!)}; without ${fmtMs(ownUncached!)}`,
);
console.log(
  `   the entrypoint's own work: with the cache ${medianDiff(ownCached!, bare!).toFixed(1)} ms, ` +
    `without ${medianDiff(ownUncached!, bare!).toFixed(1)} ms`,
);
if (baseline)
  console.log(
    `   ${baseline}: ${fmtMs(other!)}, own work ${medianDiff(other!, bare!).toFixed(1)} ms; ` +
      `CPU time ${fmtMs(cpu[3]!)}, own ${medianDiff(cpu[3]!, cpu[0]!).toFixed(1)} ms`,
  );
console.log(
  `   CPU time: node on an empty module ${fmtMs(cpu[0]!)}; ` +
    `entrypoint with its compile cache ${fmtMs(cpu[1]!)}; without ${fmtMs(cpu[2]!)}; ` +
    `the entrypoint's own: ${medianDiff(cpu[1]!, cpu[0]!).toFixed(1)} ms with the cache, ` +
    `${medianDiff(cpu[2]!, cpu[0]!).toFixed(1)} ms without`,
);

// 2. One upgrade step, from the entrypoint's own log line, vs raw start + write + stop.
const base34 = path.join(root, 'base34');
await makeData('3.4.23', base34, port, peerPort);
await fs.writeFile(path.join(base34, 'version.txt'), '3.4.23/etcd3');
let k = 0;
const copy = async (from: string) => {
  const d = path.join(root, `c${k++}`);
  await fs.cp(from, d, { recursive: true });
  return d;
};
const backupMs: number[] = [];
const step = async (): Promise<number> => {
  const d = await copy(base34);
  const r = await execa(process.execPath, [
    entry,
    '--data-dir',
    d,
    '--target-version',
    '3.5.30',
    '--bin-dir',
    BIN_DIR,
    '--name',
    'm1',
    '--port',
    String(hidden),
    '--peer-port',
    String(peerPort),
  ]);
  const m = /step 1\/1 done in ([\d.]+) s/.exec(r.stderr);
  const b = /read back and verified in ([\d.]+) s/.exec(r.stderr);
  backupMs.push(Number(b?.[1] ?? NaN) * 1000);
  await fs.rm(d, { recursive: true });
  await fs.rm(`${d}.backups`, { recursive: true, force: true });
  return Number(m![1]) * 1000;
};
const raw = async (): Promise<number> => {
  const d = await copy(base34);
  const t0 = performance.now();
  const p = execa(bin('etcd', '3.5.30'), [...flags('m1', d, hidden, peerPort), ...lone], { reject: false });
  await untilWrite(hidden);
  p.kill('SIGTERM');
  await p;
  const ms = performance.now() - t0;
  await fs.rm(d, { recursive: true });
  return ms;
};
const one = await pairs(runs, step, raw);
console.log(
  `2. one step 3.4.23 -> 3.5.30: entrypoint step ${fmtMs(one.a)}; raw etcd start+write+stop ${fmtMs(one.b)}; ` +
    `ratio median ${median(one.ratios).toFixed(2)} ` +
    `(pairwise, min ${Math.min(...one.ratios).toFixed(2)}, max ${Math.max(...one.ratios).toFixed(2)}); ` +
    `the run's verified backup before it (not in the step's time): ${fmtMs(backupMs.slice(1))}`,
);

// 2b. The whole chain 3.3.25 -> 3.5.30 on a fresh (empty-keyspace) data dir: process wall time.
const base33 = path.join(root, 'base33');
await makeData('3.3.25', base33, port, peerPort);
await fs.writeFile(path.join(base33, 'version.txt'), '3.3.25/etcd3');
const chain: number[] = [];
for (let i = 0; i < runs; i++) {
  const d = await copy(base33);
  const t0 = performance.now();
  await execa(process.execPath, [
    entry,
    '--data-dir',
    d,
    '--target-version',
    '3.5.30',
    '--bin-dir',
    BIN_DIR,
    '--name',
    'm1',
    '--port',
    String(hidden),
    '--peer-port',
    String(peerPort),
  ]);
  chain.push(performance.now() - t0);
  await fs.rm(d, { recursive: true });
  await fs.rm(`${d}.backups`, { recursive: true, force: true });
}
console.log(`2b. 3.3.25 -> 3.5.30 (2 steps) whole process: ${fmtMs(chain)}`);
await fs.rm(root, { recursive: true, force: true });
