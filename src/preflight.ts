// Checks made before anything changes: the temporary etcd's ports, a writable data dir.
// (Free space for backups and steps: backup/space.ts, through backup/guard.ts.)
// Each failure is one UsageError line naming the fix.
import { promises as fs } from 'node:fs';
import { UsageError } from './errors.ts';
import type { Options } from './options.ts';

/** The temporary etcd's loopback ports must be free. */
export async function checkPortsFree(opts: Options): Promise<void> {
  const ports: Array<[number, string]> = [[opts.port, '--port (the hidden client port)']];
  for (const u of opts.listenPeerUrls.split(',')) {
    const url = new URL(u);
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
      ports.push([Number(url.port), 'the peer port (--peer-port / LISTEN_PEER_URLS)']);
  }
  // node:net loads only here, when a step will run: a pod start with nothing to migrate skips it.
  const { createServer } = await import('node:net');
  for (const [port, what] of ports) {
    if (!(await portFree(createServer, port))) {
      throw new UsageError(
        `127.0.0.1:${port} is already in use, and ${what} needs it for the temporary etcd; ` +
          'stop whatever holds it (is etcd already running on this data?) or choose another port',
      );
    }
  }
}

function portFree(createServer: typeof import('node:net').createServer, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
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
    case 'EROFS':
      return new UsageError(
        `${p} is on a read-only file system; mount it read-write (the migration rewrites the data)`,
      );
    case 'EACCES':
    case 'EPERM':
      return new UsageError(
        `${p} cannot be written (permission denied); run as the owner of the data dir or fix its mode`,
      );
    case 'ENOSPC':
    case 'EDQUOT':
      return new UsageError(`no space left on the file system of ${p}; free some space and rerun`);
    // Node's message names the path already (e.g. "EIO: i/o error, open '<p>/version.txt'").
    default: {
      const message = (e as Error).message;
      return new UsageError(message.includes(p) ? message : `${p}: ${message}`);
    }
  }
}
