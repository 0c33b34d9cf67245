// Where the tests find things: the repo, the installed etcd binaries (make etcd-bin), Node 24.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN_DIR = process.env.ETCD_BIN_DIR ?? path.join(REPO, '.cache/etcd-bin');
/** What ships: the bundle that test/helpers/global-setup.ts builds from src/ before the tests. */
export const ENTRY = path.join(REPO, 'dist/etcd-migrate.mjs');

/** Fails loudly (never skips) when the binaries are not installed. */
export function requireBinaries(): void {
  if (!existsSync(path.join(BIN_DIR, 'etcd-3.5.30'))) {
    throw new Error(`etcd binaries missing in ${BIN_DIR}: run "make etcd-bin" (or set ETCD_BIN_DIR)`);
  }
}
