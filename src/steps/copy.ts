// Rebuilding steps work on copies: the live member dir is read, never run or written.
import { constants, promises as fs } from 'node:fs';
import fse from 'fs-extra';
import path from 'node:path';
import { workDir } from '../workdir.ts';
import type { StepContext } from './context.ts';

/** Copies a member dir (a reflink where the file system can, a plain copy elsewhere), modes kept. */
export async function copyMemberDir(from: string, to: string): Promise<void> {
  await fs.cp(from, to, {
    recursive: true,
    errorOnExist: true,
    force: false,
    preserveTimestamps: true,
    mode: constants.COPYFILE_FICLONE,
  });
}

/**
 * A member dir for a tool that only reads it except for `writable` (paths relative to it, e.g.
 * `snap/db`): those are copied, every other file is a hard link to the live one (no bytes copied;
 * milliseconds instead of seconds for a large WAL; BENCHMARKS.md). Only for tools known to open
 * those files read-only (etcdctl migrate: the WAL through wal.OpenForRead, snapshots through the
 * snapshotter). Where the file system refuses links, a copy.
 */
export async function linkMemberDir(from: string, to: string, writable: readonly string[]): Promise<void> {
  const walk = async (rel: string): Promise<void> => {
    const src = path.join(from, rel);
    const st = await fs.lstat(src);
    const dst = path.join(to, rel);
    if (st.isDirectory()) {
      await fs.mkdir(dst, { mode: st.mode & 0o7777 });
      for (const name of await fs.readdir(src)) await walk(path.join(rel, name));
    } else if (writable.includes(rel) || !st.isFile()) {
      await fs.cp(src, dst, {
        errorOnExist: true,
        force: false,
        preserveTimestamps: true,
        mode: constants.COPYFILE_FICLONE,
      });
    } else {
      await fs.link(src, dst).catch(async (e: NodeJS.ErrnoException) => {
        if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes(e.code ?? '')) throw e;
        await fs.copyFile(src, dst, constants.COPYFILE_FICLONE);
      });
    }
  };
  await walk('');
}

/** A scratch dir of the step's own in the work area; it goes with the work area. */
export async function scratchDir(ctx: StepContext, name: string): Promise<string> {
  const dir = path.join(workDir(ctx.dataDir), name);
  await fse.ensureDir(dir, { mode: 0o700 });
  return dir;
}
