// Lays out the etcd versions an image bundles: <out>/etcd-<x.y.z>, etcdctl-<x.y.z>, etcdutl-<x.y.z>
// (where the release has it), and plain etcd, etcdctl, etcdutl linked to the newest.
//
//   node image/etcd-bundle.ts release <releases.tsv> <out-dir> [version...]
//       downloads each official tarball listed in releases.tsv, checks its sha256, unpacks the tools
//   node image/etcd-bundle.ts local <bin-dir> <out-dir> [version...]
//       hard-links (or copies) the tools from a bin dir laid out as above (make etcd-bin)
//
// A version is x.y.z, or x.y for the newest patch of that minor found in the source. Without
// versions on the command line, ETCD_VERSIONS (split on spaces or commas) names them.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
    if (!version || !VERSION.test(version) || !url?.startsWith('https://') || !/^[0-9a-f]{64}$/.test(sha256 ?? '')) {
      throw new Error(`releases.tsv line ${i + 1} is not "<x.y.z>\\t<https url>\\t<sha256>"`);
    }
    out.push({ version, url, sha256: sha256! });
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
      if (!available.includes(w)) throw new Error(`etcd ${w} is not available (available: ${[...available].sort(cmp).join(' ')})`);
      picked.add(w);
    } else if (MINOR.test(w)) {
      const newest = available.filter((v) => v.startsWith(`${w}.`)).sort(cmp).at(-1);
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
  const available = (await fs.readdir(binDir)).filter((n) => n.startsWith('etcd-')).map((n) => n.slice(5)).filter((v) => VERSION.test(v));
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
      await fs.link(src, dest).catch(() => fs.copyFile(src, dest));
    }
  }
  return versions;
}

async function fromRelease(tsv: string, out: string, wanted: string[]): Promise<string[]> {
  const releases = parseReleases(await fs.readFile(tsv, 'utf8'));
  const versions = selectVersions(releases.map((r) => r.version), wanted);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-release-'));
  try {
    for (const v of versions) {
      const r = releases.find((x) => x.version === v)!;
      const res = await fetch(r.url);
      if (!res.ok) throw new Error(`download of ${r.url} failed: HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      const sum = crypto.createHash('sha256').update(body).digest('hex');
      if (sum !== r.sha256) throw new Error(`sha256 of ${r.url} is ${sum}, expected ${r.sha256}`);
      const tgz = path.join(tmp, `etcd-${v}.tar.gz`);
      await fs.writeFile(tgz, body);
      const dir = path.join(tmp, v);
      await fs.mkdir(dir);
      execFileSync('tar', ['-xzf', tgz, '-C', dir, '--strip-components=1'], { stdio: 'inherit' });
      for (const tool of TOOLS) {
        if (!(await exists(path.join(dir, tool)))) continue;
        await fs.copyFile(path.join(dir, tool), path.join(out, `${tool}-${v}`));
        await fs.chmod(path.join(out, `${tool}-${v}`), 0o755);
      }
      await fs.rm(dir, { recursive: true });
      console.log(`etcd-bundle: etcd ${v}: sha256 ${sum} verified`);
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return versions;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false);
}

async function main(argv: string[]): Promise<void> {
  const [mode, source, out, ...rest] = argv;
  if ((mode !== 'release' && mode !== 'local') || !source || !out) {
    throw new Error('usage: etcd-bundle.ts release <releases.tsv> <out-dir> [version...] | local <bin-dir> <out-dir> [version...]');
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
