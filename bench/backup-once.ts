// One pre-step backup in its own process, with the src tree given (this one or a baseline's copy):
//   [BENCH_CODEC=none|zstd] node bench/backup-once.ts <src-dir> <data-dir> <backup-dir> [key-file]
// Prints {"s": seconds of createBackup, "cpu": CPU seconds it used (all threads), "rssKiB": peak RSS
// of this process, "bytes": file size}.
import { promises as fs } from 'node:fs';
import path from 'node:path';

const [src, dataDir, out, keyFile] = process.argv.slice(2);
if (!src || !dataDir || !out)
  throw new Error('usage: node bench/backup-once.ts <src-dir> <data-dir> <backup-dir> [key-file]');
const { createBackup } = await import(path.resolve(src, 'backup/store.ts'));
const { backupId } = await import(path.resolve(src, 'backup/retention.ts'));
const { keyFromFileBytes } = await import(path.resolve(src, 'backup/crypt.ts'));
const key = keyFile ? keyFromFileBytes(await fs.readFile(keyFile), keyFile) : undefined;
const t0 = performance.now();
const c0 = process.cpuUsage();
const b = await createBackup(
  dataDir,
  { version: { major: 3, minor: 5, patch: 30 }, storage: 'etcd3' },
  { dir: out, id: backupId(dataDir), keep: 10, key, codec: process.env.BENCH_CODEC ?? 'none' },
);
const s = (performance.now() - t0) / 1000;
const c = process.cpuUsage(c0);
console.log(
  JSON.stringify({ s, cpu: (c.user + c.system) / 1e6, rssKiB: process.resourceUsage().maxRSS, bytes: b.size }),
);
