// The v2 store as etcd saves it in a snapshot file (member/snap/*.snap: the store as Go's JSON of its
// node tree), read node by node: the "before" side of an etcd2 -> etcd3 conversion, and the nodes
// `etcdctl migrate` never hands its transformer (hidden ones, named `_...`: etcd's v2 Get skips them
// in every listing, and migrate walks the store with that Get).
//
// The text is {"Root":{node},...}; a node is {"Path","CreatedIndex","ModifiedIndex","ExpireTime",
// "Value","Children"} in that order (Go's field order), Children null for a key and an object of
// child nodes by name (sorted: Go sorts map keys) for a directory. So a directory's fields all come
// before its children, and the nodes come out in the order migrate walks them: each directory
// before what it holds. Only the Root subtree is read; what follows it (the watcher history) is not.
import { promises as fs } from 'node:fs';
import { ProtoReader } from '../../etcd/client/proto.ts';
import { crc32cUpdate } from '../../etcd/disk/snapfile.ts';
import type { V2Node } from '../v2nodes.ts';
import { SpillWriter } from './spill.ts';
import { V2ToV3Transform, type TransformSummary } from './transform.ts';
import { parseJson } from '../../etcd/client/json.ts';
import { BACKSLASH, CLOSE_ARR, CLOSE_OBJ, OPEN_ARR, OPEN_OBJ, QUOTE } from '../v2nodes.ts';

const COMMA = 0x2c;

const NODE = 'a node of the v2 store in the snapshot file';
/** How much of a snapshot file is read at a time. */
const CHUNK = 256 * 1024;
/** Go's zero time: a node without a TTL. */
const NO_EXPIRY = '0001-01-01T00:00:00Z';
/** The v2 keys live under /1 (/0 holds the cluster's members and version). */
const KEYS = '/1';

type Kind = 'top' | 'node' | 'children' | 'other';

interface Frame {
  kind: Kind;
  /** Where its text starts in the scanner's buffer. */
  start: number;
  /** The last key read in this object, and whether the next string is a key. */
  key: string;
  atKey: boolean;
  /** A node whose Children is null: a key, given out when its object closes. */
  leaf: boolean;
  /** A node whose Children is an object: a directory, given out when they start. */
  dir: boolean;
  /** An object (not an array): a comma in it is followed by a key. */
  object: boolean;
}

interface SavedNode {
  Path: string;
  CreatedIndex: number;
  ModifiedIndex: number;
  ExpireTime: string;
  Value: string;
}

/** What the v2 store holds (as the transformer counts it, keys due at `nowMs` left out), and its hidden nodes. */
export interface V2Store {
  summary: TransformSummary;
  /** Hidden keys (not due) and directories: those migrate does not hand over. */
  hiddenKeys: number;
  hiddenDirs: number;
}

/**
 * Reads the v2 store of a snapshot file: counts every node as the transformer would, and writes the
 * hidden ones (directories and keys, as JSON, one a line, in walk order) into `hiddenFile` for it.
 * The file is read in chunks (a million keys make a file of hundreds of MB); its CRC is checked at
 * its end, before anything is returned.
 */
export async function readV2Store(
  snapFile: string,
  nowMs: number,
  hiddenFile: string,
  onChunk?: (bytes: number) => void,
): Promise<V2Store> {
  const t = new V2ToV3Transform({ output: false });
  const out = new SpillWriter(hiddenFile);
  const scanner = new V2StoreScanner();
  let hiddenKeys = 0;
  let hiddenDirs = 0;
  try {
    for await (const chunk of snapFileStore(snapFile)) {
      onChunk?.(chunk.length);
      for (const n of scanner.push(chunk)) {
        const { converted } = t.node(n, nowMs);
        if (!isHidden(n.key)) continue;
        if (n.dir) hiddenDirs++;
        else if (converted) hiddenKeys++;
        await out.write([JSON.stringify(n)]);
      }
    }
  } finally {
    await out.close();
  }
  if (!scanner.complete) throw new Error('the v2 store in the snapshot file ends inside its node tree');
  return { summary: t.summary(), hiddenKeys, hiddenDirs };
}

/** Every node of a whole store text (see V2StoreScanner). */
export function v2StoreNodes(store: Buffer): V2Node[] {
  const s = new V2StoreScanner();
  const nodes = s.push(store);
  if (!s.complete) throw new Error('the v2 store in the snapshot file ends inside its node tree');
  return nodes;
}

/**
 * Every node under /1 (keys as the v2 API names them; the /1 directory itself as `/`), directories
 * before their contents, from the store's text as it arrives. It keeps only the text of the node it
 * is in: a key's, or a directory's until its children start.
 */
export class V2StoreScanner {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private readonly stack: Frame[] = [];
  private closed = false;

  /** True once the Root node closed (what follows it is not the tree). */
  get complete(): boolean {
    return this.closed;
  }

