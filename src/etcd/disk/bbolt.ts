// A read-only reader of etcd's bbolt database (member/snap/db), just enough to look up a key in a
// bucket, to tell whether a bucket holds anything (a few pages each), to walk every key of a bucket
// (page by page: memory holds one page and the path to it), and to tell whether a bucket of two
// files is the same pages byte for byte.
import { closeSync, openSync, readSync } from 'node:fs';

const PAGE_HEADER = 16;
const BRANCH = 0x01;
const LEAF = 0x02;
const BUCKET_LEAF = 0x01;
const MAGIC = 0xed0cdaed;

interface Page {
  buf: Buffer;
  /** Offset of the page header in buf. */
  at: number;
}

export class Bbolt {
  private readonly fd: number;
  private readonly pageSize: number;
  private readonly root: bigint;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
    try {
      const head = this.read(0, 4096);
      const pageSize = head.readUInt32LE(PAGE_HEADER + 8);
      if (head.readUInt32LE(PAGE_HEADER) !== MAGIC || pageSize < 512 || pageSize > 65536)
        throw new Error('not a bbolt database');
      this.pageSize = pageSize;
      const metas = [this.read(0, pageSize), this.read(pageSize, pageSize)]
        .map((b) => ({
          txid: b.readBigUInt64LE(PAGE_HEADER + 48),
          root: b.readBigUInt64LE(PAGE_HEADER + 16),
          ok: validMeta(b),
        }))
        .filter((m) => m.ok)
        .sort((a, b) => (a.txid > b.txid ? -1 : 1));
      if (!metas[0]) throw new Error('no valid meta page');
      this.root = metas[0].root;
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The value of `key` in the bucket at `path` (nested bucket names), or undefined. */
  get(path: readonly string[], key: string): Buffer | undefined {
    const bucket = this.bucket(path);
    if (!bucket) return undefined;
    const hit = this.find(bucket, Buffer.from(key));
    return hit && !hit.isBucket ? hit.value : undefined;
  }

  /** Whether the bucket at `path` exists and holds at least one key. */
  hasKeys(path: readonly string[]): boolean {
    const bucket = this.bucket(path);
    if (!bucket) return false;
    let page = bucket;
    for (;;) {
      const { flags, count } = header(page);
      if (count === 0) return false;
      if (flags & LEAF) return true;
      page = this.page(page.buf.readBigUInt64LE(page.at + PAGE_HEADER + 8));
    }
  }

  /** Calls `fn` with every key and value of the bucket at `path`, in key order (nested buckets skipped). */
  forEach(path: readonly string[], fn: (key: Buffer, value: Buffer) => void): void {
    const bucket = this.bucket(path);
    if (bucket) this.walk(bucket, fn);
  }

  /**
   * Whether the bucket at `path` is byte for byte the same in `other`: the same entry in its parent
   * (its root page's ID, or the bucket itself when it is inline), then the same pages under it. A
   * copy of the file whose later transactions left the bucket alone has it so (bbolt writes a
   * changed page to a new place, never over a page that a bucket still uses).
   */
  sameBucket(other: Bbolt, path: readonly string[]): boolean {
    const a = this.bucketEntry(path);
    const b = other.bucketEntry(path);
    if (!a || !b || !a.equals(b) || this.pageSize !== other.pageSize) return false;
    const root = a.readBigUInt64LE(0);
    return root === 0n || this.samePages(other, root);
  }

  private samePages(other: Bbolt, id: bigint): boolean {
    const page = this.page(id);
    if (!page.buf.equals(other.page(id).buf)) return false;
    const { flags, count } = header(page);
    for (let i = 0; i < count; i++) {
      const e = PAGE_HEADER + i * 16;
      // A branch's children; a leaf's nested buckets that have pages of their own.
      const child =
        flags & BRANCH
          ? page.buf.readBigUInt64LE(e + 8)
          : flags & LEAF && page.buf.readUInt32LE(e) & BUCKET_LEAF
            ? page.buf.readBigUInt64LE(e + page.buf.readUInt32LE(e + 4) + page.buf.readUInt32LE(e + 8))
            : 0n;
      if (child !== 0n && !this.samePages(other, child)) return false;
    }
    return true;
  }

  /** The bucket's entry in its parent (its root page ID and sequence, then the page itself when inline). */
  private bucketEntry(path: readonly string[]): Buffer | undefined {
    if (!path.length) return undefined;
    const parent = path.length > 1 ? this.bucket(path.slice(0, -1)) : this.page(this.root);
    const hit = parent && this.find(parent, Buffer.from(path.at(-1)!));
    return hit?.isBucket ? hit.value : undefined;
  }

  private walk(page: Page, fn: (key: Buffer, value: Buffer) => void): void {
    const { flags, count } = header(page);
    const elems = page.at + PAGE_HEADER;
    if (flags & BRANCH) {
      for (let i = 0; i < count; i++) this.walk(this.page(page.buf.readBigUInt64LE(elems + i * 16 + 8)), fn);
    } else if (flags & LEAF) {
      for (let i = 0; i < count; i++) {
        const e = elems + i * 16;
        if (page.buf.readUInt32LE(e) & BUCKET_LEAF) continue;
        const pos = e + page.buf.readUInt32LE(e + 4);
        const ksize = page.buf.readUInt32LE(e + 8);
        fn(
          page.buf.subarray(pos, pos + ksize),
          page.buf.subarray(pos + ksize, pos + ksize + page.buf.readUInt32LE(e + 12)),
        );
      }
    } else throw new Error(`unexpected page type ${flags}`);
  }

  private bucket(path: readonly string[]): Page | undefined {
    let page = this.page(this.root);
    for (const name of path) {
      const hit = this.find(page, Buffer.from(name));
      if (!hit?.isBucket) return undefined;
      const root = hit.value.readBigUInt64LE(0);
      page = root === 0n ? { buf: hit.value, at: 16 } : this.page(root);
    }
    return page;
  }

  private find(start: Page, key: Buffer): { value: Buffer; isBucket: boolean } | undefined {
    let page = start;
    for (;;) {
      const { flags, count } = header(page);
      const elems = page.at + PAGE_HEADER;
      if (flags & BRANCH) {
        let child: bigint | undefined;
        for (let i = 0; i < count; i++) {
          const e = elems + i * 16;
          const k = page.buf.subarray(
            e + page.buf.readUInt32LE(e),
            e + page.buf.readUInt32LE(e) + page.buf.readUInt32LE(e + 4),
          );
          if (i > 0 && Buffer.compare(k, key) > 0) break;
          child = page.buf.readBigUInt64LE(e + 8);
        }
        if (child === undefined) return undefined;
        page = this.page(child);
      } else if (flags & LEAF) {
        for (let i = 0; i < count; i++) {
          const e = elems + i * 16;
          const pos = page.buf.readUInt32LE(e + 4);
          const ksize = page.buf.readUInt32LE(e + 8);
          const vsize = page.buf.readUInt32LE(e + 12);
          const k = page.buf.subarray(e + pos, e + pos + ksize);
          if (Buffer.compare(k, key) === 0) {
            return {
              value: page.buf.subarray(e + pos + ksize, e + pos + ksize + vsize),
              isBucket: (page.buf.readUInt32LE(e) & BUCKET_LEAF) !== 0,
            };
          }
        }
        return undefined;
      } else throw new Error(`unexpected page type ${flags}`);
    }
  }

  private page(id: bigint): Page {
    const first = this.read(Number(id) * this.pageSize, this.pageSize);
    const overflow = first.readUInt32LE(12);
    const buf = overflow ? this.read(Number(id) * this.pageSize, (overflow + 1) * this.pageSize) : first;
    return { buf, at: 0 };
  }

  /** Exactly `length` bytes at `offset`: a file that ends sooner is a truncated db, never zeros read as pages. */
  private read(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < length) {
      if (offset === 0) throw new Error('file too short for a bbolt database');
      throw new Error(`the db ends inside a page (${length} bytes needed at byte ${offset}, ${got} there): truncated`);
    }
    return buf;
  }
}

function header(p: Page): { flags: number; count: number } {
  return { flags: p.buf.readUInt16LE(p.at + 8), count: p.buf.readUInt16LE(p.at + 10) };
}

/** FNV-1a 64 over the meta fields, as bbolt checks them. */
function validMeta(b: Buffer): boolean {
  if (b.readUInt32LE(PAGE_HEADER) !== MAGIC) return false;
  let h = 0xcbf29ce484222325n;
  for (const byte of b.subarray(PAGE_HEADER, PAGE_HEADER + 56)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h === b.readBigUInt64LE(PAGE_HEADER + 56);
}
