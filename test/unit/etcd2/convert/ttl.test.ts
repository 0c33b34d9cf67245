import { describe, expect, it } from 'vitest';
import { expired, leaseTtl, ttlAtGrant } from '../../../../src/etcd2/convert/ttl.ts';
import { batches, forEachConcurrent } from '../../../../src/etcd2/convert/pool.ts';

describe('lease TTLs', () => {
  const now = 1_000_000_000;
  it('groups keys by the whole seconds left, rounded down, at least 1', () => {
    expect(leaseTtl(now + 3_600_000, now)).toBe(3600);
    expect(leaseTtl(now + 3_600_999, now)).toBe(3600);
    expect(leaseTtl(now + 3_601_000, now)).toBe(3601);
    expect(leaseTtl(now + 200, now)).toBe(1);
  });
  it('a lease ends at most 1 s before the key would have, when granted as planned', () => {
    for (const left of [1000, 1500, 2999, 86_400_123]) {
      const ends = now + leaseTtl(now + left, now) * 1000;
      expect(now + left - ends).toBeGreaterThanOrEqual(0);
      expect(now + left - ends).toBeLessThan(1000);
    }
  });
  it('takes off the whole seconds gone between plan and grant', () => {
    expect(ttlAtGrant(60, now, now + 400)).toBe(60);
    expect(ttlAtGrant(60, now, now + 2600)).toBe(57);
    expect(ttlAtGrant(2, now, now + 5000)).toBe(1);
  });
  it('a key due now has expired', () => {
    expect(expired(now, now)).toBe(true);
    expect(expired(now + 1, now)).toBe(false);
  });
});

describe('pool', () => {
  it('runs every item, at most `limit` at once, and batches', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachConcurrent(batches([1, 2, 3, 4, 5, 6, 7], 3), 2, async (b) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(...b);
      running--;
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(2);
  });
  it('throws the first failure after the tasks in flight settle', async () => {
    const done: number[] = [];
    await expect(
      forEachConcurrent([1, 2, 3, 4], 2, async (i) => {
        if (i === 2) throw new Error('two');
        await new Promise((r) => setTimeout(r, 5));
        done.push(i);
      }),
    ).rejects.toThrow('two');
    expect(done).toContain(1);
  });
});
