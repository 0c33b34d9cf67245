// How long readV2Content (src/inspect/v2content.ts) takes on a stopped etcd 3.5.30 member: one whose
// 64 MB preallocated WAL holds a few entries, and one whose WAL holds `n` v3 puts (default 99,000,
// under the default --snapshot-count of 100,000, so no snapshot is taken and every entry is read).
// Each data dir is read `runs` times in this process after one warm-up read.
// Usage: node bench/v2content.ts [n=99000] [runs=5] [port=24400]
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readV2Content } from '../src/inspect/v2content.ts';
import { readWal } from '../src/etcd/disk/wal.ts';
import { bin, flags, fmtMs, machine, untilWrite } from './lib.ts';

const n = Number(process.argv[2] ?? 99_000);
const runs = Number(process.argv[3] ?? 5);
const port = Number(process.argv[4] ?? 24400);
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Runs etcd 3.5.30 on `dir`, puts `count` keys through the JSON gateway (32 in flight), stops it. */
async function write(dir: string, count: number): Promise<void> {
  const args = [...flags('m1', dir, port, port + 1), '--heartbeat-interval', '10', '--election-timeout', '100'];
  const p = execa(bin('etcd', '3.5.30'), args, { reject: false });
  try {
    await untilWrite(port);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const body = JSON.stringify({ key: b64(`/registry/k/${i}`), value: b64('v'.repeat(100)) });
        const r = await fetch(`http://127.0.0.1:${port}/v3/kv/put`, { method: 'POST', body });
        if (!r.ok) throw new Error(`put ${i}: HTTP ${r.status}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  } finally {
    p.kill('SIGTERM');
    await p;
  }
}

async function time(dir: string): Promise<number[]> {
  await readV2Content(dir);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await readV2Content(dir);
    out.push(performance.now() - t0);
  }
  return out;
}

console.log(
  `machine: ${machine()}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-v2content-'));
try {
  for (const [label, count] of [
    ['few entries', 3],
    [`${n} puts`, n],
  ] as const) {
    const dir = path.join(root, String(count));
    const t0 = Date.now();
    await write(dir, count);
    const wal = path.join(dir, 'member', 'wal');
    const files = await fs.readdir(wal);
    const sizes = await Promise.all(files.map(async (f) => (await fs.stat(path.join(wal, f))).size));
    const log = await readWal(wal);
    const c = await readV2Content(dir);
    const mib = sizes.map((s) => `${(s / 2 ** 20).toFixed(1)} MiB`).join(' ');
    console.log(
      `${label}: written in ${Date.now() - t0} ms; WAL ${files.length} file(s), ${mib}; ` +
        `${log.entries.length} entries, snapshot ${c.snapshot?.index ?? 'none'}, ` +
        `v2 after it ${c.v2EntriesAfterSnapshot}`,
    );
    console.log(`  readV2Content: ${fmtMs(await time(dir))}`);
  }
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
