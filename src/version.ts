// etcd versions, storage kinds and the version.txt format (`<x.y.z>/<etcd2|etcd3>`). semver parses
// and orders the versions; the per-function modules keep the pod start from loading ranges it never uses.
import semverCompare from 'semver/functions/compare.js';
import semverInc from 'semver/functions/inc.js';
import semverParse from 'semver/functions/parse.js';
import { UsageError } from './errors.ts';

export type Storage = 'etcd2' | 'etcd3';
export const STORAGES: readonly Storage[] = ['etcd2', 'etcd3'];

/** A released etcd version, x.y.z. */
export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** What a data dir holds: the version that last ran it and the storage its data is in. */
export interface DataVersion {
  readonly version: Version;
  readonly storage: Storage;
}

/**
 * Parses `x.y.z` exactly; returns undefined otherwise. semver also takes a `v` prefix and pre-release
 * or build parts, which etcd's release names and version.txt never have: the text must be what
 * semver would print.
 */
export function tryParseVersion(text: string): Version | undefined {
  const v = semverParse(text);
  if (!v || v.version !== text || v.prerelease.length) return undefined;
  return { major: v.major, minor: v.minor, patch: v.patch };
}

export function parseVersion(text: string, what = 'version'): Version {
  const v = tryParseVersion(text);
  if (!v) throw new UsageError(`${what} "${text}" is not a version of the form x.y.z (for example 3.5.16)`);
  return v;
}

export const fmt = (v: Version): string => `${v.major}.${v.minor}.${v.patch}`;
export const fmtMinor = (v: Version): string => `${v.major}.${v.minor}`;
export const fmtData = (d: DataVersion): string => `${fmt(d.version)}/${d.storage}`;

/** Orders x.y.z versions: -1, 0 or 1. */
export function compare(a: Version, b: Version): number {
  return semverCompare(fmt(a), fmt(b));
}

/** Orders the minor releases of two versions, whatever their patch. */
export function compareMinor(a: Version, b: Version): number {
  return semverCompare(`${fmtMinor(a)}.0`, `${fmtMinor(b)}.0`);
}

export const sameMinor = (a: Version, b: Version): boolean => compareMinor(a, b) === 0;

/** The minor release that follows v's. etcd 2.3 was the last 2.x; 3.0 came next. */
export function nextMinor(v: Version): Version {
  if (v.major === 2 && v.minor >= 3) return { major: 3, minor: 0, patch: 0 };
  return tryParseVersion(semverInc(fmt(v), 'minor')!)!;
}

/** The minor release before v's, or undefined below 2.0. */
export function previousMinor(v: Version): Version | undefined {
  if (v.major === 3 && v.minor === 0) return { major: 2, minor: 3, patch: 0 };
  if (v.minor === 0) return undefined;
  return { major: v.major, minor: v.minor - 1, patch: 0 };
}

export function parseStorage(text: string, what = 'storage'): Storage {
  if (text === 'etcd2' || text === 'etcd3') return text;
  throw new UsageError(`${what} "${text}" is unknown: use etcd2 or etcd3`);
}

/** Parses the contents of version.txt. `file` names it in the error. */
export function parseVersionFile(text: string, file = 'version.txt'): DataVersion {
  const body = text.trim();
  const fix =
    'write "<x.y.z>/<etcd2|etcd3>" (the etcd version that last ran this data, e.g. 3.4.23/etcd3) into it, ' +
    'or pass --assume-current-version';
  if (body === '') throw new UsageError(`${file} is empty: ${fix}`);
  const parts = body.split('/');
  if (parts.length !== 2) throw new UsageError(`${file} holds "${clip(body)}", not <x.y.z>/<etcd2|etcd3>: ${fix}`);
  const version = tryParseVersion(parts[0]!);
  if (!version) throw new UsageError(`${file} holds "${clip(body)}", whose version is not x.y.z: ${fix}`);
  if (parts[1] !== 'etcd2' && parts[1] !== 'etcd3') {
    throw new UsageError(`${file} holds "${clip(body)}", whose storage is neither etcd2 nor etcd3: ${fix}`);
  }
  return { version, storage: parts[1] };
}

/** The exact bytes written to version.txt: no newline, as Kubernetes' tool wrote it. */
export const formatVersionFile = (d: DataVersion): string => fmtData(d);

function clip(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 40 ? `${printable.slice(0, 40)}...` : printable;
}
