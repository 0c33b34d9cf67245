// The v2 store after a conversion: emptied through the v2 API, then written into a fresh .snap file,
// because etcd 3.5 judges "custom v2store content" (and 3.6 refuses it) by the newest .snap.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import type { HttpClient } from '../etcd/http.ts';
import type { ClientTls } from '../etcd/tls.ts';
import { probeWriteV2 } from '../etcd/client.ts';
import { keyPath, listDir, removeTree } from '../etcd/v2.ts';

/**
 * Deletes every top-level key and directory of the v2 store (etcd's own /0 is not visible here);
 * returns the raft index at which the store is empty.
 */
export async function emptyV2Store(c: HttpClient): Promise<number> {
  const top: string[] = [];
  for await (const n of listDir(c, '/')) top.push(n.key);
  for (const key of top) await removeTree(c, key);
  const r = await c.text('GET', keyPath('/'));
  const left = (JSON.parse(r.body) as { node?: { nodes?: Array<{ key: string }> } }).node?.nodes ?? [];
  if (r.status !== 200 || left.length) throw new StepError(`the v2 store still holds ${left[0]?.key ?? `(HTTP ${r.status})`} after it was emptied`);
  return Number(r.headers['x-raft-index']);
}

/** The etcd flag that makes etcd write a .snap file after every write, for `emptyAndSeal`. */
export const SEAL_FLAGS = ['--snapshot-count=1'];

/**
 * On a temporary etcd that serves the v2 API and runs with SEAL_FLAGS: empties the v2 store and
 * waits until etcd has written it into a .snap file (a snapshot at or after the index where the
 * store became empty).
 */
export async function emptyAndSeal(c: HttpClient, memberDir: string, timeoutMs: number, tls?: ClientTls): Promise<void> {
  const snapDir = path.join(memberDir, 'snap');
  const newestIndex = async () => Math.max(0, ...(await fs.readdir(snapDir)).filter((f) => f.endsWith('.snap')).map((f) => parseInt(f.split(/[-.]/)[1]!, 16)));
  const emptyAt = await emptyV2Store(c);
  if (!(emptyAt > 0)) throw new StepError('the v2 API gave no raft index (X-Raft-Index)');
  const deadline = Date.now() + timeoutMs;
  // etcd snapshots once more than --snapshot-count entries were applied since the last one: a
  // write that changes nothing (a delete of a key that does not exist) adds an entry.
  while ((await newestIndex()) < emptyAt) {
    if (Date.now() > deadline) throw new StepError(`etcd wrote no snapshot of the emptied v2 store within ${timeoutMs / 1000} s`);
    await probeWriteV2(c.endpoint, tls);
    await new Promise((r) => setTimeout(r, 5));
  }
}
