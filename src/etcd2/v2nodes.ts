// A streaming reader of v2 nodes in JSON text: it hands out the nodes one at a time as the text
// arrives, so a directory of a million keys never sits in memory at once. Two shapes:
// - a v2 directory listing (GET /v2/keys/<dir>): {"action":"get","node":{...,"nodes":[{child},...]}},
//   the children are the objects at depth 4 inside the array at depth 3 (LISTING, the default);
// - what `etcdctl migrate` gives its transformer: node objects one after the other, {..}{..}
//   (CONCATENATED, depth 1). Pure: text in, node texts out.

// The JSON bytes a scanner of etcd's v2 nodes looks for (also etcd2/convert/v2store.ts).
export const QUOTE = 34;
export const BACKSLASH = 92;
export const OPEN_OBJ = 123;
export const CLOSE_OBJ = 125;
export const OPEN_ARR = 91;
export const CLOSE_ARR = 93;

/** Where the nodes are: their depth, and whether they sit in an array. */
export interface NodeShape {
  depth: number;
  inArray: boolean;
}
export const LISTING: NodeShape = { depth: 4, inArray: true };
export const CONCATENATED: NodeShape = { depth: 1, inArray: false };

export class ChildNodeScanner {
  private readonly shape: NodeShape;
  constructor(shape: NodeShape = LISTING) {
    this.shape = shape;
  }
  private buf = '';
  private pos = 0;
  /** Open containers, outermost first (their opening character codes). */
  private readonly stack: number[] = [];
  /** Start of the child object being read, or -1. */
  private start = -1;
  /** Start of the string being read, or -1. */
  private strStart = -1;

  /** Feeds a chunk; returns the JSON texts of the child nodes it completed. */
  push(chunk: string): string[] {
    const out: string[] = [];
    this.buf += chunk;
    const buf = this.buf;
    let pos = this.pos;
    while (pos < buf.length) {
      if (this.strStart >= 0) {
        const q = buf.indexOf('"', pos);
        if (q < 0) {
          pos = buf.length;
          break;
        }
        pos = q + 1;
        if (!escaped(buf, q)) this.strStart = -1;
        continue;
      }
      const c = buf.charCodeAt(pos);
      if (c === QUOTE) this.strStart = pos;
      else if (c === OPEN_OBJ || c === OPEN_ARR) {
        this.stack.push(c);
        const { depth, inArray } = this.shape;
        if (this.stack.length === depth && c === OPEN_OBJ && (!inArray || this.stack[depth - 2] === OPEN_ARR))
          this.start = pos;
      } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
        if (this.stack.length === this.shape.depth && this.start >= 0) {
          out.push(buf.slice(this.start, pos + 1));
          this.start = -1;
        }
        this.stack.pop();
      }
      pos++;
    }
    // Keep only what is still needed: the open child, or the open string (for its escapes).
    const keep = this.start >= 0 ? this.start : this.strStart >= 0 ? this.strStart : pos;
    this.buf = buf.slice(keep);
    this.pos = pos - keep;
    if (this.start >= 0) this.start -= keep;
    if (this.strStart >= 0) this.strStart -= keep;
    return out;
  }

  /** True when the text so far closed every container it opened. */
  get complete(): boolean {
    return this.stack.length === 0 && this.strStart < 0;
  }
}

/** Is the quote at q escaped, i.e. preceded by an odd number of backslashes? */
function escaped(buf: string, q: number): boolean {
  let n = 0;
  for (let i = q - 1; i >= 0 && buf.charCodeAt(i) === BACKSLASH; i--) n++;
  return n % 2 === 1;
}

/** A v2 node as the API gives it (the fields used here). */
export interface V2Node {
  key: string;
  dir?: boolean;
  value?: string;
  /** Absolute expiry time (RFC 3339, nanoseconds) of a key with a TTL. */
  expiration?: string;
  ttl?: number;
  modifiedIndex: number;
  createdIndex: number;
}
