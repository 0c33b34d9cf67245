// Large etcd 3.5.30 data dirs for the growth benchmarks (bench/growth.ts), written through etcd.
//   ETCD_BIN_DIR=.cache/etcd-bin node bench/bigdata.ts <out-dir> 250 500 1000
// Makes <out-dir>/data-<MiB> for each size (MiB of values), one after the other on one data dir:
// fill to the first size, stop etcd, copy the dir aside, go on to the next size. A dir that
// already exists (with its version.txt) is kept, so a rerun reuses the data.
// Values: 256 KiB, base64 of random bytes (zstd gets them to ~76%, like mixed real data); keys
// /registry/bench/<n>. etcd runs with --quota-backend-bytes 4 GiB (the default 2 GiB is enough for
// 1 GiB but leaves no room) and --snapshot-count 1000, so the WAL is purged to its last 5 segments
// as in a long-running cluster (with the default 100000 the WAL would hold every value again).
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

const BIN = path.resolve(process.env.ETCD_BIN_DIR ?? '.cache/etcd-bin');
export const VALUE_BYTES = 256 << 10;
export const QUOTA = 4 * 1024 ** 3;
const base = Number(process.env.BENCH_PORT_BASE ?? 27000);
const [port, peer] = [base + 10, base + 11];
const client = `http://127.0.0.1:${port}`;

function startEtcd(dir: string) {
  const p = `http://127.0.0.1:${peer}`;
  return execa(
    path.join(BIN, 'etcd-3.5.30'),
    [
      '--name',
      'm1',
      '--data-dir',
      dir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      p,
      '--initial-advertise-peer-urls',
      p,
      '--initial-cluster',
      `m1=${p}`,
      '--heartbeat-interval',
      '10',
      '--election-timeout',
      '100',
      '--quota-backend-bytes',
      String(QUOTA),
      '--snapshot-count',
      '1000',
    ],
    { reject: false, stdio: 'ignore' },
  );
}

async function waitReady(): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (
      await fetch(`${client}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('etcd did not start');
}

/** Puts keys [from, to) with 4 writers. */
async function fill(from: number, to: number): Promise<void> {
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      const value = crypto.randomBytes((VALUE_BYTES * 3) / 4).toString('base64');
      const body = JSON.stringify({
        key: Buffer.from(`/registry/bench/${i}`).toString('base64'),
        value: Buffer.from(value).toString('base64'),
      });
      const r = await fetch(`${client}/v3/kv/put`, { method: 'POST', body });
      if (!r.ok) throw new Error(`put ${i}: ${r.status} ${await r.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

export const dataDirFor = (out: string, mib: number): string => path.join(out, `data-${mib}`);
const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => false,
  );

export async function makeBigData(out: string, sizes: number[]): Promise<void> {
  const work = path.join(out, 'filling');
  await fs.rm(work, { recursive: true, force: true });
  let keys = 0;
  for (const mib of [...sizes].sort((a, b) => a - b)) {
    const dir = dataDirFor(out, mib);
    const want = Math.ceil((mib << 20) / VALUE_BYTES);
    if (await exists(path.join(dir, 'version.txt'))) {
      // Reuse: continue the next size from this one.
      await fs.rm(work, { recursive: true, force: true });
      await fs.cp(dir, work, { recursive: true });
      keys = want;
      continue;
    }
    const t0 = performance.now();
    const etcd = startEtcd(work);
    await waitReady();
    await fill(keys, want);
    etcd.kill('SIGTERM');
    await etcd;
    keys = want;
    await fs.writeFile(path.join(work, 'version.txt'), '3.5.30/etcd3');
    await fs.cp(work, dir, { recursive: true });
    process.stderr.write(`data-${mib}: ${want} keys, filled in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  await fs.rm(work, { recursive: true, force: true });
}

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const [out, ...sizes] = process.argv.slice(2);
  if (!out || sizes.length === 0) throw new Error('usage: node bench/bigdata.ts <out-dir> <MiB>...');
  await fs.mkdir(out, { recursive: true });
  await makeBigData(out, sizes.map(Number));
}
