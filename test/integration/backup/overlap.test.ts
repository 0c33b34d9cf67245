// The run's backup and a step, as the executor orders them (src/backup/guard.ts): a step starts
// only once the backup is written and verified, but a rebuild step that asks for it (which only
// reads the live member dir until its swap, and leaves a core idle) starts beside the backup, and
// what it calls before changing the live data waits for the backup. A backup that fails stops the
// rebuild step before its swap, with the backup's own error. Real files, no etcd: the step is a
// function.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackupGuard } from '../../../src/backup/guard.ts';
import { resolveOptions } from '../../../src/options.ts';
import type { Step } from '../../../src/plan.ts';
import { parseVersion } from '../../../src/version.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const DOWNGRADE: Step = {
  kind: 'downgrade',
  from: { version: parseVersion('3.5.30'), storage: 'etcd3' },
  to: { version: parseVersion('3.4.23'), storage: 'etcd3' },
  snapshotWith: parseVersion('3.5.30'),
};
const BESIDE = { mode: 'rebuild', backupBeside: true } as const;
const UPGRADE: Step = {
  kind: 'upgrade',
  from: { version: parseVersion('3.4.23'), storage: 'etcd3' },
  to: { version: parseVersion('3.5.30'), storage: 'etcd3' },
};

async function guardFor(step: Step) {
  const root = await tmpDir();
  const dataDir = path.join(root, 'data');
  await fs.mkdir(path.join(dataDir, 'member', 'snap'), { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(dataDir, 'member', 'snap', 'db'), Buffer.alloc(8 << 20, 1));
  await fs.writeFile(path.join(dataDir, 'version.txt'), '3.5.30/etcd3');
  const backupDir = path.join(root, 'backups');
  const opts = resolveOptions(
    { dataDir, targetVersion: '3.4.23', binDir: '/nonexistent', backupDir },
    {},
    { hostname: 'h' },
  );
  const guard = await BackupGuard.prepare(opts, [step], () => {});
  const done = async () => (await fs.readdir(backupDir).catch(() => [])).filter((n) => n.endsWith('.backup'));
  return { guard, dataDir, done };
}

describe("the run's backup beside the first step", () => {
  it('an in-place step starts after the backup is verified', async () => {
    const { guard, done } = await guardFor(UPGRADE);
    const seen = await guard.around(UPGRADE, { mode: 'in-place' }, async () => done());
    expect(seen).toHaveLength(1);
  });

  it('a rebuild step without backupBeside (a conversion: both cores busy) starts after the backup too', async () => {
    const { guard, done } = await guardFor(DOWNGRADE);
    const seen = await guard.around(DOWNGRADE, { mode: 'rebuild' }, async () => done());
    expect(seen).toHaveLength(1);
  });

  it('a rebuild step with backupBeside (a downgrade) starts at once; pre-swap calls wait for the backup', async () => {
    const { guard, done } = await guardFor(DOWNGRADE);
    const seen = await guard.around(DOWNGRADE, BESIDE, async (backedUp) => {
      const atStart = await done();
      await backedUp();
      return { atStart, atSwap: await done() };
    });
    expect(seen.atStart).toEqual([]);
    expect(seen.atSwap).toHaveLength(1);
  });

  it("a backup that fails stops a rebuild step before its swap, with the backup's error", async () => {
    const { guard, dataDir } = await guardFor(DOWNGRADE);
    // A member dir holds only files and directories: a backup refuses anything else.
    await fs.symlink('/etc/hostname', path.join(dataDir, 'member', 'odd'));
    let swapped = false;
    await expect(
      guard.around(DOWNGRADE, BESIDE, async (backedUp) => {
        await backedUp();
        swapped = true;
      }),
    ).rejects.toThrow(/neither a file nor a directory/);
    expect(swapped).toBe(false);
    expect(existsSync(path.join(dataDir, 'member', 'snap', 'db'))).toBe(true);
  });
});
