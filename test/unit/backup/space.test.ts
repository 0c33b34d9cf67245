// The free-space walk: backups written, retention freeing old ones, scratch space per step.
import { describe, expect, it } from 'vitest';
import { backupBound, checkSpace, defaultScratch, human, WAL_SEGMENT } from '../../../src/backup/space.ts';

const MB = 1_000_000;
const step = (backup: number, scratch: number, label = 's') => ({ label, backup, scratch });

describe('checkSpace', () => {
  it('passes when each backup and each step fit', () => {
    expect(
      checkSpace({
        dataFree: 300 * MB,
        backupFree: 300 * MB,
        sameFs: false,
        existing: [],
        keep: 3,
        steps: [step(100 * MB, 200 * MB), step(100 * MB, 200 * MB)],
      }),
    ).toEqual({ ok: true });
  });

  it('names the step whose backup does not fit, with need and free', () => {
    const v = checkSpace({
      dataFree: 1e12,
      backupFree: 150 * MB,
      sameFs: false,
      existing: [],
      keep: 3,
      steps: [step(100 * MB, 0, 'one'), step(100 * MB, 0, 'two')],
    });
    expect(v).toEqual({ ok: false, step: 1, label: 'two', what: 'backup', need: 100 * MB, free: 50 * MB });
  });

  it('counts the space retention frees only after the new backup is written', () => {
    const base = {
      dataFree: 1e12,
      sameFs: false,
      existing: [100 * MB, 100 * MB],
      steps: [step(100 * MB, 0), step(100 * MB, 0)],
    };
    // keep 1: each new backup needs room while the old one still exists, then the old ones go.
    expect(checkSpace({ ...base, backupFree: 100 * MB, keep: 1 }).ok).toBe(true);
    expect(checkSpace({ ...base, backupFree: 99 * MB, keep: 1 }).ok).toBe(false);
    // keep 3: nothing is freed by the second step's turn, so two new backups must fit.
    expect(checkSpace({ ...base, backupFree: 150 * MB, keep: 3 })).toMatchObject({
      ok: false,
      step: 1,
      what: 'backup',
    });
  });

  it("on one file system, the backups kept so far eat into the steps' scratch space", () => {
    const p = {
      dataFree: 300 * MB,
      backupFree: 300 * MB,
      existing: [],
      keep: 3,
      steps: [step(100 * MB, 150 * MB), step(100 * MB, 150 * MB)],
    };
    expect(checkSpace({ ...p, sameFs: false }).ok).toBe(true);
    expect(checkSpace({ ...p, sameFs: true })).toEqual({
      ok: false,
      step: 1,
      label: 's',
      what: 'scratch',
      need: 150 * MB,
      free: 100 * MB,
    });
  });

  it('frees what retention drops only after the step that made the backup (a refusal keeps the older backups)', () => {
    const p = { dataFree: 250 * MB, backupFree: 250 * MB, sameFs: true, existing: [100 * MB], keep: 1 };
    expect(checkSpace({ ...p, steps: [step(100 * MB, 150 * MB)] }).ok).toBe(true);
    expect(checkSpace({ ...p, steps: [step(100 * MB, 200 * MB)] })).toEqual({
      ok: false,
      step: 0,
      label: 's',
      what: 'scratch',
      need: 200 * MB,
      free: 150 * MB,
    });
    // The second step runs after retention: the older backup is gone by then.
    expect(checkSpace({ ...p, steps: [step(100 * MB, 150 * MB), step(0, 150 * MB)] }).ok).toBe(true);
  });

  it('bounds a backup above the member size and gives rebuilds room for a second member dir', () => {
    const s = { member: 500 * MB, db: 400 * MB };
    expect(backupBound(s)).toBeGreaterThan(s.member);
    expect(backupBound(s)).toBeLessThan(s.member * 1.01 + 2 * MB);
    expect(defaultScratch('rebuild', s)).toBe(2 * s.member + WAL_SEGMENT);
    expect(defaultScratch('in-place', s)).toBe(s.member + WAL_SEGMENT);
    expect(human(1536)).toBe('1.5 KiB');
    expect(human(3 * 1024 ** 3)).toBe('3.0 GiB');
  });
});
