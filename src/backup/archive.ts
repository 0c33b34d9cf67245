// The backup archive: the exact bytes and modes of a data dir's `member/` tree, each file followed by
// its sha256, so a restore gives back the member dir as it was (same member and cluster IDs, same
// WAL, v2 store included). Written as a stream; compression and encryption wrap it (see file.ts).
//
//   "etcd-migrate archive 1\n"
//   {"dataVersion":"3.5.30/etcd3","created":"<ISO time>","source":"<data dir>"}\n
//   {"t":"d","p":"member","m":448}\n                          a directory (mode in decimal)
//   {"t":"f","p":"member/snap/db","m":384,"n":24576}\n <n bytes> <32 bytes sha256>
//   {"t":"e","dirs":3,"files":3,"bytes":64030000}\n             the end; nothing may follow
import crypto from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.ts';
import { fsyncTree } from '../fsx.ts';

export const ARCHIVE_MAGIC = 'etcd-migrate archive 1\n';
const READ_CHUNK = 1 << 20;
const MAX_LINE = 64 << 10;

export interface ArchiveHeader {
  /** What version.txt said when the archive was made. */
  dataVersion: string;
  created: string;
  source: string;
}

export interface Entry {
  type: 'dir' | 'file';
  path: string;
  mode: number;
  size: number;
  /** sha256 hex of a file's content. */
  sha256?: string;
}

export interface Manifest {
  header: ArchiveHeader;
  entries: Entry[];
  bytes: number;
}

/** The archive's bytes for `<root>/member`; `manifest.entries` fills in as the files are read. */
export async function* archiveBytes(root: string, header: ArchiveHeader, manifest: Manifest): AsyncGenerator<Buffer> {
  yield Buffer.from(ARCHIVE_MAGIC + JSON.stringify(header) + '\n');
  manifest.header = header;
  let dirs = 0;
  let files = 0;
  const walk = async function* (rel: string): AsyncGenerator<Buffer> {
    const abs = path.join(root, rel);
    const st = await fs.lstat(abs);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      dirs++;
      manifest.entries.push({ type: 'dir', path: rel, mode, size: 0 });
      yield line({ t: 'd', p: rel, m: mode });
      for (const name of (await fs.readdir(abs)).sort()) yield* walk(path.posix.join(rel, name));
    } else if (st.isFile()) {
      files++;
      yield line({ t: 'f', p: rel, m: mode, n: st.size });
      const hash = crypto.createHash('sha256');
      const fh = await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
      // The next piece is read (libuv threadpool) while this one is hashed and passed on.
      const readAt = (pos: number): Promise<Buffer> => {
        const b = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(st.size - pos, 1)));
        return fh.read(b, 0, b.length, pos).then(({ bytesRead }) => b.subarray(0, bytesRead));
      };
      let read = 0;
      let next = readAt(0);
      try {
        for (;;) {
          const piece = await next;
          if (piece.length === 0) break;
          read += piece.length;
          if (read > st.size) break;
          next = readAt(read);
          hash.update(piece);
          yield piece;
        }
      } finally {
        await next.catch(() => undefined);
        await fh.close();
      }
      if (read !== st.size) throw new Error(`${abs} changed size while it was being backed up (${st.size} -> ${read} bytes); is an etcd running on this data dir?`);
      const digest = hash.digest();
      manifest.entries.push({ type: 'file', path: rel, mode, size: st.size, sha256: digest.toString('hex') });
      manifest.bytes += st.size;
      yield digest;
    } else {
      throw new Error(`${abs} is neither a file nor a directory; a member dir holds only those, so it is not backed up`);
    }
  };
  yield* walk('member');
  yield line({ t: 'e', dirs, files, bytes: manifest.bytes });
}

const line = (o: object): Buffer => Buffer.from(JSON.stringify(o) + '\n');

/**
 * Reads an archive, checking every file's sha256 and the end record. With `target`, recreates the
 * tree under it (target/member/...), files fsynced, modes as recorded; target/member must not exist.
 */
