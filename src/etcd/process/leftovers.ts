// After a crash (the entrypoint SIGKILLed, its temporary etcd orphaned), the next run finds the
// etcd still holding the data dir and its port, or an `etcdctl migrate` still writing in the work
// area (its transformer ends by itself once migrate is gone: its pipes close). Once this run holds
// the lock, no live entrypoint nor exec'd etcd owns the data dir, so an etcd or etcdctl that this
// tool started (its environment carries TEMPORARY_MARK) and whose --data-dir lies in it is a
// leftover: stop it. Any other etcd is never signalled: running.ts refuses the run instead.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TEMPORARY_MARK } from './env.ts';

export interface Leftover {
  pid: number;
  tool: 'etcd' | 'etcdctl';
  dataDir: string;
}

/**
 * etcd and etcdctl processes (an etcd-x.y.z or etcdctl-x.y.z binary) started by this tool, whose --data-dir
 * is `dataDir` or inside it. Every pod start
 * scans /proc, so the reads are synchronous: one read per process, no thread-pool round trip each
 * (BENCHMARKS.md).
 */
export async function findLeftoverEtcds(dataDir: string, self = process.pid): Promise<Leftover[]> {
  const root = path.resolve(dataDir);
  const found: Leftover[] = [];
  for (const entry of readOrEmpty(() => readdirSync('/proc'), [] as string[])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === self) continue;
    const argv = readOrEmpty(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8'), '').split('\0');
    const tool = /^(etcd|etcdctl)(-\d+\.\d+\.\d+)?$/.exec(path.basename(argv[0] ?? ''))?.[1] as
      Leftover['tool'] | undefined;
    if (!tool) continue;
    const i = argv.indexOf('--data-dir');
    const dir = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--data-dir='))?.slice(11);
    if (!dir) continue;
    const abs = path.resolve(dir);
    if (abs !== root && !abs.startsWith(`${root}${path.sep}`)) continue;
    const environ = readOrEmpty(() => readFileSync(`/proc/${pid}/environ`, 'utf8'), '').split('\0');
    if (environ.includes(`${TEMPORARY_MARK}=1`)) found.push({ pid, tool, dataDir: abs });
  }
  return found;
}

export async function stopLeftoverEtcds(dataDir: string, log: (line: string) => void): Promise<void> {
  for (const l of await findLeftoverEtcds(dataDir)) {
    log(`stopping ${l.tool} pid ${l.pid} on ${l.dataDir}, left by an interrupted run`);
    signal(l.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(l.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (alive(l.pid)) signal(l.pid, 'SIGKILL');
    while (alive(l.pid)) await new Promise((r) => setTimeout(r, 10));
  }
}

/** A /proc read; a process that is gone (or unreadable) reads as nothing. */
function readOrEmpty<T>(read: () => T, empty: T): T {
  try {
    return read();
  } catch {
    return empty;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
