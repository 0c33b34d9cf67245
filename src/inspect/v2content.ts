// What v2 content a stopped member's data dir holds, read offline, for the checks before etcd 3.6
// and 3.7 (docs: etcd-36-37.md). etcd 3.6 refuses custom nodes in the v2 snapshot it loads and
// panics replaying any v2 request after it but the two its own start writes; etcd 3.7 no longer
// knows the v2 request at all and panics decoding one.
//
// Which snapshot: 3.5 and 3.6 load the newest .snap (by name, <term>-<index> in hex) that a WAL
// snapshot record names within the committed log; 3.7 reads no .snap and starts from the last
// such WAL record. Both are usually the same index.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeSnapFile } from '../etcd/disk/snapfile.ts';
import { count } from '../log.ts';
import { bytesOf, num, parses, ProtoFormatError, readMessage, type Schema } from '../etcd/disk/pbmessage.ts';
import { entriesAfter, readWal, validSnapshots, WalError, type WalSnapshot } from '../etcd/disk/wal.ts';

/** etcdserverpb.Request (proto2, every field written): a v2 request. */
const REQUEST: Schema = {
  1: 'varint',
  2: 'bytes',
  3: 'bytes',
  4: 'bytes',
  5: 'varint',
  6: 'bytes',
  7: 'varint',
  8: 'varint',
  9: 'varint',
  10: 'varint',
  11: 'varint',
  12: 'varint',
  13: 'varint',
  14: 'varint',
  15: 'varint',
  16: 'varint',
  17: 'varint',
};

/** etcdserverpb.InternalRaftRequest as etcd 3.5 knows it: ID = 1, everything else a message. */
const INTERNAL: Schema = Object.fromEntries([
  [1, 'varint'],
  ...[
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 1000, 1011, 1012, 1013, 1100, 1101, 1102, 1103, 1104, 1105, 1106, 1107, 1200,
    1201, 1202, 1203, 1204, 1300, 1301, 1302,
  ].map((n) => [n, 'bytes']),
]) as Schema;

export type EntryClass =
  | { kind: 'v3' }
  | { kind: 'v2'; form: 'raw' | 'nested'; method: string; path: string }
  /** Neither message: 3.5 itself would panic on it. Counted as a v2 request, to be safe. */
  | { kind: 'v2'; form: 'unparseable'; method: ''; path: '' };

/**
 * What a normal entry's non-empty data is, decided as etcd 3.5's applyEntryNormal decides it: an
 * InternalRaftRequest if it parses as one (its v2 field holding a Request), else a raw Request.
 * A raw Request never parses as the other: its Dir (field 5) is always written, as a varint, where
 * the InternalRaftRequest has a message; and its Method, read as a nested Request, is not one.
 */
export function classifyEntryData(data: Buffer): EntryClass {
  const internal = asInternal(data);
  if (internal) {
    const v2 = bytesOf(internal, 2);
    return v2 ? v2Request(readMessage(v2, REQUEST), 'nested') : { kind: 'v3' };
  }
  try {
    return v2Request(readMessage(data, REQUEST), 'raw');
  } catch (e) {
    if (e instanceof ProtoFormatError) return { kind: 'v2', form: 'unparseable', method: '', path: '' };
    throw e;
  }
}

/** The InternalRaftRequest's fields, or undefined when gogoproto would fail to unmarshal it. */
function asInternal(data: Buffer): Map<number, number | Buffer> | undefined {
  let m;
  try {
    m = readMessage(data, INTERNAL);
  } catch (e) {
    if (e instanceof ProtoFormatError) return undefined;
    throw e;
  }
  // gogoproto unmarshals the nested messages too: the v2 one against its schema, the others (v3
  // requests, not read here) at least as well-formed fields.
  for (const [n, v] of m) {
    if (Buffer.isBuffer(v) && !parses(v, n === 2 ? REQUEST : {})) return undefined;
  }
  return m;
}

function v2Request(r: Map<number, number | Buffer>, form: 'raw' | 'nested'): EntryClass {
  const text = (n: number) => bytesOf(r, n)?.toString('utf8') ?? '';
  return { kind: 'v2', form, method: text(2), path: text(3) };
}

/**
 * Whether etcd 3.6 replays a v2 request (apply_v2.go v2ToV3Request): the publish of a member's
 * attributes and the cluster version. Anchored, where 3.6's regexp is not: etcd writes only these.
 */
export function allowedOn36(method: string, p: string): boolean {
  return method === 'PUT' && (/^\/0\/members\/[0-9a-fA-F]{1,16}\/attributes$/.test(p) || p === '/0/version');
}

interface StoreNode {
  Path: string;
  Children?: Record<string, StoreNode> | null;
}

