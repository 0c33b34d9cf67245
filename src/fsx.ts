// File writes that survive a crash at any moment: temp file, fsync, rename, fsync the directory.
import { constants, readFileSync, readlinkSync, promises as fs } from 'node:fs';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${file}.next`;
  try {
    const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a file's content durable (the rename or directory entry that names it is synced apart). */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await fs.open(file, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes a tree built by others (an extracted archive, a restored snapshot) durable: each directory
 * after what it holds, so the entries naming the files survive a crash; with `files`, the files too.
 */
export async function fsyncTree(root: string, o: { files: boolean }): Promise<void> {
  for (const e of await fs.readdir(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    if (e.isDirectory()) await fsyncTree(p, o);
    else if (o.files && e.isFile()) await fsyncFile(p);
  }
  await fsyncDir(root);
}

/** Removes a file for good: unlink, then fsync its directory. A file already gone is fine. */
export async function removeFileDurably(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fsyncDir(path.dirname(file));
}

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/** A file's text, or '' when it cannot be read (a /proc entry of a process that is gone). */
export function readOr(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** Where a symlink points, or '' when it cannot be read. */
export function readlinkOr(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}
