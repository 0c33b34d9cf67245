// The journaled swap with a file beside the new member dir (the pending TTLs): a crash after any
// number of its renames, then the next run's recovery, always ends in the same state.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseVersionFile } from '../../src/version.ts';
import {
  newMemberDir,
  newPendingTtlsFile,
  pendingTtlsFile,
  prepareWorkDir,
  recoverWorkDir,
  swapInNewMember,
  workDir,
} from '../../src/workdir.ts';
import { tmpDir } from '../helpers/tmp.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const TO = parseVersionFile('3.3.25/etcd3');

/** A data dir at 3.3.25/etcd2 with a rebuilt member dir and a pending TTL file in the work area. */
async function staged(withPending: boolean, oldPending = false): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  await fs.mkdir(path.join(dir, 'member'), { recursive: true });
  await fs.writeFile(path.join(dir, 'member', 'db'), 'old');
  await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
  if (oldPending) await fs.writeFile(pendingTtlsFile(dir), 'stale');
  await prepareWorkDir(dir);
  await fs.mkdir(newMemberDir(dir));
  await fs.writeFile(path.join(newMemberDir(dir), 'db'), 'new');
  if (withPending) await fs.writeFile(newPendingTtlsFile(dir), 'ttls');
  return dir;
}

async function state(dir: string) {
  return {
    member: await fs.readFile(path.join(dir, 'member', 'db'), 'utf8'),
    pending: await fs.readFile(pendingTtlsFile(dir), 'utf8').catch(() => undefined),
    version: await fs.readFile(path.join(dir, 'version.txt'), 'utf8'),
    workArea: await fs.access(workDir(dir)).then(
      () => true,
      () => false,
    ),
    entries: (await fs.readdir(dir)).sort(),
  };
}

/** Runs the swap with the k-th rename (and every one after) failing as a crash would stop it. */
async function swapCrashingAt(dir: string, k: number): Promise<boolean> {
  const real = fs.rename.bind(fs);
  let n = 0;
  const spy = vi.spyOn(fs, 'rename').mockImplementation(async (a, b) => {
    if (n++ >= k) throw new Error('crash');
    return real(a, b);
  });
  try {
    await swapInNewMember(dir, TO);
    return false;
  } catch (e) {
    if ((e as Error).message !== 'crash') throw e;
    return true;
  } finally {
    spy.mockRestore();
  }
}

describe('swap of a rebuilt member dir and its pending TTLs', () => {
  for (const [label, withPending, oldPending] of [
    ['with pending TTLs', true, false],
    ['replacing older pending TTLs', true, true],
    ['member dir alone, pending TTLs of the data dir kept', false, true],
  ] as const) {
    it(`${label}: a crash after any number of renames, then recovery, gives the new data and its TTLs`, async () => {
      const want = {
        member: 'new',
        pending: withPending ? 'ttls' : oldPending ? 'stale' : undefined,
        version: '3.3.25/etcd3',
        workArea: false,
        entries: ['member', 'version.txt', ...(withPending || oldPending ? ['.etcd-migrate.pending-ttls'] : [])].sort(),
      };
      let crashes = 0;
      for (let k = 0; ; k++) {
        const dir = await staged(withPending, oldPending);
        const crashed = await swapCrashingAt(dir, k);
        if (crashed) {
          crashes++;
          // The next run: the swap is finished or, before the journal, the work area dropped.
          const recovered = await recoverWorkDir(dir);
          expect(recovered).toBeDefined();
          const s = await state(dir);
          if (s.version === '3.3.25/etcd2') {
            expect(s, `crash at rename ${k}`).toEqual({
              member: 'old',
              pending: oldPending ? 'stale' : undefined,
              version: '3.3.25/etcd2',
              workArea: false,
              entries: s.entries,
            });
            continue;
          }
          expect(s, `crash at rename ${k}`).toEqual(want);
        } else {
          expect(await state(dir)).toEqual(want);
          expect(await recoverWorkDir(dir)).toBeUndefined();
          break;
        }
      }
      // Journal, [pending,] live member aside, new member in, version.txt.
      expect(crashes).toBe(withPending ? 5 : 4);
    });
  }

  it('refuses, before its journal, a work area holding what it does not know where to put', async () => {
    const dir = await staged(true);
    await fs.writeFile(path.join(path.dirname(newMemberDir(dir)), 'stray'), 'x');
    await expect(swapInNewMember(dir, TO)).rejects.toThrow(
      /holds stray, which the swap does not know where to put; the live data was not changed/,
    );
    expect((await state(dir)).member).toBe('old');
    expect(await recoverWorkDir(dir)).toMatch(/removed the unfinished work/);
    expect((await state(dir)).version).toBe('3.3.25/etcd2');
  });
});
