// Bad input: one clear line, exit code 2, and the data dir's tree (names, modes, contents) unchanged.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, REPO, requireBinaries } from '../helpers/env.ts';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

const isRoot = process.getuid?.() === 0;

interface Case {
  name: string;
  /** Builds the situation in `root`; returns the data dir and the arguments/env to run with. */
  setup: (
    root: string,
    c: Ctx,
  ) => Promise<{ args?: string[]; env?: Record<string, string>; dataDir?: string; uid?: number }>;
  message: RegExp;
  needsRoot?: boolean;
}

interface Ctx {
  dataDir: string;
  base: string[];
}

/** A data dir that holds data (content never read: every case fails before etcd runs). */
async function withData(dir: string, version: string | null = '3.3.25/etcd3'): Promise<void> {
  await fs.mkdir(path.join(dir, 'member/snap'), { recursive: true, mode: 0o700 });
  await fs.mkdir(path.join(dir, 'member/wal'), { mode: 0o700 });
  await fs.writeFile(path.join(dir, 'member/snap/db'), Buffer.alloc(4096, 7), { mode: 0o600 });
  await fs.writeFile(path.join(dir, 'member/wal/0000000000000000-0000000000000000.wal'), Buffer.alloc(8192, 1), {
    mode: 0o600,
  });
  if (version !== null) await fs.writeFile(path.join(dir, 'version.txt'), version);
}

/** A bin dir holding only some of the real binaries (symlinks). */
async function binDirWith(root: string, names: string[]): Promise<string> {
  const dir = path.join(root, 'bin');
  await fs.mkdir(dir, { recursive: true });
  for (const n of names) await fs.symlink(path.join(BIN_DIR, n), path.join(dir, n));
  return dir;
}

async function mountTmpfs(dir: string, opts: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await execa('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
  onCleanup(async () => {
    await execa('umount', ['-l', dir], { reject: false });
  });
}

async function holdPort(port: number): Promise<void> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
  onCleanup(() => new Promise((r) => srv.close(() => r())));
}