export async function readArchive(src: AsyncIterable<Buffer>, target?: string): Promise<Manifest> {
  const r = new Reader(src);
  const magic = await r.bytes(ARCHIVE_MAGIC.length);
  if (magic.toString('latin1') !== ARCHIVE_MAGIC) throw new IntegrityError('format', 'not an etcd-migrate backup archive (unknown header)');
  const header = parseJson(await r.line()) as ArchiveHeader;
  if (typeof header?.dataVersion !== 'string') throw damaged('its header has no dataVersion');
  const manifest: Manifest = { header, entries: [], bytes: 0 };
  const dirModes: Array<[string, number]> = [];
  for (;;) {
    const rec = parseJson(await r.line()) as { t?: string; p?: unknown; m?: unknown; n?: unknown; dirs?: number; files?: number; bytes?: number };
    if (rec.t === 'e') {
      const files = manifest.entries.filter((e) => e.type === 'file').length;
      if (rec.files !== files || rec.dirs !== manifest.entries.length - files || rec.bytes !== manifest.bytes) throw damaged('its end record does not match its contents');
      if (!(await r.atEnd())) throw damaged('it has bytes after its end record');
      break;
    }
    const p = checkPath(rec.p);
    const mode = typeof rec.m === 'number' && Number.isInteger(rec.m) && rec.m >= 0 && rec.m <= 0o7777 ? rec.m & 0o777 : undefined;
    if (mode === undefined) throw damaged(`entry ${p} has no valid mode`);
    if (rec.t === 'd') {
      if (target) {
        await fs.mkdir(path.join(target, p), { mode: 0o700 }).catch((e) => { throw damaged(`cannot create ${p}: ${(e as Error).message}`); });
        dirModes.push([path.join(target, p), mode]);
      }
      manifest.entries.push({ type: 'dir', path: p, mode, size: 0 });
    } else if (rec.t === 'f') {
      const size = rec.n;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw damaged(`entry ${p} has no valid size`);
      const fh = target
        ? await fs.open(path.join(target, p), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
          .catch((e) => { throw damaged(`cannot create ${p}: ${(e as Error).message}`); })
        : undefined;
      const hash = crypto.createHash('sha256');
      try {
        for await (const piece of r.exactly(size)) {
          hash.update(piece);
          if (fh) await fh.write(piece);
        }
        if (fh) await fh.sync();
      } finally {
        await fh?.close();
      }
      const digest = hash.digest();
      if (!digest.equals(await r.bytes(32))) throw damaged(`the content of ${p} does not match its sha256`);
      if (target) await fs.chmod(path.join(target, p), mode);
      manifest.entries.push({ type: 'file', path: p, mode, size, sha256: digest.toString('hex') });
      manifest.bytes += size;
    } else throw damaged('it holds an unknown record');
  }
  if (!manifest.entries.some((e) => e.path === 'member' && e.type === 'dir')) throw damaged('it holds no member dir');
  for (const [dir, mode] of dirModes.reverse()) await fs.chmod(dir, mode);
  // The files were fsynced as they were written; the directories naming them are synced here.
  if (target) await fsyncTree(path.join(target, 'member'), { files: false });
  return manifest;
}

/** Entry paths are `member` or below it, plain names only: an archive can never write elsewhere. */
function checkPath(p: unknown): string {
  if (typeof p !== 'string' || !/^member(\/[^/\0]+)*$/.test(p) || p.split('/').some((s) => s === '.' || s === '..')) {
    throw damaged(`it names a path outside member/ (${JSON.stringify(p)?.slice(0, 80)})`);
  }
  return p;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw damaged('a record is not readable');
  }
}

const damaged = (what: string): IntegrityError => new IntegrityError('damaged', `the backup archive is damaged: ${what}`);

/** Pulls exact byte counts and lines out of a stream of buffers. */
class Reader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const n = await this.it.next();
    if (n.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, n.value]) : n.value;
    return true;
  }
  async bytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.more())) throw new IntegrityError('truncated', 'the backup archive is truncated');
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf(0x0a);
      if (i >= 0) {
        const s = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 1);
        return s;
      }
      if (this.buf.length > MAX_LINE) throw damaged('a record is too long');
      if (!(await this.more())) throw new IntegrityError('truncated', 'the backup archive is truncated');
    }
  }
  async *exactly(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new IntegrityError('truncated', 'the backup archive is truncated');
      const piece = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }
  async atEnd(): Promise<boolean> {
    while (this.buf.length === 0) if (!(await this.more())) return true;
    return false;
  }
}
