// Benchmark: backing up a large etcd data dir, next to plain file copies, in one run.
//   ETCD_BIN_DIR=.cache/etcd-bin node bench/backup.ts [size-MB=200] [runs=3]
// Prints a Markdown table (median of the runs, warm page cache) for BENCHMARKS.md.
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBackup } from '../src/backup/store.ts';
import { backupId } from '../src/backup/retention.ts';
import { median, sizeOf } from './lib.ts';

const BIN = path.resolve(process.env.ETCD_BIN_DIR ?? '.cache/etcd-bin');
const ENTRY = path.resolve(import.meta.dirname, '../bin/etcd-migrate.js');
const sizeMb = Number(process.argv[2] ?? 200);
const runs = Number(process.argv[3] ?? 3);
const base = Number(process.env.BENCH_PORT_BASE ?? 26500);
const [port, peer] = [base, base + 1];
const client = `http://127.0.0.1:${port}`;

function startEtcd(dir: string) {
  const p = `http://127.0.0.1:${peer}`;
  return execa(
    path.join(BIN, 'etcd-3.5.30'),
    [
      '--name',
      'b',
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
      `b=${p}`,
      '--heartbeat-interval',
      '10',
      '--election-timeout',
      '100',
      '--quota-backend-bytes',
      String(8 * 1024 ** 3),
    ],
    { reject: false, stdio: 'ignore' },
  );
}

async function waitReady(): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const ok = await fetch(`${client}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('etcd did not start');
}

/** ~sizeMb of values: 100 KiB each, base64 of random bytes (compresses to ~75%, like mixed real data). */
async function fill(): Promise<number> {
  const n = Math.ceil((sizeMb * 1024 * 1024) / (100 * 1024));
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const value = crypto.randomBytes(75 * 1024).toString('base64');
      const body = JSON.stringify({
        key: Buffer.from(`/registry/bench/${i}`).toString('base64'),
        value: Buffer.from(value).toString('base64'),
      });
      const r = await fetch(`${client}/v3/kv/put`, { method: 'POST', body });
      if (!r.ok) throw new Error(`put ${i}: ${r.status} ${await r.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return n;
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
try {
  const dir = path.join(root, 'data');
  const etcd = startEtcd(dir);
  await waitReady();
  const keys = await fill();
  etcd.kill('SIGTERM');
  await etcd;
  await fs.writeFile(path.join(dir, 'version.txt'), '3.5.30/etcd3');
  const db = (await fs.stat(path.join(dir, 'member/snap/db'))).size;
  const member = await sizeOf(path.join(dir, 'member'));
  const key = path.join(root, 'key');
  await fs.writeFile(key, crypto.randomBytes(48).toString('base64'), { mode: 0o600 });
  const out = path.join(root, 'out');
  const reset = () => fs.rm(out, { recursive: true, force: true }).then(() => fs.mkdir(out));
  // Every measurement once per round, round after round: a change in the machine's load (other
  // jobs share it) then touches all of them alike.
  const rows: Array<{ what: string; fn: () => Promise<void>; live?: boolean; times: number[]; bytes: number }> = [];
  const row = async (what: string, fn: () => Promise<void>, live = false) => {
    rows.push({ what, fn, live, times: [], bytes: 0 });
  };
  const outFile = () =>
    fs.readdir(out).then((n) => sizeOf(path.join(out, n.find((x) => !x.endsWith('.part')) ?? n[0]!)));

  await row('`cp member/snap/db` (baseline: the db file)', () =>
    execa('cp', [path.join(dir, 'member/snap/db'), path.join(out, 'db')]).then(() => {}),
  );
  await row('`cp -a member` (baseline: the member dir)', () =>
    execa('cp', ['-a', path.join(dir, 'member'), path.join(out, 'member')]).then(() => {}),
  );
  const target = (k: Buffer | undefined) => ({ dir: out, id: backupId(dir), keep: 10, key: k });
  await row('pre-step backup: archive (zstd) + read back + verify', () =>
    createBackup(dir, { version: { major: 3, minor: 5, patch: 30 }, storage: 'etcd3' }, target(undefined)).then(
      () => {},
    ),
  );
  const k = Buffer.from((await fs.readFile(key, 'utf8')).trim());
  await row('pre-step backup, encrypted (AES-256-GCM)', () =>
    createBackup(dir, { version: { major: 3, minor: 5, patch: 30 }, storage: 'etcd3' }, target(k)).then(() => {}),
  );
  const cmd = (extra: string[]) => async () => {
    const r = await execa(
      process.execPath,
      [
        ENTRY,
        'backup',
        path.join(out, 'snap'),
        '--data-dir',
        dir,
        '--bin-dir',
        BIN,
        '--port',
        String(port),
        '--peer-port',
        String(peer),
        ...extra,
      ],
      { reject: false },
    );
    if (r.exitCode !== 0) throw new Error(r.stderr);
  };
  await row('`etcd-migrate backup --data-dir` (copy, etcd, snapshot save, verify)', cmd([]));
  await row('`etcd-migrate backup --data-dir`, encrypted', cmd(['--backup-encryption-key-file', key]));
  await row(
    '`etcdctl snapshot save` from the running etcd (baseline: a snapshot)',
    () =>
      execa(path.join(BIN, 'etcdctl-3.5.30'), ['--endpoints', client, 'snapshot', 'save', path.join(out, 'snap')]).then(
        () => {},
      ),
    true,
  );
  await row(
    '`etcd-migrate backup --endpoints` (snapshot save, verify)',
    async () => {
      const r = await execa(
        process.execPath,
        [ENTRY, 'backup', path.join(out, 'snap'), '--endpoints', client, '--bin-dir', BIN],
        { reject: false },
      );
      if (r.exitCode !== 0) throw new Error(r.stderr);
    },
    true,
  );
  for (let round = 0; round < runs; round++) {
    for (const r of rows) {
      await reset();
      const live = r.live ? startEtcd(dir) : undefined;
      if (live) await waitReady();
      const t = performance.now();
      await r.fn();
      r.times.push((performance.now() - t) / 1000);
      r.bytes = await outFile();
      if (live) {
        live.kill('SIGTERM');
        await live;
      }
      process.stderr.write(
        `round ${round + 1}: ${r.what}: ${r.times.at(-1)!.toFixed(2)} s (load ${os.loadavg()[0]!.toFixed(1)})\n`,
      );
    }
  }

  const cpu = (await fs.readFile('/proc/cpuinfo', 'utf8')).match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  console.log(
    `Data: ${keys} keys of 100 KiB written by etcd 3.5.30; ` +
      `db ${(db / 2 ** 20).toFixed(0)} MiB, member dir ${(member / 2 ** 20).toFixed(0)} MiB ` +
      '(WAL segments preallocated).',
  );
  console.log(
    `Machine: ${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
      `${os.type()} ${os.release()}, Node ${process.version}; ${new Date().toISOString().slice(0, 10)}; ` +
      `median of ${runs} runs, warm page cache.\n`,
  );
  console.log('| what | seconds | output size (MiB) | vs `cp` of the db |');
  console.log('|---|---:|---:|---:|');
  const base0 = median(rows[0]!.times);
  for (const r of rows)
    console.log(
      `| ${r.what} | ${median(r.times).toFixed(2)} | ${(r.bytes / 2 ** 20).toFixed(0)} | ` +
        `${(median(r.times) / base0).toFixed(1)}x |`,
    );
  console.log(`\nLoad average (1 min) at the end: ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores.`);
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