const cases: Case[] = [
  {
    name: 'empty version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, '');
      return {};
    },
    message: /version\.txt is empty: write "<x\.y\.z>\/<etcd2\|etcd3>"/,
  },
  {
    name: 'corrupt version.txt (binary)',
    setup: async (_r, c) => {
      await withData(c.dataDir, '\u0000\u00ff\u0001/\u0002');
      return {};
    },
    message: /version\.txt holds ".*", whose version is not x\.y\.z/,
  },
  {
    name: 'unparsable version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.4.23');
      return {};
    },
    message: /version\.txt holds "3\.4\.23", not <x\.y\.z>\/<etcd2\|etcd3>/,
  },
  {
    name: 'version.txt with a short version',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.4/etcd3');
      return {};
    },
    message: /whose version is not x\.y\.z/,
  },
  {
    name: 'unknown storage in version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.4.23/etcd4');
      return {};
    },
    message: /whose storage is neither etcd2 nor etcd3/,
  },
  {
    name: 'version.txt is a directory',
    setup: async (_r, c) => {
      await withData(c.dataDir, null);
      await fs.mkdir(path.join(c.dataDir, 'version.txt'));
      return {};
    },
    message: /version\.txt is a directory/,
  },
  {
    name: 'data but no version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, null);
      return {};
    },
    message: joinedRegex(
      /holds data but no version\.txt; the data shows no version; /,
      /if that is right, pass --assume-current-version 3\.4\.23\/etcd3/,
    ),
  },
  {
    name: '--assume-current-version malformed',
    setup: async (_r, c) => {
      await withData(c.dataDir, null);
      return { args: ['--assume-current-version', '3.4'] };
    },
    message: /--assume-current-version holds "3\.4", not <x\.y\.z>\/<etcd2\|etcd3>/,
  },
  {
    name: '--assume-current-version contradicts version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.4.23/etcd3');
      return { args: ['--assume-current-version', '3.3.25/etcd3'] };
    },
    message: /version\.txt says 3\.4\.23\/etcd3 but --assume-current-version says 3\.3\.25\/etcd3/,
  },
  {
    name: 'unknown target storage',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { TARGET_STORAGE: 'etcd4' } };
    },
    message: /TARGET_STORAGE "etcd4" is unknown: use etcd2 or etcd3/,
  },
  {
    name: 'malformed target version',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--target-version', '3.5'] };
    },
    message: /--target-version "3\.5" is not a version of the form x\.y\.z/,
  },
  {
    name: 'target version not bundled',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--target-version', '3.6.0'] };
    },
    message: joinedRegex(
      /target version 3\.6\.0 is not bundled /,
      /\(bundled: 3\.3\.25, 3\.4\.23, 3\.5\.16, 3\.5\.30, 3\.5\.36, 3\.6\.17, 3\.7\.3\)/,
    ),
  },
  {
    name: 'missing target version',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--target-version', ''] };
    },
    message: /--target-version \(or TARGET_VERSION\) is required/,
  },
  {
    name: 'a gap in the bundled minors',
    setup: async (r, c) => {
      await withData(c.dataDir);
      return { args: ['--bin-dir', await binDirWith(r, ['etcd-3.3.25', 'etcd-3.5.30'])] };
    },
    message: /etcd 3\.4 is needed to step from 3\.3 towards 3\.5\.30, one minor at a time, but no 3\.4\.x is bundled/,
  },
  {
    name: 'BUNDLED_VERSIONS names a binary the bin dir lacks',
    setup: async (r, c) => {
      await withData(c.dataDir);
      return {
        args: ['--bin-dir', await binDirWith(r, ['etcd-3.3.25', 'etcd-3.5.30'])],
        env: { BUNDLED_VERSIONS: '3.3.25,3.4.23,3.5.30' },
      };
    },
    message: /the bin dir lacks what the plan needs: .*etcd-3\.4\.23 is missing/,
  },
  {
    name: 'a needed etcd is not executable',
    setup: async (r, c) => {
      await withData(c.dataDir);
      const bin = await binDirWith(r, ['etcd-3.3.25', 'etcd-3.5.30']);
      await fs.writeFile(path.join(bin, 'etcd-3.4.23'), '#!/bin/sh\n', { mode: 0o644 });
      return { args: ['--bin-dir', bin] };
    },
    message: /etcd-3\.4\.23 is not executable \(chmod \+x it\)/,
    needsRoot: false,
  },
  {
    name: 'the target etcd to exec is missing',
    setup: async (r, c) => {
      await withData(c.dataDir, '3.5.30/etcd3');
      return {
        args: ['--bin-dir', await binDirWith(r, ['etcd-3.3.25']), '--', '--name', 'x'],
        env: { BUNDLED_VERSIONS: '3.5.30' },
      };
    },
    message: /etcd-3\.5\.30 is missing/,
  },
  {
    name: 'BUNDLED_VERSIONS malformed',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { BUNDLED_VERSIONS: '3.4.23;3.5.30' } };
    },
    message: /BUNDLED_VERSIONS entry "3\.4\.23;3\.5\.30" is not a version/,
  },
  {
    name: 'version.txt newer than every bundled version',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.8.0/etcd3');
      return {};
    },
    message:
      /etcd 3\.8 is needed to enable the downgrade from 3\.8 \(etcdctl downgrade enable\), but no 3\.8\.x is bundled/,
  },
  {
    name: 'etcd3 storage below 3.0 in version.txt',
    setup: async (_r, c) => {
      await withData(c.dataDir, '2.2.1/etcd3');
      return {};
    },
    message: /etcd3 storage needs etcd 3\.0 or newer/,
  },
  {
    name: 'etcd2 target on 3.4+',
    setup: async (_r, c) => {
      await withData(c.dataDir, '3.3.25/etcd2');
      return { args: ['--target-version', '3.4.23', '--target-storage', 'etcd2'] };
    },
    message: /etcd 3\.4 does not serve etcd2 storage by default/,
  },
  {
    name: 'the data dir is a file',
    setup: async (r) => {
      const f = path.join(r, 'file');
      await fs.writeFile(f, 'x');
      return { dataDir: f };
    },
    message: /the data dir .*\/file is not a directory/,
  },
  {
    name: 'the data dir is unreadable',
    needsRoot: true,
    setup: async (_r, c) => {
      await withData(c.dataDir);
      await fs.chmod(c.dataDir, 0o000);
      onCleanup(() => fs.chmod(c.dataDir, 0o700));
      return { uid: 65534 };
    },
    message: /cannot be read \(permission denied\)/,
  },
  {
    name: 'the data dir is on a read-only file system',
    needsRoot: true,
    setup: async (r, c) => {
      const mnt = path.join(r, 'ro');
      await mountTmpfs(mnt, 'size=1m');
      const dataDir = path.join(mnt, 'data');
      await withData(dataDir);
      await execa('mount', ['-o', 'remount,ro', mnt]);
      void c;
      return { dataDir };
    },
    message: /is on a read-only file system; mount it read-write/,
  },
  {
    name: 'a full disk',
    needsRoot: true,
    setup: async (r) => {
      const mnt = path.join(r, 'full');
      await mountTmpfs(mnt, 'size=2m');
      const dataDir = path.join(mnt, 'data');
      await withData(dataDir);
      return { dataDir };
    },
    message: joinedRegex(
      /not enough free space for step 1 \(upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3/,
      /.*needs up to 61\.0 MiB, .* is free .*; free some space/,
    ),
  },
  {
    name: 'a full disk for a new cluster (version.txt cannot be written)',
    needsRoot: true,
    setup: async (r) => {
      const mnt = path.join(r, 'full0');
      await mountTmpfs(mnt, 'size=64k');
      const dataDir = path.join(mnt, 'data');
      await fs.mkdir(dataDir);
      await fs.writeFile(path.join(mnt, 'filler'), Buffer.alloc(60 * 1024)).catch(() => {});
      await execa('sh', ['-c', `cat /dev/zero > ${mnt}/filler2 2>/dev/null || true`]);
      return { dataDir };
    },
    message: /no space left on the file system of .*; free some space and rerun/,
  },
  {
    name: 'the hidden port already in use',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      const p = await freePort();
      await holdPort(p);
      return { args: ['--port', String(p)] };
    },
    message: /127\.0\.0\.1:\d+ is already in use, and --port \(the hidden client port\) needs it/,
  },
  {
    name: 'the peer port already in use',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      const p = await freePort();
      await holdPort(p);
      return { args: ['--peer-port', String(p)] };
    },
    message: /is already in use, and the peer port/,
  },
  {
    name: 'malformed INITIAL_CLUSTER',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { INITIAL_CLUSTER: 'm1:http://127.0.0.1:2380' } };
    },
    message: /the initial cluster "m1:http:\/\/127\.0\.0\.1:2380" is malformed/,
  },
  {
    name: 'INITIAL_CLUSTER without this member',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { INITIAL_CLUSTER: 'other=http://127.0.0.1:2380' } };
    },
    message: /does not name this member "m1"/,
  },
  {
    name: 'etcd flag --data-dir conflicts with DATA_DIRECTORY',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--', '--data-dir', '/somewhere/else'] };
    },
    message: /the etcd flag --data-dir=\/somewhere\/else is not the data dir being migrated/,
  },
  {
    name: 'an unknown flag',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--data-directory', '/x'] };
    },
    message: /unknown flag --data-directory; did you mean --data-dir\? see etcd-migrate --help/,
  },
  {
    name: 'a mistyped flag',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--target-versoin', '3.5.30'] };
    },
    message: /unknown flag --target-versoin; did you mean --target-version\? see etcd-migrate --help/,
  },
  {
    name: 'a flag like no other',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--zzz'] };
    },
    message: /^etcd-migrate: error: unknown flag --zzz; see etcd-migrate --help$/,
  },
  {
    name: 'an unknown output format',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--output', 'yaml'] };
    },
    message: /--output yaml is not a format: use --output json or --output text/,
  },
  {
    name: 'a port that is not a number',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--port', 'abc'] };
    },
    message: /--port needs a number/,
  },
  {
    name: 'same client and peer port',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { args: ['--port', '2390', '--peer-port', '2390'] };
    },
    message: /--port and --peer-port are both 2390/,
  },
  {
    name: 'the bin dir does not exist',
    setup: async (r, c) => {
      await withData(c.dataDir);
      return { args: ['--bin-dir', path.join(r, 'nope')] };
    },
    message: /the bin dir .*\/nope does not exist; pass --bin-dir/,
  },
  {
    name: 'the bin dir holds no etcd',
    setup: async (r, c) => {
      await withData(c.dataDir);
      return { args: ['--bin-dir', await binDirWith(r, ['etcdctl-3.3.25'])] };
    },
    message: /holds no etcd-<x\.y\.z> binary/,
  },
  {
    name: 'a data prefix without a slash',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { ETCD_DATA_PREFIX: 'registry' } };
    },
    message: /the data prefix "registry" must start with "\/"/,
  },
  {
    name: 'ETCD_CREDS gives --data-dir',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { ETCD_CREDS: '--data-dir=/elsewhere' } };
    },
    message: /ETCD_CREDS gives --data-dir, which etcd-migrate sets itself for every temporary etcd/,
  },
  {
    name: 'ETCD_CREDS gives a listener',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      return { env: { ETCD_CREDS: '--listen-metrics-urls=http://0.0.0.0:2381' } };
    },
    message: /ETCD_CREDS gives --listen-metrics-urls, which etcd-migrate sets itself/,
  },
  {
    name: 'another entrypoint holds the lock',
    setup: async (_r, c) => {
      await withData(c.dataDir);
      const holder = execa(process.execPath, [path.join(REPO, 'test/helpers/lock-holder.ts'), c.dataDir], {
        reject: false,
        stdin: 'pipe',
      });
      onCleanup(async () => {
        holder.kill();
        await holder;
      });
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      return {};
    },
    message: /another etcd-migrate \(pid \d+\) is working on/,
  },
];

