// linkMemberDir: the v2-to-v3 step's working copy of the member dir. The db is a copy (migrate writes
// it); every other file is a hard link to the live one, which nothing then writes.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { linkMemberDir } from '../../../src/steps/copy.ts';
import { tmpDir } from '../../helpers/tmp.ts';

describe('linkMemberDir', () => {
  it('copies the writable files, links the others, keeps the modes, and leaves the live dir as it was', async () => {
    const dir = await tmpDir();
    const live = path.join(dir, 'live', 'member');
    await fs.mkdir(path.join(live, 'snap'), { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(live, 'wal'), { mode: 0o700 });
    await fs.writeFile(path.join(live, 'snap', 'db'), 'live db', { mode: 0o600 });
    await fs.writeFile(path.join(live, 'snap', '0000000000000002-00000000000186a2.snap'), 'snapshot', { mode: 0o644 });
    await fs.writeFile(path.join(live, 'wal', '0000000000000000-0000000000000000.wal'), 'wal', { mode: 0o600 });
    const work = path.join(dir, 'work', 'member');
    await fs.mkdir(path.dirname(work));
    await linkMemberDir(live, work, [path.join('snap', 'db')]);

    const ino = async (p: string) => (await fs.stat(p)).ino;
    expect(await ino(path.join(work, 'snap', 'db'))).not.toBe(await ino(path.join(live, 'snap', 'db')));
    for (const f of ['snap/0000000000000002-00000000000186a2.snap', 'wal/0000000000000000-0000000000000000.wal']) {
      expect(await ino(path.join(work, f))).toBe(await ino(path.join(live, f)));
    }
    expect((await fs.stat(path.join(work, 'wal'))).mode & 0o777).toBe(0o700);
    expect((await fs.stat(path.join(work, 'snap', 'db'))).mode & 0o777).toBe(0o600);

    // What migrate does to the copy's db does not reach the live one; removing the copy removes links only.
    await fs.writeFile(path.join(work, 'snap', 'db'), 'migrated');
    expect(await fs.readFile(path.join(live, 'snap', 'db'), 'utf8')).toBe('live db');
    await fs.rm(path.dirname(work), { recursive: true });
    expect(await fs.readFile(path.join(live, 'wal', '0000000000000000-0000000000000000.wal'), 'utf8')).toBe('wal');
    expect((await fs.stat(path.join(live, 'wal', '0000000000000000-0000000000000000.wal'))).nlink).toBe(1);
  });

  it('refuses to write over a member dir already there', async () => {
    const dir = await tmpDir();
    await fs.mkdir(path.join(dir, 'live', 'member', 'snap'), { recursive: true });
    await fs.mkdir(path.join(dir, 'work', 'member'), { recursive: true });
    await expect(linkMemberDir(path.join(dir, 'live', 'member'), path.join(dir, 'work', 'member'), [])).rejects.toThrow(
      /EEXIST/,
    );
  });
});
