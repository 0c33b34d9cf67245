// The v2 API of a temporary etcd: walk the key tree one directory at a time (each listing streamed),
// write a key with a TTL, delete a subtree. Keys are paths; values are strings.
import { StepError } from '../errors.ts';
import type { HttpClient } from '../etcd/client/http.ts';
import { ChildNodeScanner, type V2Node } from './v2nodes.ts';
import { parseJson } from '../etcd/client/json.ts';

/** The URL path of a v2 key: each segment percent-encoded, the slashes kept. */
export const keyPath = (key: string): string => `/v2/keys${key.split('/').map(encodeURIComponent).join('/')}`;

/** The children of one directory, streamed, in key order. */
export async function* listDir(c: HttpClient, dir: string): AsyncGenerator<V2Node> {
  const { status, chunks } = await c.stream('GET', `${keyPath(dir)}?sorted=true`);
  if (status !== 200) {
    let body = '';
    for await (const ch of chunks) body += ch;
    throw new StepError(`the v2 API could not list ${dir}: HTTP ${status} ${body.slice(0, 200)}`);
  }
  const scanner = new ChildNodeScanner();
  for await (const ch of chunks) {
    for (const text of scanner.push(ch)) yield parseJson<V2Node>(text, `a node of the v2 listing of ${dir}`);
  }
  if (!scanner.complete) throw new StepError(`the v2 listing of ${dir} ended early (connection cut?)`);
}

/** Every node under `root` (directories and keys), depth first; memory holds only pending directory names. */
export async function* walk(c: HttpClient, root = '/'): AsyncGenerator<V2Node> {
  const pending = [root];
  while (pending.length) {
    const dir = pending.pop()!;
    for await (const n of listDir(c, dir)) {
      if (n.dir) pending.push(n.key);
      yield n;
    }
  }
}

/** Sets a key (ttl in seconds, or none) and returns the node etcd stored, to check against what was sent. */
export async function put(c: HttpClient, key: string, value: string, ttl?: number): Promise<V2Node> {
  const body = `value=${encodeURIComponent(value)}${ttl !== undefined ? `&ttl=${ttl}` : ''}`;
  const r = await c.text('PUT', keyPath(key), body);
  if (r.status !== 200 && r.status !== 201)
    throw new StepError(`the v2 API refused to write ${key}: HTTP ${r.status} ${v2Error(r.body)}`);
  return parseJson<{ node: V2Node }>(r.body, 'the v2 answer to a write').node;
}

/** Deletes a key or a whole directory. */
export async function removeTree(c: HttpClient, key: string): Promise<void> {
  const r = await c.text('DELETE', `${keyPath(key)}?recursive=true`);
  if (r.status !== 200) throw new StepError(`the v2 API could not delete ${key}: HTTP ${r.status} ${v2Error(r.body)}`);
}

/** The message of a v2 error answer, e.g. "Not a directory (/registry/a)". */
function v2Error(body: string): string {
  try {
    const e = JSON.parse(body) as { message?: string; cause?: string };
    return `${e.message ?? ''}${e.cause ? ` (${e.cause})` : ''}`;
  } catch {
    return body.slice(0, 200);
  }
}

/** Milliseconds since the epoch of a node's expiration, or undefined for a key without a TTL. */
export function expiresAt(n: V2Node): number | undefined {
  if (n.expiration === undefined) return undefined;
  const t = Date.parse(n.expiration);
  if (Number.isNaN(t)) throw new StepError(`the v2 API gave ${n.key} an unreadable expiration "${n.expiration}"`);
  return t;
}
