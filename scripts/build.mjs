// Bundles the entrypoint into one file (dist/etcd-migrate.mjs): one module to load instead of
// hundreds, so a pod start that has nothing to migrate pays little for it.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `outfile`: where the bundle goes (image/build.sh builds the image's own copy). */
export async function bundle(outfile = path.join(repo, 'dist/etcd-migrate.mjs')) {
  await build({
    entryPoints: [path.join(repo, 'src/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    legalComments: 'none',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle(process.argv[2] && path.resolve(process.argv[2]));
