// The backup dir: write a verified backup of a data dir, apply retention, and put a backup back.
import { promises as fs } from 'node:fs';
import fse from 'fs-extra';
import path from 'node:path';
import { IntegrityError, UsageError } from '../errors.ts';
import { fsyncDir } from '../fsx.ts';
import { fmtData, type DataVersion } from '../version.ts';
import { prepareWorkDir, removeWorkDir, swapInNewMember } from '../workdir.ts';
import { parseVersionFile } from '../version.ts';
import { keyFromFileBytes } from './crypt.ts';
import { readArchiveFile, writeAndReadBack } from './file.ts';
import type { Entry, Manifest, OnBytes } from './archive.ts';
import type { Codec } from './blocks.ts';
import { backupName, PART_SUFFIX, toDelete } from './retention.ts';

export interface BackupDir {
  dir: string;
  /** This data dir's name prefix (retention.ts backupId). */
  id: string;
  keep: number;
  key: Buffer | undefined;
  /** How blocks are stored: 'none' keeps the backup near the disk's speed, 'zstd' makes it smaller. */
  codec?: Codec;
}

export interface Backup {
  file: string;
  size: number;
  manifest: Manifest;
}

export async function readKeyFile(file: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    const st = await fs.stat(file);
    // A key others can read protects nothing: refused, as ssh refuses a readable private key.
    if (st.isFile() && (st.mode & 0o044) !== 0) {
      const who = st.mode & 0o004 ? 'everyone' : 'its group';
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new UsageError(
        `the backup encryption key file ${file} is readable by ${who} (mode ${mode}); ` +
          `make it the owner's only: chmod 600 ${file} (a Kubernetes Secret volume: defaultMode 0400)`,
      );
    }
    bytes = await fs.readFile(file);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(
      `the backup encryption key file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}); ` +
        'point --backup-encryption-key-file (BACKUP_ENCRYPTION_KEY_FILE) at a file of 32+ random bytes',
    );
  }
  return keyFromFileBytes(bytes, file);
}

/**
 * Archives `<dataDir>/member` into `<dir>/<name>.part`, reads the whole file back as it is written
 * (decrypting, decompressing, comparing every block with the data dir's bytes) and compares its
 * digests with what the writer hashed; only once it is fsynced and matches is it renamed to its
 * final name.
 */
export async function createBackup(
  dataDir: string,
  v: DataVersion,
  b: BackupDir,
  now = new Date(),
  onBytes?: OnBytes,
): Promise<Backup> {
  // The backup dir and any missing parent, owner-only.
  await fse.ensureDir(b.dir, { mode: 0o700 });
  const file = path.join(b.dir, backupName(b.id, now, v, !!b.key));
  const part = file + PART_SUFFIX;
  try {
    const header = { dataVersion: fmtData(v), created: now.toISOString(), source: path.resolve(dataDir) };
    // Read back behind the writer, from the file, every block decrypted, decompressed and compared
    // with the data dir; the file is fsynced and the whole of it checked before the rename, so a
    // backup under its final name is always on disk and verified.
    const { written, read } = await writeAndReadBack(dataDir, part, header, b.key, b.codec, onBytes);
    if (!sameEntries(written.entries, read.entries))
      throw new IntegrityError('damaged', `the backup ${part} read back differs from the data it was written from`);
    await fs.rename(part, file);
    await fsyncDir(b.dir);
    return { file, size: (await fs.stat(file)).size, manifest: read };
  } catch (e) {
    await fs.rm(part, { force: true });
    throw e;
  }
}

const entryKey = (e: Entry): string => `${e.type} ${e.path} ${e.mode} ${e.size} ${e.sha256 ?? ''}`;
function sameEntries(a: readonly Entry[], b: readonly Entry[]): boolean {
  return a.length === b.length && a.every((e, i) => entryKey(e) === entryKey(b[i]!));
}

/** Deletes what retention drops; returns the names deleted. */
export async function prune(b: BackupDir): Promise<string[]> {
  const names = await fs.readdir(b.dir).catch(() => [] as string[]);
  const gone = toDelete(names, b.id, b.keep);
  for (const n of gone) await fs.rm(path.join(b.dir, n), { force: true });
  if (gone.length) await fsyncDir(b.dir);
  return gone;
}

/** Sizes of this data dir's backups, for the space check. */
export async function existingSizes(b: BackupDir, names: readonly string[]): Promise<number[]> {
  const sizes: number[] = [];
  for (const n of names)
    sizes.push(
      await fs.stat(path.join(b.dir, n)).then(
        (s) => s.size,
        () => 0,
      ),
    );
  return sizes;
}

/**
 * Puts an archive back as `<dataDir>/member` with version.txt, through the same journaled swap as a
 * step: extracted (and checked) in the work area first, so a damaged backup changes nothing.
 * Returns the version it restored.
 */
export async function restoreArchive(file: string, key: Buffer | undefined, dataDir: string): Promise<DataVersion> {
  const fresh = await prepareWorkDir(dataDir);
  let manifest: Manifest;
  try {
    manifest = await readArchiveFile(file, key, path.dirname(fresh));
  } catch (e) {
    await removeWorkDir(dataDir);
    throw e;
  }
  const v = parseVersionFile(manifest.header.dataVersion, `${file} (its recorded version)`);
  await swapInNewMember(dataDir, v);
  return v;
}