describe('bad input: one line, exit 2, nothing changed', () => {
  it('has at least 25 distinct cases', () => expect(new Set(cases.map((c) => c.name)).size).toBeGreaterThanOrEqual(25));

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    if (c.needsRoot && !isRoot)
      return expect.soft(isRoot, 'needs root (mounts a tmpfs or drops privileges); CI runs as root').toBe(true);
    const root = await tmpDir();
    const ctx: Ctx = { dataDir: path.join(root, 'data'), base: [] };
    const s = await c.setup(root, ctx);
    const dataDir = s.dataDir ?? ctx.dataDir;
    const watched = (await fs.stat(dataDir).then(
      (st) => st.isDirectory(),
      () => false,
    ))
      ? dataDir
      : path.dirname(dataDir);
    const before = await treeSnapshot(watched);
    const args = [
      '--data-dir',
      dataDir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    // Later flags win in yargs: the case's own args override the defaults above.
    const [own, etcd] = splitDash(s.args ?? []);
    const argv = [...args, ...own, ...(etcd ? ['--', ...etcd] : [])];
    const r = s.uid !== undefined ? await runAs(s.uid, argv, s.env) : await runCli(argv, s.env ?? {});
    expect(r.exitCode, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^etcd-migrate: error: /);
    expect(lines[0]).toMatch(c.message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    if (s.uid !== undefined) await fs.chmod(dataDir, 0o000); // snapshot below runs as root
    expect(await treeSnapshot(watched)).toEqual(before);
  });
});

function splitDash(args: string[]): [string[], string[] | undefined] {
  const i = args.indexOf('--');
  return i === -1 ? [args, undefined] : [args.slice(0, i), args.slice(i + 1)];
}

async function runAs(uid: number, argv: string[], env: Record<string, string> = {}) {
  const { ENTRY } = await import('../helpers/env.ts');
  const r = await execa(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ENTRY, ...argv],
    {
      reject: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      extendEnv: false,
      stdin: 'ignore',
    },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
