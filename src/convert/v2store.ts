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
import { decodeSnapFile } from '../etcd/snapfile.ts';
import type { V2Node } from '../etcd/v2nodes.ts';
import { SpillWriter } from './spill.ts';
import { V2ToV3Transform, type TransformSummary } from './transform.ts';
import { parseJson } from '../etcd/json.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;

const NODE = 'a node of the v2 store in the snapshot file';
/** Go's zero time: a node without a TTL. */
const NO_EXPIRY = '0001-01-01T00:00:00Z';
/** The v2 keys live under /1 (/0 holds the cluster's members and version). */
const KEYS = '/1';

type Kind = 'top' | 'node' | 'children' | 'other';

interface Frame {
  kind: Kind;
  start: number;
  /** The last key read in this object, and whether the next string is a key. */
  key: string;
  atKey: boolean;
  /** A node whose Children is null: a key, given out when its object closes. */
  leaf: boolean;
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
 */
export async function readV2Store(snapFile: string, nowMs: number, hiddenFile: string): Promise<V2Store> {
  const { store } = decodeSnapFile(await fs.readFile(snapFile));
  const t = new V2ToV3Transform();
  const out = new SpillWriter(hiddenFile);
  let hiddenKeys = 0;
  let hiddenDirs = 0;
  try {
    for (const n of v2StoreNodes(store)) {
      const { record } = t.node(n, nowMs);
      if (!isHidden(n.key)) continue;
      if (n.dir) hiddenDirs++;
      else if (record) hiddenKeys++;
      await out.write([JSON.stringify(n)]);
    }
  } finally {
    await out.close();
  }
  return { summary: t.summary(), hiddenKeys, hiddenDirs };
}

/**
 * Every node under /1 (keys as the v2 API names them; the /1 directory itself as `/`), directories
 * before their contents.
 */
export function* v2StoreNodes(store: Buffer): Generator<V2Node> {
  const stack: Frame[] = [];
  let pos = 0;
  while (pos < store.length) {
    const c = store[pos]!;
    const top = stack.at(-1);
    if (c === QUOTE) {
      const end = stringEnd(store, pos);
      if (top?.atKey) {
        top.key = store.toString('latin1', pos + 1, end);
        top.atKey = false;
        if (top.kind === 'node' && top.key === 'Children') {
          const next = skipSpace(store, skipSpace(store, end + 1) + 1);
          if (store[next] === OPEN) {
            const fields = `${store.toString('utf8', top.start, commaBefore(store, pos))}}`;
            const n = toV2Node(parseJson<SavedNode>(fields, NODE), true);
            if (n) yield n;
          } else top.leaf = true;
        }
      }
      pos = end + 1;
      continue;
    }
    if (c === OPEN) {
      stack.push({ kind: childKind(top), start: pos, key: '', atKey: true, leaf: false });
    } else if (c === OPEN_ARR) {
      stack.push({ kind: 'other', start: pos, key: '', atKey: false, leaf: false });
    } else if (c === CLOSE || c === CLOSE_ARR) {
      const done = stack.pop();
      if (done?.kind === 'node' && done.leaf) {
        const n = toV2Node(parseJson<SavedNode>(store.toString('utf8', done.start, pos + 1), NODE), false);
        if (n) yield n;
      }
      // The Root node closed: the rest is not the tree.
      if (done?.kind === 'node' && stack.length === 1) return;
    } else if (c === COMMA && top && store[top.start] === OPEN) {
      top.atKey = true;
    }
    pos++;
  }
  throw new Error('the v2 store in the snapshot file ends inside its node tree');
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

/** The index of the closing quote of the string opening at `q`. */
function stringEnd(b: Buffer, q: number): number {
  let i = q;
  for (;;) {
    i = b.indexOf(QUOTE, i + 1);
    if (i < 0) throw new Error('the v2 store in the snapshot file ends inside a string');
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
