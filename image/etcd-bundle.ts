// Lays out the etcd versions an image bundles: <out>/etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z>
// (where the release has it), and plain etcd, etcdctl, etcdutl linked to the newest.
//
//   node image/etcd-bundle.ts release <releases.tsv> <out-dir> [version...]
//       downloads each official tarball listed in releases.tsv, checks its sha256, unpacks the tools
//       (in JS: the fetch stage needs Node 24 only)
//   node image/etcd-bundle.ts local <bin-dir> <out-dir> [version...]
//       hard-links (or copies) the tools from a bin dir laid out as above (make etcd-bin)
//
// A version is x.y.z, or x.y for the newest patch of that minor found in the source. Without
// versions on the command line, ETCD_VERSIONS (split on spaces or commas) names them.
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export interface Release {
  version: string;
  url: string;
  sha256: string;
}

const TOOLS = ['etcd', 'etcdctl', 'etcdutl'] as const;
const VERSION = /^\d+\.\d+\.\d+$/;
const MINOR = /^\d+\.\d+$/;

/** The rows of versions/releases.tsv: version, url, sha256 (and a note, ignored). */
export function parseReleases(text: string): Release[] {
  const out: Release[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [version, url, sha256] = line.split('\t');
    if (!version || !VERSION.test(version) || !/^https?:\/\//.test(url ?? '') || !/^[0-9a-f]{64}$/.test(sha256 ?? '')) {
      throw new Error(`releases.tsv line ${i + 1} is not "<x.y.z>\\t<url>\\t<sha256>"`);
    }
    out.push({ version, url: url!, sha256: sha256! });
  }
  return out;
}

const cmp = (a: string, b: string): number => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
};

/** The exact versions to bundle, oldest first: x.y.z as given, x.y as the newest x.y.* available. */
export function selectVersions(available: readonly string[], wanted: readonly string[]): string[] {
  if (wanted.length === 0) throw new Error('no version to bundle: pass versions (x.y.z or x.y) or set ETCD_VERSIONS');
  const picked = new Set<string>();
  for (const w of wanted) {
    if (VERSION.test(w)) {
      if (!available.includes(w))
        throw new Error(`etcd ${w} is not available (available: ${[...available].sort(cmp).join(' ')})`);
      picked.add(w);
    } else if (MINOR.test(w)) {
      const newest = available
        .filter((v) => v.startsWith(`${w}.`))
        .sort(cmp)
        .at(-1);
      if (!newest) throw new Error(`no etcd ${w}.x is available (available: ${[...available].sort(cmp).join(' ')})`);
      picked.add(newest);
    } else throw new Error(`"${w}" is not a version: use x.y.z or x.y`);
  }
  return [...picked].sort(cmp);
}

export const splitVersions = (s: string | undefined): string[] => (s ?? '').split(/[\s,]+/).filter(Boolean);

/** Plain etcd, etcdctl, etcdutl: relative links to the newest version's tools. */
async function linkNewest(out: string, newest: string): Promise<void> {
  for (const tool of TOOLS) {
    const target = `${tool}-${newest}`;
    await fs.rm(path.join(out, tool), { force: true });
    if (await exists(path.join(out, target))) await fs.symlink(target, path.join(out, tool));
  }
}

async function fromLocal(binDir: string, out: string, wanted: string[]): Promise<string[]> {
  const available = (await fs.readdir(binDir))
    .filter((n) => n.startsWith('etcd-'))
    .map((n) => n.slice(5))
    .filter((v) => VERSION.test(v));
  const versions = selectVersions(available, wanted);
  for (const v of versions) {
    for (const tool of TOOLS) {
      const src = path.join(binDir, `${tool}-${v}`);
      if (!(await exists(src))) {
        if (tool === 'etcdutl') continue; // etcdutl exists from 3.5 on
        throw new Error(`${src} is missing`);
      }
      const dest = path.join(out, `${tool}-${v}`);
      await fs.rm(dest, { force: true });
      // The file itself, not a link to it: a symlink would dangle inside the image.
      const file = await fs.realpath(src);
      await fs.link(file, dest).catch(() => fs.copyFile(file, dest));
    }
  }
  return versions;
}

async function fromRelease(tsv: string, out: string, wanted: string[]): Promise<string[]> {
  const releases = parseReleases(await fs.readFile(tsv, 'utf8'));
  const versions = selectVersions(
    releases.map((r) => r.version),
    wanted,
  );
  for (const v of versions) {
    const r = releases.find((x) => x.version === v)!;
    const res = await fetch(r.url);
    if (!res.ok) throw new Error(`download of ${r.url} failed: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    const sum = crypto.createHash('sha256').update(body).digest('hex');
    if (sum !== r.sha256) throw new Error(`sha256 of ${r.url} is ${sum}, expected ${r.sha256}`);
    const files = untar(zlib.gunzipSync(body));
    let found = 0;
    for (const tool of TOOLS) {
      const data = files.get(tool);
      if (!data) continue;
      await fs.writeFile(path.join(out, `${tool}-${v}`), data, { mode: 0o755 });
      found++;
    }
    if (!files.has('etcd') || !files.has('etcdctl'))
      throw new Error(`${r.url} holds no etcd or no etcdctl at its top level`);
    console.log(`etcd-bundle: etcd ${v}: sha256 ${sum} verified, ${found} tools`);
  }
  return versions;
}

/**
 * The regular files one directory deep in a tar archive (etcd-v<V>-linux-amd64/<name>), by name.
 * Reads ustar and GNU headers, GNU long names and pax path records: what release tarballs hold.
 */
export function untar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const field = (h: Buffer, at: number, len: number) =>
    h
      .subarray(at, at + len)
      .toString('utf8')
      .replace(/\0.*$/s, '');
  let longName: string | undefined;
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(field(h, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x') {
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1] ?? longName;
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    longName = undefined;
    const parts = name.split('/').filter(Boolean);
    if ((type === '0' || type === '\0') && parts.length === 2) files.set(parts[1]!, Buffer.from(data));
  }
  return files;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

async function main(argv: string[]): Promise<void> {
  const [mode, source, out, ...rest] = argv;
  if ((mode !== 'release' && mode !== 'local') || !source || !out) {
    throw new Error(
      'usage: etcd-bundle.ts release <releases.tsv> <out-dir> [version...] | local <bin-dir> <out-dir> [version...]',
    );
  }
  const wanted = rest.length ? rest : splitVersions(process.env.ETCD_VERSIONS);
  await fs.rm(out, { recursive: true, force: true });
  await fs.mkdir(out, { recursive: true });
  const versions = mode === 'release' ? await fromRelease(source, out, wanted) : await fromLocal(source, out, wanted);
  await linkNewest(out, versions.at(-1)!);
  console.log(`etcd-bundle: ${out} holds etcd ${versions.join(' ')}; plain etcd, etcdctl are ${versions.at(-1)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`etcd-bundle: error: ${(e as Error).message}`);
    process.exit(1);
  });
}
