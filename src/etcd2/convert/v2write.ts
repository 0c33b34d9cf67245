// Writes spilled keys into a fresh v2 store through the v2 API, each with what is left of its TTL,
// and checks each write against what etcd says it stored; then reads the whole store back.
import { ChecksumBuilder, checksumMismatch, type Checksum } from '../../checksum.ts';
import { StepError } from '../../errors.ts';
import type { HttpClient } from '../../etcd/client/http.ts';
import { expiresAt, put, walk } from '../v2api.ts';
import { forEachConcurrent } from './pool.ts';
import { readSpill } from './spill.ts';
import { expired } from './ttl.ts';

const IN_FLIGHT = 32;

export interface V2Written {
  written: Checksum;
  /** The store as read back afterwards. */
  readBack: Checksum;
  /** Keys whose TTL ran out before they were written: not written. */
  expired: number;
  dirs: number;
}

export async function writeV2Keys(c: HttpClient, spillFile: string): Promise<V2Written> {
  const written = new ChecksumBuilder();
  /** How many written keys expire in each second: to tell a key that expired from a lost one. */
  const duePerSecond = new Map<number, number>();
  let gone = 0;
  await forEachConcurrent(readSpill(spillFile), IN_FLIGHT, async ([endsField, keyB64, valueB64]) => {
    const ends = Number(endsField);
    const key = Buffer.from(keyB64!, 'base64').toString('utf8');
    const value = Buffer.from(valueB64!, 'base64').toString('utf8');
    const now = Date.now();
    if (ends && expired(ends, now)) {
      gone++;
      return;
    }
    const ttl = ends ? Math.max(1, Math.round((ends - now) / 1000)) : undefined;
    const node = await put(c, key, value, ttl);
    if (node.key !== key || (node.value ?? '') !== value) {
      throw new StepError(
        `etcd2 cannot hold the key ${JSON.stringify(key)} as it is ` +
          `(the v2 API stored it as ${JSON.stringify(node.key)}: v2 keys are cleaned paths)`,
      );
    }
    written.add(key, value, ttl !== undefined);
    if (ttl !== undefined) {
      const s = Math.floor(expiresAt(node)! / 1000);
      duePerSecond.set(s, (duePerSecond.get(s) ?? 0) + 1);
    }
  });

  const back = new ChecksumBuilder();
  let dirs = 0;
  for await (const n of walk(c)) {
    if (n.dir) dirs++;
    else back.add(n.key, n.value ?? '', n.expiration !== undefined);
  }
  const w = written.digest();
  const r = back.digest();
  const mismatch = checksumMismatch(w, r);
  if (mismatch) {
    // Only keys whose TTL has run out by now may be missing.
    const due = [...duePerSecond].filter(([s]) => s * 1000 <= Date.now()).reduce((n, [, k]) => n + k, 0);
    if (!(r.keys < w.keys && w.keys - r.keys <= due && w.ttlKeys - r.ttlKeys === w.keys - r.keys)) {
      throw new StepError(
        `the v2 store read back does not hold what was written: ${mismatch}; the live data was not changed`,
      );
    }
  }
  return { written: w, readBack: r, expired: gone, dirs };
}
