// One entrypoint per data dir: a lock file holding the PID (and its start time, against PID reuse).
// A lock whose process is gone is stale: it is taken over, by exactly one contender.
import { promises as fs, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { LOCK_FILE } from './datadir.ts';
import { UsageError } from './errors.ts';
import { errno } from './fsx.ts';


export interface Lock {
  release: () => Promise<void>;
}

/** The kernel's start time of a process (clock ticks since boot), or undefined if it is gone. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export async function acquireLock(dataDir: string, pid = process.pid): Promise<Lock> {
  const file = path.join(dataDir, LOCK_FILE);
  const mine = `${file}.${pid}`;
  try {
    await fs.writeFile(mine, `${pid} ${processStart(pid) ?? ''}\n`, { mode: 0o600 });
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await fs.link(mine, file);
        return { release: () => fs.rm(file, { force: true }) };
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      const holder = await fs.readFile(file, 'utf8').catch(() => '');
      const [p, start] = holder.trim().split(' ');
      const holderPid = Number(p);
      if (holderPid > 0 && holderPid !== pid && processStart(holderPid) !== undefined && processStart(holderPid) === start) {
        // After the exec the lock stays with etcd itself (same PID): no migration under a running etcd.
        const exe = path.basename(readlinkSafe(`/proc/${holderPid}/exe`));
        if (/^etcd/.test(exe)) throw new UsageError(`etcd (pid ${holderPid}, ${exe}) is running on ${dataDir}; stop it before migrating its data`);
        throw new UsageError(`another etcd-migrate (pid ${holderPid}) is working on ${dataDir}; wait for it to finish, or stop it`);
      }
      // Stale: its process is gone (or the PID now belongs to another process). Only one
      // contender's rename succeeds; the others find the lock gone or new and try again.
      await fs.rename(file, `${file}.stale.${pid}`).then(() => fs.rm(`${file}.stale.${pid}`, { force: true }), () => {});
    }
    throw new UsageError(`could not take the lock ${file}; remove it if no etcd-migrate is running`);
  } finally {
    await fs.rm(mine, { force: true });
  }
}

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}
