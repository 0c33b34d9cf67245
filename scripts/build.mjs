// Bundles the entrypoint into dist/etcd-migrate.mjs: one module to load instead of hundreds, so a
// pod start that has nothing to migrate pays little for it. What only a step, a subcommand or
// --help needs (execa, the backup machinery, yargs' help layout) is split into dist/chunks/ and
// loaded on demand.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Node's own modules are taken with process.getBuiltinModule(), not `import`: an ESM import of a
 * built-in builds its namespace, which reads every export, and some are lazy (node:fs's promises
 * and streams, node:util's parseArgs and worker_threads), a cost every pod start pays even with
 * nothing to migrate (BENCHMARKS.md). Here each export is read when first imported by a module that runs: the
 * pure wrapper lets esbuild drop an export no module imports. `require()` from bundled CommonJS gets the module
 * object itself; `await import()` of a built-in is left to Node.
 */
const builtins = {
  name: 'builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      const name = args.path.startsWith('node:') ? args.path : `node:${args.path}`;
      if (args.kind === 'dynamic-import') return { path: name, external: true };
      // One copy per importing module, so it lands in the importer's chunk: no chunk of its own to load.
      return {
        path: `${name}|${args.importer}`,
        namespace: args.kind === 'require-call' ? 'builtin-cjs' : 'builtin-esm',
      };
    });
    const id = (p) => JSON.stringify(p.slice(0, p.indexOf('|')));
    b.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${id(args.path)});`,
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'builtin-esm' }, (args) => {
      const name = args.path.slice(0, args.path.indexOf('|'));
      const names = Object.keys(process.getBuiltinModule(name)).filter(
        (k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default',
      );
      const lines = [`const m = process.getBuiltinModule(${id(args.path)});`, 'export default m;'];
      for (const k of names) lines.push(`export const ${k} = /* @__PURE__ */ (() => m.${k})();`);
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

/**
 * Every output module starts with this: whichever is evaluated first refuses an older Node with one
 * line, before anything that needs Node 24 (process.getBuiltinModule, import.meta.dirname) runs.
 */
const NODE_CHECK = `if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write('etcd-migrate: error: needs Node.js 24 or newer, this is ' + process.version + '\\n');
  process.exit(2);
}`;

/** The tool's version and the commit it was built from, for --version (src/about.ts). */
export async function buildInfo() {
  const { version } = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8'));
  const opts = { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] };
  const git = (...args) => execFileSync('git', args, opts).trim();
  let commit = 'unknown';
  try {
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    commit = git('rev-parse', '--short=12', 'HEAD') + (dirty ? '-dirty' : '');
  } catch {
    // Not a git checkout (an unpacked source tarball): the commit is unknown.
  }
  return { version, commit };
}

const REQUIRE = "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);";

/** Strings, which esbuild inlines where used (an object would become a shared module). */
async function defines() {
  const { version, commit } = await buildInfo();
  return { ETCD_MIGRATE_VERSION: JSON.stringify(version), ETCD_MIGRATE_COMMIT: JSON.stringify(commit) };
}

/** `outdir`: where etcd-migrate.mjs and chunks/ go (image/build.sh builds the image's own copy). */
export async function bundle(outdir = path.join(repo, 'dist')) {
  await build({
    entryPoints: {
      'etcd-migrate': path.join(repo, 'src/main.ts'),
      transformer: path.join(repo, 'src/etcd2/transformer.ts'),
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    legalComments: 'none',
    banner: { js: `${NODE_CHECK}\n${REQUIRE}` },
    define: await defines(),
    plugins: [builtins],
    // A fresh dir each build: no stale chunks.
    write: true,
    logLevel: 'warning',
  });
  // The npm package's bin: src/main.ts's shebang is kept by esbuild; npm also sets the mode on install.
  await chmod(path.join(outdir, 'etcd-migrate.mjs'), 0o755);
}

/**
 * Fills `<outdir>/compile-cache/`, which src/main.ts turns on when it exists: runs the bundle on a
 * scratch data dir, without the exec, so Node writes the V8 code of every module and function that
 * ran when it exits. First the pod start with nothing to migrate (the common case), then a dry run
 * of a one-minor upgrade, which loads the step runners and the backup (what a pod start that
 * migrates loads on top).
 */
export async function fillCompileCache(outdir) {
  const cache = path.join(outdir, 'compile-cache');
  await rm(cache, { recursive: true, force: true });
  await mkdir(cache);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-cache-'));
  try {
    const [data, bin] = [path.join(scratch, 'data'), path.join(scratch, 'bin')];
    await mkdir(path.join(data, 'member'), { recursive: true });
    await mkdir(bin);
    for (const v of ['3.4.23', '3.5.30']) await writeFile(path.join(bin, `etcd-${v}`), '', { mode: 0o755 });
    const run = (current, extra) => {
      writeFileSync(path.join(data, 'version.txt'), current);
      execFileSync(
        process.execPath,
        [
          path.join(outdir, 'etcd-migrate.mjs'),
          '--data-dir',
          data,
          '--target-version',
          '3.5.30',
          '--bin-dir',
          bin,
          ...extra,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
      );
    };
    run('3.5.30/etcd3', []);
    run('3.4.23/etcd3', ['--dry-run']);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

// node scripts/build.mjs [outdir] [--compile-cache]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--'));
  const out = dir ? path.resolve(dir) : path.join(repo, 'dist');
  await rm(out, { recursive: true, force: true });
  await bundle(out);
  if (args.includes('--compile-cache')) await fillCompileCache(out);
}