/** A node's children as etcd's Get lists them: hidden ones (name starting with "_") left out. */
function visible(n: StoreNode): StoreNode[] {
  return Object.values(n.Children ?? {}).filter((c) => !path.posix.basename(c.Path).startsWith('_'));
}

/**
 * The custom content of a v2 store (a .snap's JSON) by etcd 3.6's IsMetaStoreOnly: a top-level
 * node other than /0 with children, and under /2 (v2 auth) a child with children. Returns the
 * paths of the visible leaves (keys and empty dirs) under each such node, sorted; never values.
 */
export function customSnapshotPaths(storeJson: Buffer): string[] {
  const root = (JSON.parse(storeJson.toString('utf8')) as { Root?: StoreNode }).Root;
  if (!root) throw new Error('a v2 store without its root node');
  const custom: StoreNode[] = [];
  for (const top of visible(root)) {
    if (top.Path === '/0') continue;
    if (top.Path === '/2') custom.push(...visible(top).filter((c) => visible(c).length > 0));
    else if (visible(top).length > 0) custom.push(top);
  }
  return custom.flatMap(leaves).sort();
}

function leaves(n: StoreNode): string[] {
  const out: string[] = [];
  const stack = visible(n);
  while (stack.length) {
    const c = stack.pop()!;
    const kids = visible(c);
    if (kids.length) stack.push(...kids);
    else out.push(c.Path);
  }
  return out;
}

export interface V2Request {
  index: number;
  method: string;
  path: string;
  form: 'raw' | 'nested' | 'unparseable';
}

export interface V2Content {
  /** The .snap etcd 3.5 and 3.6 load, if any. */
  snapshot?: { file: string; index: number; term: number };
  /** The WAL snapshot record etcd 3.7 starts from (index 0: the log from its start). */
  walSnapshot: WalSnapshot;
  /** Custom nodes in that .snap's v2 store, by 3.6's rule: paths, sorted; never values. */
  snapshotKeys: string[];
  /** v2 requests after that .snap's index that 3.6 would panic on (anything but its two PUTs). */
  walRequests: V2Request[];
  /** Every v2 request after 3.7's start, the allowed ones included: 3.7 cannot decode any. */
  v2EntriesAfterSnapshot: number;
  /** .snap files newer than the one loaded that do not decode (etcd renames them *.broken). */
  brokenSnapFiles: string[];
  /** Where a torn record ends the WAL (normal after a crash). */
  torn?: { file: string; offset: number };
}

/**
 * The v2 content of one data dir, read again only when its WAL or snap files changed (a name, size
 * or modification time): a run reads it before its first step and again in that step.
 */
export class V2ContentReader {
  private key: string | undefined;
  private content: V2Content | undefined;
  private readonly dataDir: string;
  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  async read(): Promise<V2Content> {
    const key = await filesKey(this.dataDir);
    if (this.content && key === this.key) return this.content;
    this.content = await readV2Content(this.dataDir);
    this.key = key;
    return this.content;
  }
}

async function filesKey(dataDir: string): Promise<string> {
  const parts: string[] = [];
  for (const dir of ['wal', 'snap'].map((d) => path.join(dataDir, 'member', d))) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const n of names.sort()) {
      const st = await fs.stat(path.join(dir, n), { bigint: true }).catch(() => undefined);
      parts.push(`${dir}/${n}:${st?.size}:${st?.mtimeNs}:${st?.ctimeNs}`);
    }
  }
  return parts.join('\n');
}

/**
 * Reads a stopped member's v2 content: member/snap and member/wal (or `walDir`) under `dataDir`.
 * The WAL is read from the file that holds the newest .snap file's index on, as etcd replays it;
 * the whole WAL only when that snapshot is not the one etcd would start from (a WAL record of it
 * is missing or not yet committed) or the files read do not reach back to it.
 */
export async function readV2Content(dataDir: string, walDir = path.join(dataDir, 'member', 'wal')): Promise<V2Content> {
  const snaps = new SnapFiles(path.join(dataDir, 'member', 'snap'));
  const newest = await snaps.newest();
  if (newest !== undefined) {
    try {
      const c = await readV2ContentFrom(snaps, walDir, newest.index);
      if (c.snapshot?.file === newest.file) return c;
    } catch (e) {
      if (!(e instanceof WalError)) throw e;
    }
  }
  return readV2ContentFrom(snaps, walDir, undefined);
}

