// Issue 8, items 1-2: what the entrypoint adds.
//  1. nothing to migrate: entrypoint + exec of etcd until etcd commits a write, vs exec'ing etcd directly;
//  2. one upgrade step (3.4.23 -> 3.5.30) as the entrypoint logs it, vs a raw etcd start + first write + stop
//     with the same flags; and the whole 3.3.25 -> 3.5.30 chain on a fresh data dir.
// Run: node bench/steps.ts [runs]   (make etcd-bin first; Node 24)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: a plain .mjs build script without types
import { bundle } from '../scripts/build.mjs';
import { BIN_DIR } from '../test/helpers/env.ts';
import { bin, fmtMs, flags, machine, makeData, median, pairs, untilWrite } from './lib.ts';

const runs = Number(process.argv[2] ?? 9);
await (bundle as () => Promise<void>)();
const entry = path.resolve('dist/etcd-migrate.mjs');
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
const [port, peerPort, hidden, hiddenPeer] = [10379, 10380, 10381, 10382];
const lone = ['--heartbeat-interval', '10', '--election-timeout', '100'];
console.log(`machine: ${machine()}; ${runs} runs each, alternating`);

// 1. Nothing to migrate.
const d1 = path.join(root, 'd1');
await makeData('3.5.30', d1, port, peerPort);
await fs.writeFile(path.join(d1, 'version.txt'), '3.5.30/etcd3');
const serve = async (cmd: string, args: string[]): Promise<number> => {
  const t0 = performance.now();
  const p = execa(cmd, args, { reject: false });
  await untilWrite(port);
  const ms = performance.now() - t0;
  p.kill('SIGTERM');
  await p;
  return ms;
};
const etcdArgs = [...flags('m1', d1, port, peerPort), ...lone];
const nothing = await pairs(runs,
  () => serve(process.execPath, [entry, '--data-dir', d1, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--name', 'm1', '--port', String(hidden), '--peer-port', String(hiddenPeer), '--', ...etcdArgs]),
  () => serve(bin('etcd', '3.5.30'), etcdArgs));
console.log(`1. nothing to migrate, start to first committed write: entrypoint+exec ${fmtMs(nothing.a)}; etcd directly ${fmtMs(nothing.b)}; added ${(median(nothing.a) - median(nothing.b)).toFixed(1)} ms (median of differences ${median(nothing.a.map((a, i) => a - nothing.b[i]!)).toFixed(1)} ms)`);

// 2. One upgrade step, from the entrypoint's own log line, vs raw start + write + stop.
const base34 = path.join(root, 'base34');
await makeData('3.4.23', base34, port, peerPort);
await fs.writeFile(path.join(base34, 'version.txt'), '3.4.23/etcd3');
let k = 0;
const copy = async (from: string) => { const d = path.join(root, `c${k++}`); await fs.cp(from, d, { recursive: true }); return d; };
const backupMs: number[] = [];
const step = async (): Promise<number> => {
  const d = await copy(base34);
  const r = await execa(process.execPath, [entry, '--data-dir', d, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--name', 'm1', '--port', String(hidden), '--peer-port', String(peerPort)]);
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
console.log(`2. one step 3.4.23 -> 3.5.30: entrypoint step ${fmtMs(one.a)}; raw etcd start+write+stop ${fmtMs(one.b)}; ratio median ${median(one.ratios).toFixed(2)} (pairwise, min ${Math.min(...one.ratios).toFixed(2)}, max ${Math.max(...one.ratios).toFixed(2)}); the run's verified backup before it (not in the step's time): ${fmtMs(backupMs.slice(1))}`);

// 2b. The whole chain 3.3.25 -> 3.5.30 on a fresh (empty-keyspace) data dir: process wall time.
const base33 = path.join(root, 'base33');
await makeData('3.3.25', base33, port, peerPort);
await fs.writeFile(path.join(base33, 'version.txt'), '3.3.25/etcd3');
const chain: number[] = [];
for (let i = 0; i < runs; i++) {
  const d = await copy(base33);
  const t0 = performance.now();
  await execa(process.execPath, [entry, '--data-dir', d, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--name', 'm1', '--port', String(hidden), '--peer-port', String(peerPort)]);
  chain.push(performance.now() - t0);
  await fs.rm(d, { recursive: true });
  await fs.rm(`${d}.backups`, { recursive: true, force: true });
}
console.log(`2b. 3.3.25 -> 3.5.30 (2 steps) whole process: ${fmtMs(chain)}`);
await fs.rm(root, { recursive: true, force: true });