  push(chunk: Buffer): V2Node[] {
    const out: V2Node[] = [];
    if (this.closed) return out;
    const buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = this.pos;
    const stack = this.stack;
    while (pos < buf.length) {
      const c = buf[pos]!;
      const top = stack.at(-1);
      if (c === QUOTE) {
        const end = stringEnd(buf, pos);
        if (end < 0) break;
        if (top?.atKey) {
          const key = buf.toString('latin1', pos + 1, end);
          if (top.kind === 'node' && key === 'Children') {
            const value = skipSpace(buf, skipSpace(buf, end + 1) + 1);
            if (value >= buf.length) break;
            if (buf[value] === OPEN_OBJ) {
              const fields = `${buf.toString('utf8', top.start, commaBefore(buf, pos))}}`;
              const n = toV2Node(parseJson<SavedNode>(fields, NODE), true);
              if (n) out.push(n);
              top.dir = true;
            } else top.leaf = true;
          }
          top.key = key;
          top.atKey = false;
        }
        pos = end + 1;
        continue;
      }
      if (c === OPEN_OBJ) {
        stack.push({ kind: childKind(top), start: pos, key: '', atKey: true, leaf: false, dir: false, object: true });
      } else if (c === OPEN_ARR) {
        stack.push({ kind: 'other', start: pos, key: '', atKey: false, leaf: false, dir: false, object: false });
      } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
        const done = stack.pop();
        if (done?.kind === 'node' && done.leaf) {
          const n = toV2Node(parseJson<SavedNode>(buf.toString('utf8', done.start, pos + 1), NODE), false);
          if (n) out.push(n);
        }
        if (done?.kind === 'node' && stack.length === 1) {
          this.closed = true;
          break;
        }
      } else if (c === COMMA && top?.object) {
        top.atKey = true;
      }
      pos++;
    }
    // Keep the text from the oldest node whose text is still needed (a key, or a directory before its children).
    let keep = pos;
    for (const f of stack) if (f.kind === 'node' && !f.dir && f.start < keep) keep = f.start;
    this.buf = Buffer.from(buf.subarray(keep));
    this.pos = pos - keep;
    for (const f of stack) f.start -= keep;
    return out;
  }
}

/**
 * The store's text of a snapshot file, in chunks: a snappb.Snapshot (crc = 1, data = 2) whose data
 * is a raftpb.Snapshot (data = 1: the store; metadata = 2), each field in that order (Go writes
 * them so). The CRC-32C of the data is checked once it has all been read.
 */
async function* snapFileStore(file: string): AsyncGenerator<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const r = new ProtoReader(head.subarray(0, bytesRead));
    let crc = 0;
    let tag = r.varint();
    if (tag === 0x08) {
      crc = r.varint();
      tag = r.varint();
    }
    if (tag !== 0x12) throw new Error('a snapshot file without its data');
    const dataLen = r.varint();
    const dataStart = r.pos;
    if (r.varint() !== 0x0a) throw new Error('a raft snapshot that does not start with its data');
    const storeLen = r.varint();
    const storeStart = r.pos;
    const { size } = await fh.stat();
    if (dataStart + dataLen !== size || storeStart - dataStart + storeLen > dataLen) {
      throw new Error('a snapshot file whose length does not match its fields');
    }
    let sum = 0;
    let at = dataStart;
    while (at < size) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - at));
      const { bytesRead: n } = await fh.read(chunk, 0, chunk.length, at);
      if (n === 0) throw new Error('a snapshot file that ends early');
      const b = chunk.subarray(0, n);
      sum = crc32cUpdate(sum, b);
      const from = Math.max(at, storeStart);
      const to = Math.min(at + n, storeStart + storeLen);
      if (from < to) yield b.subarray(from - at, to - at);
      at += n;
    }
    if (sum !== crc) throw new Error('a snapshot file whose crc does not match its data');
  } finally {
    await fh.close();
  }
}

/** What an object opened inside `parent` is: Root is a node, a node's Children holds nodes by name. */
function childKind(parent: Frame | undefined): Kind {
  if (!parent) return 'top';
  if (parent.kind === 'top' && parent.key === 'Root') return 'node';
  if (parent.kind === 'node' && parent.key === 'Children') return 'children';
  if (parent.kind === 'children') return 'node';
  return 'other';
}

function toV2Node(s: SavedNode, dir: boolean): V2Node | undefined {
  if (s.Path !== KEYS && !s.Path.startsWith(`${KEYS}/`)) return undefined;
  const key = s.Path === KEYS ? '/' : s.Path.slice(KEYS.length);
  const n: V2Node = { key, createdIndex: s.CreatedIndex, modifiedIndex: s.ModifiedIndex };
  if (dir) n.dir = true;
  else n.value = s.Value;
  if (s.ExpireTime !== NO_EXPIRY) n.expiration = s.ExpireTime;
  return n;
}

/** Whether migrate's walk of the v2 store skips the node: a name on its path starts with `_`. */
export const isHidden = (key: string): boolean => key.includes('/_');

/** The index of the closing quote of the string opening at `q`, or -1 when it is not in `b` yet. */
function stringEnd(b: Buffer, q: number): number {
  let i = q;
  for (;;) {
    i = b.indexOf(QUOTE, i + 1);
    if (i < 0) return -1;
    let n = 0;
    for (let j = i - 1; b[j] === BACKSLASH; j--) n++;
    if (n % 2 === 0) return i;
  }
}

function skipSpace(b: Buffer, i: number): number {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  return i;
}

/** The comma before the key that opens at `q` (the end of the fields before it). */
function commaBefore(b: Buffer, q: number): number {
  let i = q - 1;
  while (i > 0 && b[i] !== COMMA) i--;
  return i;
}
