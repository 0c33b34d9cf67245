// The pod start with nothing to migrate, without the exec: two builds of the entrypoint side by side.
// Each run is `/usr/bin/time node <entry> --data-dir <at target> --target-version 3.5.30 --bin-dir <bin>`;
// the builds alternate round by round, so load on the machine falls on both alike.
// Run: node bench/startup.ts <baseline dir> <candidate dir> [runs]   (dirs as scripts/build.mjs <dir>
// --compile-cache makes them; NODE_DISABLE_COMPILE_CACHE=1 in the environment measures without it).
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machine, median, medianDiff } from './lib.ts';

const [baseDir, candDir, runsArg] = process.argv.slice(2);
if (!baseDir || !candDir) throw new Error('usage: node bench/startup.ts <baseline dir> <candidate dir> [runs]');
const runs = Number(runsArg ?? 30);
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-startup-'));
const [data, bin] = [path.join(root, 'data'), path.join(root, 'bin')];
await fs.mkdir(path.join(data, 'member'), { recursive: true });
await fs.writeFile(path.join(data, 'version.txt'), '3.5.30/etcd3');
await fs.mkdir(bin);
await fs.writeFile(path.join(bin, 'etcd-3.5.30'), '');

interface Run {
  wall: number;
  cpu: number;
  rss: number;
}

// The CPU time (user + sys) the process used, read at its exit by a one-line --import hook (as in
// bench/steps.ts): finer than /usr/bin/time's 10 ms ticks.
const hook =
  'data:text/javascript,' +
  "process.on('exit',()=>{const u=process.cpuUsage();process._rawDebug('cpu-ms '+(u.user+u.system)/1000)})";

/** One run: wall time here, CPU time from the hook, max RSS from /usr/bin/time. */
function timed(dir: string): Run {
  const entry = path.join(dir, 'etcd-migrate.mjs');
  const own = ['--data-dir', data, '--target-version', '3.5.30', '--bin-dir', bin];
  const argv = ['-f', 'time %M', process.execPath, '--import', hook, entry, ...own];
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', argv, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${entry} exited ${r.status}: ${r.stderr}`);
  const cpu = Number(/cpu-ms ([\d.]+)/.exec(r.stderr)![1]);
  return { wall, cpu, rss: Number(/time (\d+)/.exec(r.stderr)![1]) / 1024 };
}

const res: Run[][] = [[], []];
for (let i = 0; i <= runs; i++) {
  const order = i % 2 ? [1, 0] : [0, 1];
  for (const k of order) {
    const r = timed(k ? candDir : baseDir);
    if (i > 0) res[k]!.push(r); // round 0 warms the page cache
  }
}
await fs.rm(root, { recursive: true, force: true });
const col = (k: number, f: keyof Run) => res[k]!.map((r) => r[f]);
console.log(
  `machine: ${machine()}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; ${runs} runs each, alternating`,
);
const cache = process.env.NODE_DISABLE_COMPILE_CACHE
  ? 'off (NODE_DISABLE_COMPILE_CACHE=1)'
  : 'the compile cache beside each bundle';
console.log(`cache: ${cache}`);
for (const [k, name] of [
  [0, `baseline  ${baseDir}`],
  [1, `candidate ${candDir}`],
] as const) {
  const [wall, cpu, rss] = [median(col(k, 'wall')), median(col(k, 'cpu')), median(col(k, 'rss'))];
  console.log(`${name}: wall ${wall.toFixed(1)} ms, CPU ${cpu.toFixed(1)} ms, max RSS ${rss.toFixed(1)} MiB (medians)`);
}
const [dw, dc] = [medianDiff(col(1, 'wall'), col(0, 'wall')), medianDiff(col(1, 'cpu'), col(0, 'cpu'))];
console.log(
  `candidate - baseline: wall ${dw.toFixed(1)} ms, CPU ${dc.toFixed(1)} ms (medians of round-by-round differences)`,
);
