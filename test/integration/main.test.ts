// The bundle's entry (src/main.ts) and the compile cache the image ships beside it: used where the
// bundle lands (it is made in the build context, used at /app), harmless when missing, read-only or
// damaged. Node names each cache hit and miss with NODE_DEBUG_NATIVE=COMPILE_CACHE.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without types
import { bundle, fillCompileCache } from '../../scripts/build.mjs';
import { treeSnapshot } from '../helpers/cli.ts';
import { makeV3Data } from '../helpers/data.ts';
import { readArchiveFile } from '../../src/backup/file.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const isRoot = process.getuid?.() === 0;

/** One bundle with its cache for the whole file (esbuild takes a second); each test copies it. */
let built = '';
beforeAll(async () => {
  built = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-app-'));
  await (bundle as (dir: string) => Promise<void>)(built);
  await (fillCompileCache as (dir: string) => Promise<void>)(built);
  return () => fs.rm(built, { recursive: true, force: true });
}, 60_000);

/** The bundle moved elsewhere, as the image build moves it to /app. */
async function app(): Promise<string> {
  const dir = path.join(await tmpDir(), 'app');
  await fs.cp(built, dir, { recursive: true });
  return dir;
}

/** The pod start with nothing to migrate, without the exec: a data dir at the target version. */
async function noop(appDir: string): Promise<{ exitCode: number; stderr: string }> {
  const data = path.join(await tmpDir(), 'data');
  await fs.mkdir(path.join(data, 'member'), { recursive: true });
  await fs.writeFile(path.join(data, 'version.txt'), '3.5.30/etcd3');
  const r = await execa(
    process.execPath,
    [path.join(appDir, 'etcd-migrate.mjs'), '--data-dir', data, '--target-version', '3.5.30', '--bin-dir', BIN_DIR],
    {
      reject: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      extendEnv: false,
      stdin: 'ignore',
    },
  );
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

const hits = (log: string): number => log.match(/V8 code cache for ESM file:\S+ was accepted/g)?.length ?? 0;

describe('the compile cache beside the bundle', () => {
  it('is filled by the build and used after the bundle moves: every module of the no-op path is a hit', async () => {
    const dir = await app();
    const modules = (await fs.readdir(path.join(dir, 'chunks'))).length;
    const r = await noop(dir);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('etcd-migrate: 3.5.30/etcd3: nothing to migrate');
    expect(r.stderr).toMatch(/V8 code cache for ESM file:\S+\/chunks\/cli-\w+\.mjs was accepted/);
    expect(hits(r.stderr)).toBeGreaterThanOrEqual(8);
    expect(hits(r.stderr)).toBeLessThan(modules); // the lazily loaded chunks are not read at all
    expect(r.stderr).not.toMatch(/mismatch|rejected/);
  });

  it('covers a pod start that migrates: the step runners and the backup are hits too', async () => {
    const dir = await app();
    const data = path.join(await tmpDir(), 'data');
    await fs.mkdir(path.join(data, 'member'), { recursive: true });
    await fs.writeFile(path.join(data, 'version.txt'), '3.4.23/etcd3');
    const args = ['--data-dir', data, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--dry-run'];
    const r = await execa(process.execPath, [path.join(dir, 'etcd-migrate.mjs'), ...args], {
      reject: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      extendEnv: false,
      stdin: 'ignore',
    });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    for (const chunk of ['steps', 'guard'])
      expect(r.stderr).toMatch(new RegExp(`V8 code cache for ESM file:\\S+/chunks/${chunk}-\\w+\\.mjs was accepted`));
    expect(hits(String(r.stderr))).toBeGreaterThan(hits((await noop(dir)).stderr));
    expect(r.stderr).not.toMatch(/mismatch|rejected/);
  });

  it('read-only: read, never written, and the run is unchanged', async () => {
    const dir = await app();
    if (isRoot) {
      // Root writes through file modes: a read-only mount, as in a pod with readOnlyRootFilesystem.
      const mnt = path.join(await tmpDir(), 'ro');
      await fs.mkdir(mnt);
      await execa('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
      onCleanup(async () => {
        await execa('umount', ['-l', mnt], { reject: false });
      });
      await fs.cp(dir, path.join(mnt, 'app'), { recursive: true });
      await execa('mount', ['-o', 'remount,ro', mnt]);
      const before = await treeSnapshot(mnt);
      const r = await noop(path.join(mnt, 'app'));
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toContain('nothing to migrate');
      expect(hits(r.stderr)).toBeGreaterThanOrEqual(8);
      expect(await treeSnapshot(mnt)).toEqual(before);
    } else {
      await execa('chmod', ['-R', 'a-w', path.join(dir, 'compile-cache')]);
      onCleanup(async () => {
        await execa('chmod', ['-R', 'u+w', path.join(dir, 'compile-cache')]);
      });
      const before = await treeSnapshot(dir);
      const r = await noop(dir);
      expect(r.exitCode).toBe(0);
      expect(hits(r.stderr)).toBeGreaterThanOrEqual(8);
      expect(await treeSnapshot(dir)).toEqual(before);
    }
  });

  it('missing: no cache, none created, the run is unchanged', async () => {
    const dir = await app();
    await fs.rm(path.join(dir, 'compile-cache'), { recursive: true });
    const r = await noop(dir);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('nothing to migrate');
    expect(r.stderr).not.toContain('[compile cache]');
    expect((await fs.readdir(dir)).sort()).toEqual(['chunks', 'etcd-migrate.mjs', 'transformer.mjs']);
  });

  it('damaged: each entry is a miss, compiled afresh, and the run is unchanged', async () => {
    const dir = await app();
    const cache = path.join(dir, 'compile-cache');
    for (const sub of await fs.readdir(cache)) {
      for (const f of await fs.readdir(path.join(cache, sub))) {
        const p = path.join(cache, sub, f);
        const b = await fs.readFile(p);
        for (let i = 32; i < b.length; i += 7) b[i] = b[i]! ^ 0xff;
        await fs.writeFile(p, b);
      }
    }
    const r = await noop(dir);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('nothing to migrate');
    expect(hits(r.stderr)).toBe(0);
    expect(r.stderr).toMatch(/mismatch/);
  });
});

describe('the bundle under node --jitless (no WebAssembly, so no aligned memory for O_DIRECT)', () => {
  it("writes and reads back the run's backup through the page cache, and migrates", async () => {
    const dir = await app();
    const root = await tmpDir();
    const data = path.join(root, 'data');
    await makeV3Data('3.4.23', data, 'm1', 3);
    const [port, peer] = [await freePort(), await freePort()];
    const args = ['--data-dir', data, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--name', 'm1'];
    args.push('--port', String(port), '--peer-port', String(peer), '--backup-dir', path.join(root, 'b'));
    const r = await execa(process.execPath, ['--jitless', path.join(dir, 'etcd-migrate.mjs'), ...args], {
      reject: false,
      stdin: 'ignore',
    });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(await fs.readFile(path.join(data, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
    const [backup] = await fs.readdir(path.join(root, 'b'));
    const m = await readArchiveFile(path.join(root, 'b', backup!), undefined);
    expect(m.header.dataVersion).toBe('3.4.23/etcd3');
  }, 60_000);
});
