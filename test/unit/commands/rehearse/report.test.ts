// The rehearsal's verdict and its text: pure functions.
import { describe, expect, it } from 'vitest';
import { formatReport, judge, type Census, type Report } from '../../../../src/commands/rehearse/report.ts';

const c = (o: Partial<Extract<Census, { etcd: string }>>): Census => ({
  etcd: '3.5.30',
  storage: 'etcd3',
  seconds: 0.2,
  ...o,
});

describe('judge', () => {
  it.each([
    [c({ v3Keys: 5 }), c({ v3Keys: 5, v3Leases: 1 }), 'ok'],
    [c({ v3Keys: 5 }), c({ v3Keys: 4 }), 'mismatch'],
    [c({ storage: 'etcd2', v2Keys: 7, v2KeysWithTtl: 2 }), c({ v3Keys: 7 }), 'ok'],
    [c({ storage: 'etcd2', v2Keys: 7 }), c({ v3Keys: 6 }), 'mismatch'],
    [c({ v3Keys: 3 }), c({ storage: 'etcd2', v2Keys: 3 }), 'ok'],
    [{ skipped: 'no etcd 3.3.x is bundled' }, c({ v3Keys: 3 }), 'ok'],
    [{ skipped: 'no data' }, { skipped: 'no data' }, 'ok'],
  ] as Array<[Census, Census, string]>)('%j then %j: %s', (before, after, result) => {
    expect(judge(before, after, '3.5.30').result).toBe(result);
  });

  it('names both counts on a mismatch', () => {
    expect(judge(c({ v3Keys: 5 }), c({ v3Keys: 4 }), '3.5.30').message).toMatch(
      /^5 keys before the migration, 4 after/,
    );
  });
});

describe('formatReport', () => {
  const base: Report = {
    from: '3.3.25/etcd3',
    target: '3.5.30/etcd3',
    plan: ['upgrade a', 'upgrade b'],
    before: c({ etcd: '3.3.25', v3Keys: 23 }),
    steps: [{ description: 'upgrade a', seconds: 0.17 }],
    after: { skipped: 'not reached' },
    result: 'failed',
    failedAt: 'migrate',
    message: 'etcd 3.5.30 did not commit a write',
    migrateSeconds: 0.5,
    host: {
      source: '/d',
      copy: '/t/data',
      kept: false,
      bytes: 64 * 1048576,
      copySeconds: 0.04,
      engine: 'podman',
      image: 'img',
      imageId: 'sha256:0123456789abcdef',
    },
  };
  it('shows each step with its time, the failed one, the counts and the result', () => {
    const t = formatReport(base);
    expect(t).toContain('copied 64.0 MiB in 0.04 s to /t/data (removed afterwards)');
    expect(t).toContain('ran in: podman, image img (0123456789ab)');
    expect(t).toContain('  1. upgrade a  [0.17 s]');
    expect(t).toContain('  2. upgrade b  [FAILED]');
    expect(t).toContain('before: etcd 3.3.25, etcd3: 23 v3 keys; 0.20 s');
    expect(t).toContain('result: failed: etcd 3.5.30 did not commit a write');
  });
  it('says "refused" for a plan that was refused, and "not run" for steps after a failure elsewhere', () => {
    expect(formatReport({ ...base, failedAt: 'plan', plan: [] })).toContain(
      'plan: 3.3.25/etcd3 -> 3.5.30/etcd3: refused',
    );
    expect(formatReport({ ...base, failedAt: 'after', steps: [] })).toContain('  1. upgrade a  [not run]');
    expect(formatReport({ ...base, failedAt: 'container', plan: [] })).toContain(
      'plan: not made: the container did not run the rehearsal',
    );
  });
});
