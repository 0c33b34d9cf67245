// Rebuilding steps work on copies: the live member dir is read, never run or written.
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { workDir } from '../workdir.ts';
import type { StepContext } from './context.ts';

/** Copies a member dir (a reflink where the file system can, a plain copy elsewhere), modes kept. */
export async function copyMemberDir(from: string, to: string): Promise<void> {
  await fs.cp(from, to, { recursive: true, errorOnExist: true, force: false, preserveTimestamps: true, mode: constants.COPYFILE_FICLONE });
}

/** A scratch dir of the step's own in the work area; it goes with the work area. */
export async function scratchDir(ctx: StepContext, name: string): Promise<string> {
  const dir = path.join(workDir(ctx.dataDir), name);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
