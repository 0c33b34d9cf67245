#!/usr/bin/env node
// The entrypoint. Node 24 runs the TypeScript sources directly (type stripping).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `etcd-migrate: error: needs Node.js 24 or newer, this is ${process.version}; ` +
      `run it through npx or npm scripts after npm ci (they use the pinned Node 24)\n`,
  );
  process.exit(2);
}
await import('../src/main.ts');
