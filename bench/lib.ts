// Small benchmark helpers: alternate A and B runs, report medians and the A/B ratio pair by pair.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN_DIR } from '../test/helpers/env.ts';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface Pair {
  a: number[];
  b: number[];
  ratios: number[];
}

/** Runs a() and b() alternately `n` times after one warm-up each; each returns milliseconds. */
export async function pairs(n: number, a: () => Promise<number>, b: () => Promise<number>): Promise<Pair> {
  await a();
  await b();
  const out: Pair = { a: [], b: [], ratios: [] };
  for (let i = 0; i < n; i++) {
    const x = await a();
    const y = await b();
    out.a.push(x);
    out.b.push(y);
    out.ratios.push(x / y);
  }
  return out;
}

/** Runs each of `fns` in turn, `n` rounds after one warm-up round; each returns milliseconds. */
export async function rounds(n: number, fns: ReadonlyArray<() => Promise<number>>): Promise<number[][]> {
  for (const f of fns) await f();
  const out = fns.map(() => [] as number[]);
  for (let i = 0; i < n; i++) for (const [j, f] of fns.entries()) out[j]!.push(await f());
  return out;
}

/** The median of the round-by-round differences a[i] - b[i]. */
export const medianDiff = (a: number[], b: number[]): number => median(a.map((x, i) => x - b[i]!));

export const fmtMs = (xs: number[]): string =>
  `median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;

export function machine(): string {
  return (
    `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `${os.type()} ${os.release()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`
  );
}

export const bin = (tool: string, v: string): string => path.join(BIN_DIR, `${tool}-${v}`);

export const flags = (name: string, dir: string, port: number, peerPort: number): string[] => {
  const c = `http://127.0.0.1:${port}`;
  const p = `http://127.0.0.1:${peerPort}`;
  return [
    '--name',
    name,
    '--data-dir',
    dir,
    '--listen-client-urls',
    c,
    '--advertise-client-urls',
    c,
    '--listen-peer-urls',
    p,
    '--initial-advertise-peer-urls',
    p,
    '--initial-cluster',
    `${name}=${p}`,
  ];
};

/** Polls every ms until a v3 DeleteRange (a write that leaves nothing) commits. */
export async function untilWrite(port: number, prefix = '/v3', deadlineMs = 30_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${prefix}/kv/deleterange`, {
        method: 'POST',
        body: JSON.stringify({ key: 'eA==' }),
      });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((res) => setTimeout(res, 1));
  }
  throw new Error('no write');
}

export async function makeData(version: string, dir: string, port: number, peerPort: number): Promise<void> {
  const p = execa(
    bin('etcd', version),
    [...flags('m1', dir, port, peerPort), '--heartbeat-interval', '10', '--election-timeout', '100'],
    { reject: false },
  );
  await untilWrite(port, version.startsWith('3.3') ? '/v3beta' : '/v3');
  p.kill('SIGTERM');
  await p;
}

/** Bytes in a file or a whole tree (symlinks counted as themselves). */
export async function sizeOf(p: string): Promise<number> {
  const st = await fs.lstat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fs.readdir(p)) total += await sizeOf(path.join(p, e));
  return total;
}
