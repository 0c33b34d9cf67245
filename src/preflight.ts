// Checks made before anything changes: the temporary etcd's ports, free space, a writable data dir.
// Each failure is one UsageError line naming the fix.
import net from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from './errors.ts';
import type { Options } from './options.ts';
import type { Step } from './plan.ts';

/** The temporary etcd's loopback ports must be free. */
export async function checkPortsFree(opts: Options): Promise<void> {
  const ports: Array<[number, string]> = [[opts.port, '--port (the hidden client port)']];
  for (const u of opts.listenPeerUrls.split(',')) {
    const url = new URL(u);
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') ports.push([Number(url.port), 'the peer port (--peer-port / LISTEN_PEER_URLS)']);
  }
  for (const [port, what] of ports) {
    if (!(await portFree(port))) {
      throw new UsageError(`127.0.0.1:${port} is already in use, and ${what} needs it for the temporary etcd; stop whatever holds it (is etcd already running on this data?) or choose another port`);
    }
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** etcd preallocates each WAL segment: 64,000,000 bytes (etcd-facts). */
export const WAL_SEGMENT = 64_000_000;

/**
 * Bytes a plan needs free on the data dir's file system: an upgrade may cut a new WAL segment and
 * grow the db; a rebuilding step holds a second copy of the member dir beside the live one.
 */
export function spaceNeeded(steps: readonly Step[], memberBytes: number): number {
  let need = 0;
  for (const s of steps) {
    const rebuild = s.kind === 'v2-to-v3' || s.kind === 'v3-to-v2' || s.kind === 'downgrade';
    need = Math.max(need, rebuild ? 2 * memberBytes + WAL_SEGMENT : WAL_SEGMENT);
  }
  return need;
}

export async function checkFreeSpace(dataDir: string, steps: readonly Step[]): Promise<void> {
  if (steps.length === 0) return;
  const need = spaceNeeded(steps, await duBytes(path.join(dataDir, 'member')));
  const st = await fs.statfs(dataDir);
  const free = Number(st.bavail) * Number(st.bsize);
  if (free < need) {
    throw new UsageError(`only ${mib(free)} free on the file system of ${dataDir}, but the migration needs about ${mib(need)} (a new 64 MB WAL segment, and a second copy of the data for a conversion or downgrade); free some space and rerun`);
  }
}

/** Refuses a data dir this process cannot write (a read-only mount, or permissions). */
export async function checkWritable(dataDir: string): Promise<void> {
  try {
    await fs.access(dataDir, fs.constants.W_OK);
  } catch (e) {
    throw fsUsageError(e, dataDir);
  }
}

/** One line for a file system error found before anything changed. */
export function fsUsageError(e: unknown, p: string): UsageError {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EROFS': return new UsageError(`${p} is on a read-only file system; mount it read-write (the migration rewrites the data)`);
    case 'EACCES':
    case 'EPERM': return new UsageError(`${p} cannot be written (permission denied); run as the owner of the data dir or fix its mode`);
    case 'ENOSPC':
    case 'EDQUOT': return new UsageError(`no space left on the file system of ${p}; free some space and rerun`);
    default: return new UsageError(`${p}: ${(e as Error).message}`);
  }
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (e.isFile()) total += (await fs.stat(path.join(e.parentPath, e.name))).blocks * 512;
  }
  return total;
}

const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;