async function readV2ContentFrom(snaps: SnapFiles, walDir: string, from: number | undefined): Promise<V2Content> {
  // Each entry is classified as it is read: only v2 requests keep anything (a large WAL of puts stays small).
  const keep = (data: Buffer, type: number) => {
    if (type !== 0 || data.length === 0) return undefined;
    const c = classifyEntryData(data);
    return c.kind === 'v2' ? c : undefined;
  };
  const log = await readWal(walDir, keep, from);
  const valid = validSnapshots(log);
  const { snap, broken } = await loadNewestSnap(snaps, valid);
  const walSnapshot = valid.at(-1) ?? { index: 0, term: 0 };
  const v2After = (index: number) =>
    entriesAfter(log, index).flatMap((e): V2Request[] =>
      e.data ? [{ index: e.index, method: e.data.method, path: e.data.path, form: e.data.form }] : [],
    );
  const after36 = v2After(snap?.index ?? 0);
  const after37 = walSnapshot.index === (snap?.index ?? 0) ? after36 : v2After(walSnapshot.index);
  return {
    ...(snap && { snapshot: { file: snap.file, index: snap.index, term: snap.term } }),
    walSnapshot,
    snapshotKeys: snap ? customSnapshotPaths(snap.store) : [],
    walRequests: after36.filter((r) => !allowedOn36(r.method, r.path)),
    v2EntriesAfterSnapshot: after37.length,
    brokenSnapFiles: broken,
    ...(log.torn && { torn: log.torn }),
  };
}

interface LoadedSnap {
  file: string;
  index: number;
  term: number;
  store: Buffer;
}

/** A member's .snap files, newest first, each read and decoded once (undefined: it does not decode). */
class SnapFiles {
  private readonly dir: string;
  private names: Promise<string[]> | undefined;
  private readonly loaded = new Map<string, Promise<LoadedSnap | undefined>>();
  constructor(dir: string) {
    this.dir = dir;
  }

  newestFirst(): Promise<string[]> {
    this.names ??= fs.readdir(this.dir).then(
      (names) =>
        names
          .filter((n) => n.endsWith('.snap'))
          .sort()
          .reverse(),
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [];
        throw e;
      },
    );
    return this.names;
  }

  load(file: string): Promise<LoadedSnap | undefined> {
    let p = this.loaded.get(file);
    if (!p) {
      p = fs.readFile(path.join(this.dir, file)).then(decodeSnap(file), () => undefined);
      this.loaded.set(file, p);
    }
    return p;
  }

  /** The newest .snap file that decodes. */
  async newest(): Promise<LoadedSnap | undefined> {
    for (const file of await this.newestFirst()) {
      const snap = await this.load(file);
      if (snap) return snap;
    }
    return undefined;
  }
}

/** A .snap file's store and the index and term it was taken at; undefined when it does not decode. */
const decodeSnap =
  (file: string) =>
  (bytes: Buffer): LoadedSnap | undefined => {
    try {
      const snap = decodeSnapFile(bytes);
      const meta = readMessage(snap.metadata, { 1: 'bytes', 2: 'varint', 3: 'varint' });
      return { file, index: num(meta, 2), term: num(meta, 3), store: snap.store };
    } catch {
      return undefined;
    }
  };

/** etcd's LoadNewestAvailable: the newest .snap by name that decodes and that a valid WAL record names. */
async function loadNewestSnap(
  snaps: SnapFiles,
  valid: WalSnapshot[],
): Promise<{ snap?: LoadedSnap; broken: string[] }> {
  const broken: string[] = [];
  for (const file of await snaps.newestFirst()) {
    const snap = await snaps.load(file);
    if (!snap) broken.push(file);
    else if (valid.some((w) => w.index === snap.index && w.term === snap.term)) return { snap, broken };
  }
  return { broken };
}

/**
 * v2 requests that change no key: 3.4 answers /health with a QGET through raft, so nearly every 3.4
 * WAL holds some. etcd 3.6 panics on them all the same (confirmed): they are sealed away by 3.5
 * (steps/seal.ts), not refused. SYNC only expires keys that have a TTL, which are custom content.
 */
const READS = new Set(['GET', 'QGET', 'HEAD', 'SYNC']);

/**
 * One line naming the custom v2 content that etcd 3.6 refuses (counts and a few keys, never
 * values), or undefined when there is none.
 */
export function describeCustomV2(c: V2Content): string | undefined {
  const keys = c.snapshotKeys;
  const writes = c.walRequests.filter((r) => !allowedOn36(r.method, r.path) && !READS.has(r.method));
  if (keys.length === 0 && writes.length === 0) return undefined;
  const few = <T>(xs: readonly T[], show: (x: T) => string) =>
    xs.slice(0, 3).map(show).join(', ') + (xs.length > 3 ? ', ...' : '');
  // The v2 store keeps the keys users write under /1 (etcd's own under /0 and /2): show them as written.
  const key = (p: string) => (p.startsWith('/1/') ? p.slice(2) : p);
  const parts = [];
  if (keys.length) parts.push(`${count(keys.length, 'key')} in its snapshot (${few(keys, key)})`);
  if (writes.length) {
    parts.push(`${count(writes.length, 'v2 write')} in the WAL (${few(writes, (w) => `${w.method} ${key(w.path)}`)})`);
  }
  return parts.join(' and ');
}
