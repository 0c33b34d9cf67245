// One restore of a backup archive in its own process, with the src tree given (this one or a baseline's copy):
//   node bench/restore-once.ts <src-dir> <backup-file> <target-dir> [key-file]
// Extracts and checks every file into <target-dir>/member (which must not exist). Prints {"s": seconds,
// "cpu": CPU seconds (all threads), "rssKiB": peak RSS of this process}.
import { promises as fs } from 'node:fs';
import path from 'node:path';

const [src, file, target, keyFile] = process.argv.slice(2);
if (!src || !file || !target)
  throw new Error('usage: node bench/restore-once.ts <src-dir> <backup-file> <target-dir> [key-file]');
const { readArchiveFile } = await import(path.resolve(src, 'backup/file.ts'));
const { keyFromFileBytes } = await import(path.resolve(src, 'backup/crypt.ts'));
const key = keyFile ? keyFromFileBytes(await fs.readFile(keyFile), keyFile) : undefined;
await fs.mkdir(target, { recursive: true });
const t0 = performance.now();
const c0 = process.cpuUsage();
await readArchiveFile(file, key, target);
const s = (performance.now() - t0) / 1000;
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ s, cpu: (c.user + c.system) / 1e6, rssKiB: process.resourceUsage().maxRSS }));
