#!/usr/bin/env node
// The bundle's entry (dist/etcd-migrate.mjs, the npm package's bin): run the CLI. The build puts a
// Node version check before it (scripts/build.mjs); bin/etcd-migrate.js is the in-repo one.
//
// The image ships a V8 compile cache of the bundle beside it (compile-cache/, filled when the image
// is built: scripts/build.mjs --compile-cache), so a pod's fresh container loads the entrypoint
// without compiling it. It is turned on before the rest of the bundle loads, hence the dynamic
// import. Portable: the cache holds paths relative to its dir, so it is made in the build context
// and used at /app. No dir: no cache. A read-only dir is read, never written; a stale or damaged
// entry is only a miss (V8 checks each against the source). NODE_DISABLE_COMPILE_CACHE=1 turns it off.
import { existsSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import path from 'node:path';

const cache = path.join(import.meta.dirname, 'compile-cache');
if (existsSync(cache)) enableCompileCache({ directory: cache, portable: true });

// The transformer's entry: dist/transformer.mjs beside this one, or src/etcd2/transformer.ts in the sources.
const fromSources = path.extname(import.meta.filename) === '.ts';
const transformer = fromSources
  ? path.join(import.meta.dirname, 'etcd2', 'transformer.ts')
  : path.join(import.meta.dirname, 'transformer.mjs');
const { run } = await import('./cli.ts');
await run({ node: process.execPath, transformer });
