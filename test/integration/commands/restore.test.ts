// `etcd-migrate restore` with the real binaries: a snapshot into an empty data dir with the member
// flags, checked by starting etcd; a damaged, truncated or wrongly keyed file changes nothing.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { makeHistoryData, served } from '../../helpers/fixtures.ts';
import { BIN_DIR, ENTRY, requireBinaries } from '../../helpers/env.ts';
import { freePort, tmpDir } from '../../helpers/tmp.ts';

beforeAll(requireBinaries);

const NAME = 'm1';
const V1_FIXTURES = path.join(import.meta.dirname, '../../fixtures/backup-v1');
const V1_BACKUP = 'fixture-20261203T200000000Z-3.5.30-etcd3.backup';

/** A 3.5.30 data dir and a verified snapshot of it (plain, and encrypted with `key`). */
async function snapshotOf(root: string) {
  const dir = path.join(root, 'data');
  const data = await makeHistoryData('3.5.30', dir, NAME);
  const key = path.join(root, 'key');
  await fs.writeFile(key, 'k'.repeat(48), { mode: 0o600 });
  const ports = ['--port', String(await freePort()), '--peer-port', String(await freePort())];
  for (const [file, extra] of [
    ['snap.db', []],
    ['snap.enc', ['--backup-encryption-key-file', key]],
  ] as const) {
    const r = await runCli([
      'backup',
      path.join(root, file),
      '--data-dir',
      dir,
      '--bin-dir',
      BIN_DIR,
      ...ports,
      ...extra,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return { data, snap: path.join(root, 'snap.db'), enc: path.join(root, 'snap.enc'), key };
}

describe('etcd-migrate restore', () => {
  it('restores a snapshot (plain or encrypted) for an older minor with member flags; writes version.txt', async () => {
    const root = await tmpDir();
    const { data, snap, enc, key } = await snapshotOf(root);
    const peer = `http://127.0.0.1:${await freePort()}`;
    for (const [file, extra] of [
      [snap, []],
      [enc, ['--backup-encryption-key-file', key]],
    ] as const) {
      const target = path.join(root, `restored-${path.basename(file)}`);
      await fs.mkdir(path.join(target, 'lost+found'), { recursive: true }); // an empty volume
      const r = await runCli([
        'restore',
        file,
        '--data-dir',
        target,
        '--target-version',
        '3.4.23',
        '--bin-dir',
        BIN_DIR,
        '--name',
        'm2',
        '--initial-cluster',
        `m2=${peer}`,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster-token',
        'tok-1',
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
        ...extra,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`keys: ${data.keys.length}`);
      expect(r.stdout).toContain(`revision: ${data.revision}`);
      expect(await fs.readFile(path.join(target, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
      expect((await fs.readdir(target)).sort()).toEqual(['lost+found', 'member', 'version.txt']);
      const after = await served('3.4.23', target, 'm2');
      expect(after.keys).toEqual(data.keys);
      expect(after.revision).toBe(data.revision);
      expect(after.members).toMatch(new RegExp(`, m2, ${peer}, `));
    }
  });

  it('refuses a damaged or truncated snapshot, a wrong key, a non-empty dir, and changes nothing', async () => {
    const root = await tmpDir();
    const { snap, enc, key } = await snapshotOf(root);
    const good = await fs.readFile(snap);
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)]! ^= 0x01;
    await fs.writeFile(path.join(root, 'flipped.db'), flipped);
    await fs.writeFile(path.join(root, 'cut.db'), good.subarray(0, good.length - 1000));
    const sealed = await fs.readFile(enc);
    await fs.writeFile(path.join(root, 'cut.enc'), sealed.subarray(0, sealed.length - 10));
    const wrong = path.join(root, 'wrong');
    await fs.writeFile(wrong, 'w'.repeat(48), { mode: 0o600 });
    const empty = path.join(root, 'empty');
    await fs.mkdir(empty);
    const base = [
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    const cases: Array<[string, string[], RegExp]> = [
      [path.join(root, 'flipped.db'), [], /damaged or truncated: its content does not match the sha256 etcd appended/],
      [path.join(root, 'cut.db'), [], /damaged or truncated/],
      [path.join(root, 'cut.enc'), ['--backup-encryption-key-file', key], /encrypted file is damaged or truncated/],
      [enc, ['--backup-encryption-key-file', wrong], /wrong key file/],
      [path.join(root, 'key'), [], /neither an etcd snapshot nor an etcd-migrate backup/],
    ];
    for (const target of [empty, path.join(root, 'missing')]) {
      for (const [file, extra, message] of cases) {
        const r = await runCli(['restore', file, '--data-dir', target, ...base, ...extra]);
        expect(r.exitCode, r.stderr).toBe(2);
        expect(r.stderr).toMatch(message);
      }
    }
    expect(await fs.readdir(empty)).toEqual([]);
    await expect(fs.stat(path.join(root, 'missing'))).rejects.toThrow(/ENOENT/);

    const dir = path.join(root, 'data');
    const before = await treeSnapshot(dir);
    const busy = await runCli(['restore', snap, '--data-dir', dir, ...base]);
    expect(busy.exitCode).toBe(2);
    expect(busy.stderr).toMatch(/already holds data; restore only fills a missing or empty data dir/);
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('reports a damaged backup archive as damaged (exit 2), of either version, and changes nothing', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    const backups = path.join(root, 'backups');
    const ports = ['--port', String(await freePort()), '--peer-port', String(await freePort())];
    const m = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--backup-dir',
      backups,
      ...ports,
    ]);
    expect(m.exitCode, m.stderr).toBe(0);
    const [name] = await fs.readdir(backups);
    // A flipped bit at each of 24 places spread over the file (past its magic: zstd's 4 bytes, the
    // archive's first line, so each is still taken for an archive). A version 1 archive is a zstd
    // stream: zstd raises ZSTD_error_* codes of several kinds, each said as damage.
    const target = path.join(root, 'restored');
    const codes = new Set<string>();
    for (const file of [path.join(backups, name!), path.join(V1_FIXTURES, V1_BACKUP)]) {
      const good = await fs.readFile(file);
      const skip = file.endsWith(V1_BACKUP) ? 4 : 23;
      for (let i = 0; i < 24; i++) {
        const bad = Buffer.from(good);
        const at = skip + Math.floor(((bad.length - skip) * i) / 24);
        bad[at]! ^= 1 << (i % 8);
        const flipped = path.join(root, `flipped-${i}.backup`);
        await fs.writeFile(flipped, bad);
        const r = await runCli(['restore', flipped, '--data-dir', target, '--bin-dir', BIN_DIR]);
        expect(r.exitCode, `${path.basename(file)}, flip at byte ${at}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(/the backup archive is (damaged|truncated)/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        if (file.endsWith(V1_BACKUP)) codes.add(/zstd: ([^)]*)\)/.exec(r.stderr)?.[1] ?? 'archive check');
        await expect(fs.stat(target)).rejects.toThrow(/ENOENT/);
      }
    }
    console.log(`24 flipped bits in a version 1 archive: ${[...codes].join(' | ')}`);
    expect(codes.size).toBeGreaterThan(1);
  });

  it('restores a version 1 backup (before archive version 2), plain and encrypted: etcd serves its keys', async () => {
    const root = await tmpDir();
    for (const [file, extra] of [
      [V1_BACKUP, []],
      [`${V1_BACKUP}.enc`, ['--backup-encryption-key-file', path.join(root, 'key')]],
    ] as const) {
      // The key file is copied: a checkout may leave it readable by others, which is refused.
      await fs.copyFile(path.join(V1_FIXTURES, 'key'), path.join(root, 'key'));
      await fs.chmod(path.join(root, 'key'), 0o600);
      const target = path.join(root, `restored-${file}`);
      const r = await runCli([
        'restore',
        path.join(V1_FIXTURES, file),
        '--data-dir',
        target,
        '--bin-dir',
        BIN_DIR,
        ...extra,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await fs.readFile(path.join(target, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
      const { keys } = await served('3.5.30', target, 'default');
      expect(keys.map((k) => `${k.key}=${k.value}`)).toEqual([
        '/registry/fixture/k1=value 1',
        '/registry/fixture/k2=value 2',
        '/registry/fixture/k3=value 3',
        '/registry/fixture/leased=v',
      ]);
    }
  });

  it('makes each dir of the restored member durable (from a snapshot, each file too) before the swap', async (ctx) => {
    const strace = await execa('strace', ['-V'], { reject: false }).catch(() => undefined);
    if (!strace || strace.exitCode !== 0) ctx.skip('needs strace to see the fsyncs');
    const root = await tmpDir();
    const { snap } = await snapshotOf(root);
    // A migration's backup archive of the same data.
    const dir = path.join(root, 'old');
    await makeHistoryData('3.4.23', dir, NAME);
    const backups = path.join(root, 'backups');
    const m = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--backup-dir',
      backups,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(m.exitCode, m.stderr).toBe(0);
    const archive = path.join(backups, (await fs.readdir(backups))[0]!);
    for (const [file, extra, files] of [
      [archive, [], false],
      [snap, ['--target-version', '3.5.30'], true],
    ] as const) {
      const target = path.join(root, `restored-${path.basename(file)}`);
      const log = path.join(root, `strace-${path.basename(file)}.log`);
      const r = await execa(
        'strace',
        [
          '-f',
          '-qq',
          '-y',
          '-e',
          'trace=fsync,fdatasync',
          '-o',
          log,
          process.execPath,
          ENTRY,
          'restore',
          file,
          '--data-dir',
          target,
          '--bin-dir',
          BIN_DIR,
          '--port',
          String(await freePort()),
          '--peer-port',
          String(await freePort()),
          ...extra,
        ],
        { reject: false, stdin: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false },
      );
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const synced = new Set(
        [...(await fs.readFile(log, 'utf8')).matchAll(/f(?:data)?sync\(\d+<([^>]+)>\) = 0/g)].map((x) => x[1]!),
      );
      // Synced where they were built, in the work area, before the swap moved them into place.
      const built = path.join(target, '.etcd-migrate', 'new');
      const tree = await treeSnapshot(path.join(target, 'member'));
      const dirs = tree.filter((l) => l.startsWith('d ')).map((l) => path.join(built, 'member', l.split(' ')[1]!));
      expect(dirs.length).toBeGreaterThan(2);
      expect(
        dirs.filter((d) => !synced.has(d)),
        path.basename(file),
      ).toEqual([]);
      if (files) {
        const all = tree.filter((l) => l.startsWith('f ')).map((l) => path.join(built, 'member', l.split(' ')[1]!));
        expect(
          all.filter((f) => !synced.has(f)),
          path.basename(file),
        ).toEqual([]);
      }
    }
  });

  it('restores a raw copy of member/snap/db only with --skip-hash-check', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    const data = await makeHistoryData('3.5.30', dir, NAME);
    const raw = path.join(root, 'db');
    await fs.copyFile(path.join(dir, 'member/snap/db'), raw);
    const base = [
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    const target = path.join(root, 'restored');
    const no = await runCli(['restore', raw, '--data-dir', target, ...base]);
    expect(no.exitCode).toBe(2);
    expect(no.stderr).toMatch(/restore one with --skip-hash-check/);
    const yes = await runCli(['restore', raw, '--data-dir', target, ...base, '--skip-hash-check']);
    expect(yes.exitCode, yes.stderr).toBe(0);
    expect((await served('3.5.30', target, NAME)).keys).toEqual(data.keys);
  });
});
