// Issue 16, item 10: backups on a container's own file system vanish with it; the example static
// pods keep theirs on the data's volume.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupVanishes } from '../../../src/backup/place.ts';
import { readManifest } from '../../helpers/image.ts';

describe('backupVanishes', () => {
  it('is true only in a container, with the backup dir on its root file system and the data dir on another', () => {
    expect(backupVanishes(true, { root: 1, data: 2, backup: 1 })).toBe(true);
    expect(backupVanishes(true, { root: 1, data: 2, backup: 2 })).toBe(false);
    expect(backupVanishes(true, { root: 1, data: 2, backup: 3 })).toBe(false);
    // No volume at all: the data goes with the container too; nothing to tell apart.
    expect(backupVanishes(true, { root: 1, data: 1, backup: 1 })).toBe(false);
    // A host's root file system persists.
    expect(backupVanishes(false, { root: 1, data: 2, backup: 1 })).toBe(false);
  });
});

describe('the example static pods', () => {
  for (const file of ['etcd-upgrade.yaml', 'etcd-rollback.yaml']) {
    it(`${file} sets BACKUP_DIR on the volume, outside the data dir`, async () => {
      const m = await readManifest(file);
      const backup = m.env.BACKUP_DIR;
      expect(backup, 'BACKUP_DIR').toBeDefined();
      expect(path.relative(m.mountPath, backup!).startsWith('..')).toBe(false);
      expect(path.relative(m.env.DATA_DIRECTORY!, backup!).startsWith('..')).toBe(true);
    });
  }
});
