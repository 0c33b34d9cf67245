// Backup names and retention, as tables.
import { describe, expect, it } from 'vitest';
import { backupId, backupName, listBackups, parseBackupName, stamp, toDelete } from '../../../src/backup/retention.ts';

const V = { version: { major: 3, minor: 4, patch: 23 }, storage: 'etcd3' } as const;
const name = (id: string, s: string, enc = false) => `${id}-${s}-3.4.23-etcd3.backup${enc ? '.enc' : ''}`;

describe('backup names', () => {
  it('round-trip, sort in time order, and differ per data dir', () => {
    const when = new Date('2026-03-04T05:06:07.089Z');
    expect(stamp(when)).toBe('20260304T050607089Z');
    const n = backupName('data-1a2b3c4d', when, V, true);
    expect(n).toBe('data-1a2b3c4d-20260304T050607089Z-3.4.23-etcd3.backup.enc');
    expect(parseBackupName(n)).toEqual({
      id: 'data-1a2b3c4d',
      stamp: '20260304T050607089Z',
      version: '3.4.23/etcd3',
      encrypted: true,
    });
    expect(stamp(new Date('2026-03-04T05:06:07.090Z')) > stamp(when)).toBe(true);
    expect(backupId('/var/etcd/data')).toMatch(/^data-[0-9a-f]{8}$/);
    expect(backupId('/var/etcd/data')).not.toBe(backupId('/other/data'));
    expect(backupId('/var/etcd/data events')).toMatch(/^data_events-/);
  });

  it.each([
    'notes.txt',
    'x-20260304T050607089Z-3.4.23-etcd3.backup.part',
    'x-2026-3.4.23-etcd3.backup',
    'x-20260304T050607089Z-3.4-etcd3.backup',
  ])('does not parse %s', (n) => {
    expect(parseBackupName(n)).toBeUndefined();
  });
});

describe('retention', () => {
  const id = 'data-11111111';
  const mine = ['20240101T000000000Z', '20250101T000000000Z', '20230101T000000000Z', '20260101T000000000Z'].map((s) =>
    name(id, s),
  );
  const theirs = [name('data-22222222', '20200101T000000000Z'), 'notes.txt', 'data-11111111.backup'];

  it.each([
    [1, [mine[1], mine[0], mine[2]]],
    [2, [mine[0], mine[2]]],
    [4, []],
    [10, []],
  ] as const)('keep %i deletes the oldest of this data dir only', (keep, expected) => {
    expect(toDelete([...mine, ...theirs], id, keep)).toEqual(expected);
  });

  it("deletes this data dir's unfinished .part files, never anyone else's", () => {
    const part = `${name(id, '20270101T000000000Z')}.part`;
    const other = `${name('data-22222222', '20270101T000000000Z')}.part`;
    expect(toDelete([part, other, ...mine], id, 10)).toEqual([part]);
  });

  it('counts encrypted and plain backups together', () => {
    const a = name(id, '20240101T000000000Z', true);
    const b = name(id, '20250101T000000000Z');
    expect(toDelete([a, b], id, 1)).toEqual([a]);
    expect(listBackups([a, b, 'x'], id)).toEqual([b, a]);
  });
});
