// The v2 store after a conversion: emptied through the v2 API, then written into a fresh .snap file,
// because etcd 3.5 judges "custom v2store content" (and 3.6 refuses it) by the newest .snap.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import type { HttpClient } from '../etcd/http.ts';
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

/**
 * etcd writes a .snap file once more than --snapshot-count entries were applied since the last one,
 * and each holds the whole v2 store: with 1 (a snapshot per write), every write made while the
 * store is still full costs a copy of it (1M keys: seconds each, and etcd stalled). With 100, the
 * few writes of a start and the emptying make none; then 101 writes that change nothing (deletes
 * of a key that does not exist; one raft entry each) make one of the empty store.
 */
const SNAPSHOT_COUNT = 100;
export const SEAL_FLAGS = [`--snapshot-count=${SNAPSHOT_COUNT}`];
const NO_SUCH_KEY = '/etcd-migrate-seal-no-such-key';
const IN_FLIGHT = 25;

/**
 * On a temporary etcd that serves the v2 API and runs with SEAL_FLAGS: empties the v2 store and
 * writes until etcd has put it into a .snap file (a snapshot at or after the index where the
 * store became empty).
 */
export async function emptyAndSeal(c: HttpClient, memberDir: string, timeoutMs: number): Promise<void> {
  const snapDir = path.join(memberDir, 'snap');
  const newestIndex = async () => Math.max(0, ...(await fs.readdir(snapDir)).filter((f) => f.endsWith('.snap')).map((f) => parseInt(f.split(/[-.]/)[1]!, 16)));
  const emptyAt = await emptyV2Store(c);
  if (!(emptyAt > 0)) throw new StepError('the v2 API gave no raft index (X-Raft-Index)');
  const deadline = Date.now() + timeoutMs;
  while ((await newestIndex()) < emptyAt) {
    if (Date.now() > deadline) throw new StepError(`etcd wrote no snapshot of the emptied v2 store within ${timeoutMs / 1000} s`);
    const r = await Promise.all(Array.from({ length: IN_FLIGHT }, () => c.text('DELETE', keyPath(NO_SUCH_KEY))));
    const odd = r.find((x) => x.status !== 404);
    if (odd) throw new StepError(`a delete of a key that does not exist answered HTTP ${odd.status}: ${odd.body.slice(0, 200)}`);
  }
}
