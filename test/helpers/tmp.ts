// Each test gets its own temp dir and ports; everything is removed after it.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  const list = cleanups.splice(0).reverse();
  for (const c of list) await c().catch(() => {});
});

/** Registers a cleanup that runs after the current test, last registered first. */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

export async function tmpDir(prefix = 'etcd-migrate-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  onCleanup(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

// Ports come from below Linux's ephemeral range (32768+), so no outgoing connection takes them;
// each worker draws from its own slice so parallel workers never hand out the same port.
// TEST_PORT_BASE moves the whole range, for two test runs on one machine at once.
const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
const SLICE = 600;
const base = Number(process.env.TEST_PORT_BASE ?? 20000) + ((worker - 1) % 4) * SLICE;
let next = base + Math.floor(Math.random() * SLICE);

export async function freePort(): Promise<number> {
  for (let i = 0; i < SLICE; i++) {
    const port = base + ((next++ - base) % SLICE);
    if (await isFree(port)) return port;
  }
  throw new Error('no free port');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
