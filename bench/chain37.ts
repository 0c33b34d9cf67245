// Issue 15: 3.5.30 -> 3.7.3 on a small data dir, the whole entrypoint run (its verified backup, the
// patch to 3.5.36, the sealed 3.6.17 step, the check of the WAL and 3.7.3) side by side with the raw
// etcd steps it stands for: 3.5.36, 3.6.17 (with --snapshot-count=1, as 3.7 needs) and 3.7.3 each
// started on the data until a write commits, then stopped. Alternating, pair by pair.
// Run: node bench/chain37.ts [runs] [keys]   (make etcd-bin first; Node 24)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: a plain .mjs build script without types
import { bundle, fillCompileCache } from '../scripts/build.mjs';
import { BIN_DIR } from '../test/helpers/env.ts';
import { bin, flags, fmtMs, machine, median, pairs, untilWrite } from './lib.ts';

const runs = Number(process.argv[2] ?? 7);
const keys = Number(process.argv[3] ?? 1000);
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
const app = path.join(root, 'app');
await (bundle as (dir: string) => Promise<void>)(app);
// As the image ships it: with the V8 code of its pod start paths (image/build.sh --compile-cache).
await (fillCompileCache as (dir: string) => Promise<void>)(app);
const entry = path.join(app, 'etcd-migrate.mjs');
const portBase = Number(process.env.BENCH_PORT_BASE ?? 10379);
const [port, peerPort] = [portBase, portBase + 1];
const lone = ['--heartbeat-interval', '10', '--election-timeout', '100'];
console.log(
  `machine: ${machine()}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; ${runs} pairs`,
);

// A 3.5.30 data dir with `keys` keys of ~200 bytes.
const base = path.join(root, 'base');
const p = execa(bin('etcd', '3.5.30'), [...flags('m1', base, port, peerPort), ...lone], { reject: false });
await untilWrite(port);
const value = Buffer.from('v'.repeat(200)).toString('base64');
for (let i = 0; i < keys; i += 100) {
  await Promise.all(
    Array.from({ length: Math.min(100, keys - i) }, (_, j) =>
      fetch(`http://127.0.0.1:${port}/v3/kv/put`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from(`/registry/k${i + j}`).toString('base64'), value }),
      }),
    ),
  );
}
p.kill('SIGTERM');
await p;
await fs.writeFile(path.join(base, 'version.txt'), '3.5.30/etcd3');

let k = 0;
const copy = async () => {
  const d = path.join(root, `c${k++}`);
  await fs.cp(base, d, { recursive: true });
  return d;
};
const clean = async (d: string) => {
  await fs.rm(d, { recursive: true });
  await fs.rm(`${d}.backups`, { recursive: true, force: true });
};
const steps: string[] = [];
const whole = async (): Promise<number> => {
  const d = await copy();
  const t0 = performance.now();
  const r = await execa(process.execPath, [
    entry,
    '--data-dir',
    d,
    '--target-version',
    '3.7.3',
    '--bin-dir',
    BIN_DIR,
    '--name',
    'm1',
    '--port',
    String(port),
    '--peer-port',
    String(peerPort),
  ]);
  const ms = performance.now() - t0;
  steps.push(
    String(r.stderr)
      .split('\n')
      .filter((l) => /backup of|step \d|sealed/.test(l))
      .map((l) => l.replace(/^etcd-migrate: /, '').slice(0, 90))
      .join(' | '),
  );
  await clean(d);
  return ms;
};
const raw = async (): Promise<number> => {
  const d = await copy();
  const t0 = performance.now();
  for (const v of ['3.5.36', '3.6.17', '3.7.3']) {
    // 3.7 panics on 3.5's v2 requests after the WAL's last snapshot: 3.6 must snapshot past them (a second write).
    const seal = v === '3.6.17' ? ['--snapshot-count=1'] : [];
    const e = execa(bin('etcd', v), [...flags('m1', d, port, peerPort), ...lone, ...seal], { reject: false });
    await untilWrite(port);
    if (seal.length) await untilWrite(port);
    e.kill('SIGTERM');
    await e;
  }
  const ms = performance.now() - t0;
  await clean(d);
  return ms;
};
const r = await pairs(runs, whole, raw);
console.log(
  `3.5.30 -> 3.7.3, ${keys} keys: whole entrypoint run ${fmtMs(r.a)}; ` +
    `raw etcd 3.5.36, 3.6.17, 3.7.3 start+write+stop ${fmtMs(r.b)}; ` +
    `ratio median ${median(r.ratios).toFixed(2)} ` +
    `(pairwise, min ${Math.min(...r.ratios).toFixed(2)}, max ${Math.max(...r.ratios).toFixed(2)})`,
);
console.log(`last run's lines: ${steps.at(-1)}`);
await fs.rm(root, { recursive: true, force: true });
