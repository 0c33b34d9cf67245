// Backup names and retention: which backups of this data dir to keep. Pure.
//
// A backup is named `<id>-<UTC time>-<x.y.z>-<storage>.backup[.enc]`, where <id> is the data dir's
// base name and a short hash of its absolute path (two data dirs may share a backup dir). Only
// files with this data dir's <id> are ever counted or deleted.
import crypto from 'node:crypto';
import path from 'node:path';
import { fmtData, type DataVersion } from '../version.ts';

const NAME = /^(?<id>.+)-(?<stamp>\d{8}T\d{9}Z)-(?<ver>\d+\.\d+\.\d+)-(?<storage>etcd[23])\.backup(?<enc>\.enc)?$/;
export const PART_SUFFIX = '.part';

/** `data-1a2b3c4d` for /var/etcd/data: readable, and distinct per data dir. */
export function backupId(absDataDir: string): string {
  const base = path.basename(absDataDir).replace(/[^A-Za-z0-9._-]/g, '_') || 'data';
  return `${base}-${crypto.createHash('sha256').update(absDataDir).digest('hex').slice(0, 8)}`;
}

/** 2026-11-26T18:48:53.123Z -> 20261126T184853123Z (sorts as text in time order). */
export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

export function backupName(id: string, when: Date, v: DataVersion, encrypted: boolean): string {
  return `${id}-${stamp(when)}-${fmtData(v).replace('/', '-')}.backup${encrypted ? '.enc' : ''}`;
}

export interface ParsedName {
  id: string;
  stamp: string;
  version: string;
  encrypted: boolean;
}

export function parseBackupName(name: string): ParsedName | undefined {
  const m = NAME.exec(name);
  if (!m?.groups) return undefined;
  return {
    id: m.groups.id!,
    stamp: m.groups.stamp!,
    version: `${m.groups.ver}/${m.groups.storage}`,
    encrypted: !!m.groups.enc,
  };
}

/**
 * Which files in the backup dir to delete so that this data dir keeps its newest `keep` backups:
 * its older backups, and its unfinished `.part` files (only one run works on a data dir at a time,
 * under the lock, so a `.part` is always left over from a crash). Other files are never named.
 */
export function toDelete(names: readonly string[], id: string, keep: number): string[] {
  const mine = names.map((n) => ({ n, p: parseBackupName(n) })).filter((x) => x.p?.id === id);
  mine.sort((a, b) => (a.p!.stamp < b.p!.stamp ? 1 : a.p!.stamp > b.p!.stamp ? -1 : a.n < b.n ? 1 : -1));
  const old = mine.slice(Math.max(keep, 0)).map((x) => x.n);
  const parts = names.filter(
    (n) => n.endsWith(PART_SUFFIX) && parseBackupName(n.slice(0, -PART_SUFFIX.length))?.id === id,
  );
  return [...old, ...parts];
}

/** This data dir's backups, newest first. */
export function listBackups(names: readonly string[], id: string): string[] {
  return names
    .filter((n) => parseBackupName(n)?.id === id)
    .sort((a, b) => parseBackupName(b)!.stamp.localeCompare(parseBackupName(a)!.stamp));
}
