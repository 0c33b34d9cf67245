// Issue 5: the verified backup before a run's first step, with the real binaries: restored after a failed
// in-place step, retention, encryption, where backups may go, and the free-space preflight.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupId } from '../../../src/backup/retention.ts';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { fixtureBinDir, makeHistoryData, served } from '../../helpers/fixtures.ts';
import { BIN_DIR, requireBinaries } from '../../helpers/env.ts';
import { freePort, onCleanup, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

async function cli(
  dir: string,
  target: string,
  extra: string[] = [],
  binDir = BIN_DIR,
  env: Record<string, string> = {},
) {
  return runCli(
    [
      '--data-dir',
      dir,
      '--target-version',
      target,
      '--bin-dir',
      binDir,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
      ...extra,
    ],
    env,
  );
}

describe("the backup before a run's first step", () => {
  it('a step that fails after etcd ran on the live data is undone from the backup', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const data = await makeHistoryData('3.3.25', dir, NAME);
    const before = await treeSnapshot(dir);
    // etcd 3.4.23 runs for real (it records cluster version 3.4 in the data), but fails to stop cleanly.
    const bin = await fixtureBinDir({
      'etcd-3.4.23': '"$REAL" "$@" &\npid=$!\ntrap \'kill -TERM $pid; wait $pid; exit 1\' TERM\nwait $pid',
    });
    const r = await cli(dir, '3.4.23', [], bin);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/etcd 3\.4\.23 did not stop cleanly/);
    expect(r.stderr).toMatch(/the step failed after etcd ran on the live data; restoring .*\.backup/);
    expect(r.stderr).toContain(
      "restored the data dir from the backup taken before this run's first step: " +
        'it is as it was then (version.txt = 3.3.25/etcd3)',
    );
    expect(await treeSnapshot(dir)).toEqual(before);
    // 3.3.25 still runs it, which it would refuse had the 3.4 cluster version stayed.
    expect((await served('3.3.25', dir, NAME)).keys).toEqual(data.keys);
  });

  it('one backup covers several steps; a failure in the second puts back the data from before the first', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const data = await makeHistoryData('3.3.25', dir, NAME);
    const before = await treeSnapshot(dir);
    const bin = await fixtureBinDir({
      'etcd-3.5.30': '"$REAL" "$@" &\npid=$!\ntrap \'kill -TERM $pid; wait $pid; exit 1\' TERM\nwait $pid',
    });
    const r = await cli(dir, '3.5.30', [], bin);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr.match(/backup of /g)).toHaveLength(1);
    expect(r.stderr).toMatch(/step 1\/2 upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: [\d.]+ s$/m);
    expect(r.stderr).toContain(
      "restored the data dir from the backup taken before this run's first step: " +
        'it is as it was then (version.txt = 3.3.25/etcd3)',
    );
    // The last line names the version.txt the put-back left, not the last step that completed; etcd's
    // last lines follow it, each on its own line.
    const last = r.stderr.slice(r.stderr.lastIndexOf('etcd-migrate: error: '));
    expect(last).toMatch(
      joinedRegex(
        /; version\.txt says 3\.3\.25\/etcd3; /,
        /the data dir was put back from the backup taken before the run's first step; /,
        /fix the cause and rerun to repeat its steps/,
        /(; its last lines:(\n  etcd-3\.5\.30\| .*)+)?\n?$/,
      ),
    );
    expect(last).not.toContain('3.4.23/etcd3, the last step');
    expect(await treeSnapshot(dir)).toEqual(before);
    expect((await served('3.3.25', dir, NAME)).keys).toEqual(data.keys);
  });

  it('BACKUP_COMPRESSION=zstd: the same data in a smaller backup, which the failed step is undone from', async () => {
    const root = await tmpDir();
    const sizes: Record<string, number> = {};
    for (const codec of ['none', 'zstd']) {
      const dir = path.join(root, `data-${codec}`);
      const data = await makeHistoryData('3.3.25', dir, NAME);
      const before = await treeSnapshot(dir);
      const bin = await fixtureBinDir({
        'etcd-3.4.23': '"$REAL" "$@" &\npid=$!\ntrap \'kill -TERM $pid; wait $pid; exit 1\' TERM\nwait $pid',
      });
      const r = await cli(dir, '3.4.23', [], bin, { BACKUP_COMPRESSION: codec });
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain("restored the data dir from the backup taken before this run's first step");
      expect(await treeSnapshot(dir)).toEqual(before);
      expect((await served('3.3.25', dir, NAME)).keys).toEqual(data.keys);
      const [name] = await fs.readdir(`${dir}.backups`);
      sizes[codec] = (await fs.stat(path.join(`${dir}.backups`, name!))).size;
    }
    // The WAL's records and the db's pages compress; zero blocks cost a byte either way.
    expect(sizes.zstd).toBeLessThan(sizes.none! / 2);
  });

  it('retention keeps the newest N of this data dir and touches nothing else', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    const backups = path.join(root, 'backups');
    await fs.mkdir(backups, { mode: 0o700 });
    const id = backupId(await fs.realpath(dir));
    const old = ['20200101T000000000Z', '20210101T000000000Z', '20220101T000000000Z'].map(
      (s) => `${id}-${s}-3.4.23-etcd3.backup`,
    );
    const others = ['other-0123abcd-20200101T000000000Z-3.4.23-etcd3.backup', 'notes.txt'];
    for (const n of [...old, ...others, `${id}-20230101T000000000Z-3.4.23-etcd3.backup.part`])
      await fs.writeFile(path.join(backups, n), 'x');

    const r = await cli(dir, '3.5.30', ['--backup-dir', backups, '--keep-backups', '2']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed 3 older backup\(s\), keeping 2/);
    const left = (await fs.readdir(backups)).sort();
    const made = left.filter((n) => n.startsWith(id) && !old.includes(n));
    expect(made).toHaveLength(1);
    expect(made[0]).toMatch(/-3\.4\.23-etcd3\.backup$/);
    expect(left).toEqual([...others, old[2]!, made[0]!].sort());
  });

  it('encrypts backups with the key file; restore needs it and gives back the member dir byte for byte', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.5.30', dir, NAME);
    const member = await treeSnapshot(path.join(dir, 'member'));
    const key = path.join(root, 'key');
    await fs.writeFile(key, `${'k'.repeat(20)}${Math.random().toString(36)}${'q'.repeat(20)}\n`, { mode: 0o600 });
    const r = await cli(dir, '3.4.23', ['--backup-encryption-key-file', key]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [file] = await fs.readdir(`${dir}.backups`);
    expect(file).toMatch(/-3\.5\.30-etcd3\.backup\.enc$/);
    const backup = path.join(`${dir}.backups`, file!);
    const bytes = await fs.readFile(backup);
    expect(bytes.subarray(0, 6).toString()).toBe('EMENC\0');
    expect(bytes.includes(Buffer.from('etcd-migrate archive'))).toBe(false);

    const wrong = path.join(root, 'wrong');
    await fs.writeFile(wrong, 'w'.repeat(44), { mode: 0o600 });
    const target = path.join(root, 'restored');
    const bad = await runCli(['restore', backup, '--data-dir', target, '--backup-encryption-key-file', wrong]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/error: .*does not match this file \(wrong key file\); nothing was changed/);
    await expect(fs.stat(target)).rejects.toThrow(/ENOENT/);
    const none = await runCli(['restore', backup, '--data-dir', target]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/is encrypted; pass --backup-encryption-key-file/);

    const good = await runCli(['restore', backup, '--data-dir', target, '--backup-encryption-key-file', key]);
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.stdout).toContain('version.txt: 3.5.30/etcd3');
    expect(await fs.readFile(path.join(target, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
    expect(await treeSnapshot(path.join(target, 'member'))).toEqual(member);
    expect(await fs.readdir(target)).toEqual(['member', 'version.txt']);
  });

  it('refuses a backup dir inside the data dir, also through a symlink, before any change', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    await fs.symlink(path.join(dir, 'member'), path.join(root, 'sneaky'));
    const before = await treeSnapshot(dir);
    for (const b of [path.join(dir, 'backups'), path.join(root, 'sneaky', 'backups')]) {
      const r = await cli(dir, '3.5.30', ['--backup-dir', b]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/error: the backup dir .* is inside the data dir/);
    }
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('refuses before any change when the backup dir cannot hold the backup', async (ctx) => {
    const root = await tmpDir();
    const small = path.join(root, 'small');
    await fs.mkdir(small);
    // A 16 MiB file system: too small for a member dir of ~77 MiB (its WAL is preallocated).
    const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', small], { reject: false });
    if (m.exitCode !== 0)
      ctx.skip(`needs a small file system; mounting a tmpfs is not permitted here (${m.stderr.trim()})`);
    onCleanup(async () => {
      await execa('umount', [small], { reject: false });
    });
    const dir = path.join(root, 'data');
    await makeHistoryData('3.5.30', dir, NAME);
    const before = await treeSnapshot(dir);
    const r = await cli(dir, '3.4.23', ['--backup-dir', path.join(small, 'b')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      joinedRegex(
        /error: not enough free space for step 1 \(downgrade .*\): /,
        /its backup in .*small\/b needs up to [\d.]+ MiB, [\d.]+ MiB is free/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readdir(small)).toEqual([]);
  });

  it("names a backup dir that is a file, or under one, as the backup's problem, before any change", async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    const file = path.join(root, 'not-a-dir');
    await fs.writeFile(file, 'x');
    const before = await treeSnapshot(dir);
    for (const b of [file, path.join(file, 'backups')]) {
      const r = await cli(dir, '3.5.30', ['--backup-dir', b]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        joinedRegex(
          /error: the backup dir .* cannot be made: .*not-a-dir is a file, not a directory; nothing was changed; /,
          /point --backup-dir \(BACKUP_DIR\) at a directory\n?$/,
        ),
      );
      expect(r.stderr).not.toMatch(/step 1\/1/);
    }
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readFile(file, 'utf8')).toBe('x');
  });

  it("a backup dir filling up during the backup: the backup's problem, exit 2, nothing changed", async (ctx) => {
    const root = await tmpDir();
    const full = path.join(root, 'full');
    await fs.mkdir(full);
    // Room in bytes (the space check passes) but no free inode: the backup's first write fails with ENOSPC.
    const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=256m,nr_inodes=1', 'tmpfs', full], { reject: false });
    if (m.exitCode !== 0)
      ctx.skip(`needs a small file system; mounting a tmpfs is not permitted here (${m.stderr.trim()})`);
    onCleanup(async () => {
      await execa('umount', [full], { reject: false });
    });
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    const before = await treeSnapshot(dir);
    const r = await cli(dir, '3.5.30', ['--backup-dir', full]);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      joinedRegex(
        /error: the backup in .*full could not be written: its file system is full \(ENOSPC\); nothing was changed; /,
        /free space there, put --backup-dir \(BACKUP_DIR\) on another disk, or lower --keep-backups\n?$/,
      ),
    );
    expect(r.stderr).not.toMatch(/step 1\/1|etcd 3\.5\.30/);
    expect(await treeSnapshot(dir)).toEqual(before);
    expect(await fs.readdir(full)).toEqual([]);
  });

  it('in a container, refuses a backup dir on its own fs when the data dir is a volume (kubeadm)', async (ctx) => {
    const root = await tmpDir();
    const vol = path.join(root, 'etcd');
    const other = path.join(root, 'backup-volume');
    for (const d of [vol, other]) {
      await fs.mkdir(d);
      const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', d], { reject: false });
      if (m.exitCode !== 0) ctx.skip(`needs a volume; mounting a tmpfs is not permitted here (${m.stderr.trim()})`);
      onCleanup(async () => {
        await execa('umount', [d], { reject: false });
      });
    }
    // The data dir is the volume's mount point; the default <data-dir>.backups is on the root file system.
    const rootDev = (await fs.stat('/')).dev;
    if ((await fs.stat(root)).dev !== rootDev) ctx.skip('the temp dir is not on the root file system here');
    await makeHistoryData('3.4.23', vol, NAME);
    const before = await treeSnapshot(vol);
    const inPod = { container: 'podman' };
    const r = await cli(vol, '3.5.30', [], BIN_DIR, inPod);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      joinedRegex(
        /error: the backup dir .*etcd\.backups is on this container's own file system, /,
        /which vanishes with the container, while the data dir .* is on a volume; nothing was changed; /,
        /set --backup-dir \(BACKUP_DIR\) to a dir on a persistent volume/,
      ),
    );
    expect(await treeSnapshot(vol)).toEqual(before);
    await expect(fs.stat(`${vol}.backups`)).rejects.toThrow(/ENOENT/);
    // A backup dir on a volume of its own is fine.
    const ok = await cli(vol, '3.5.30', ['--backup-dir', path.join(other, 'b')], BIN_DIR, inPod);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await fs.readdir(path.join(other, 'b'))).filter((n) => n.endsWith('.backup'))).toHaveLength(1);
  });
});
