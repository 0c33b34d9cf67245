// The v2 store after a conversion: emptied through the v2 API, then written into a fresh .snap file,
// because etcd 3.5 judges "custom v2store content" (and 3.6 refuses it) by the newest .snap.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StepError } from '../errors.ts';
import type { HttpClient } from '../etcd/http.ts';
import { withTempEtcd, type StartOptions } from '../etcd/server.ts';
import { listDir, removeTree } from '../etcd/v2.ts';

/** Deletes every top-level key and directory of the v2 store (etcd's own /0 is not visible here). */
export async function emptyV2Store(c: HttpClient): Promise<void> {
  const top: string[] = [];
  for await (const n of listDir(c, '/')) top.push(n.key);
  for (const key of top) await removeTree(c, key);
  for await (const n of listDir(c, '/')) throw new StepError(`the v2 store still holds ${n.key} after it was emptied`);
}

/** Runs etcd with --snapshot-count=1 until it has written a new .snap file. */
export async function sealSnapshot(opts: StartOptions, memberDir: string): Promise<void> {
  const snapDir = path.join(memberDir, 'snap');
  const newest = async () => (await fs.readdir(snapDir)).filter((f) => f.endsWith('.snap')).sort().at(-1);
  const before = await newest();
  await withTempEtcd({ ...opts, flags: [...(opts.flags ?? []), '--snapshot-count=1'] }, async () => {
    const deadline = Date.now() + opts.timeoutMs;
    while ((await newest()) === before) {
      if (Date.now() > deadline) throw new StepError(`etcd wrote no new snapshot within ${opts.timeoutMs / 1000} s with --snapshot-count=1`);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
}
