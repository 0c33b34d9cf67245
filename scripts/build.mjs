// Bundles the entrypoint into dist/etcd-migrate.mjs: one module to load instead of hundreds, so a
// pod start that has nothing to migrate pays little for it. What only a step, a subcommand or
// --help needs (execa, the backup machinery, yargs' help layout) is split into dist/chunks/ and
// loaded on demand.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `outdir`: where etcd-migrate.mjs and chunks/ go (image/build.sh builds the image's own copy). */
export async function bundle(outdir = path.join(repo, 'dist')) {
  await build({
    entryPoints: { 'etcd-migrate': path.join(repo, 'src/main.ts') },
    outdir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    legalComments: 'none',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    // A fresh dir each build: no stale chunks.
    write: true,
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(repo, 'dist');
  await rm(out, { recursive: true, force: true });
  await bundle(out);
}
