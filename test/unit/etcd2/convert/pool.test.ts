import { describe, expect, it } from 'vitest';
import { batches } from '../../../../src/etcd2/convert/pool.ts';

async function all<T>(g: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

describe('batches', () => {
  it('cuts by count, and by bytes when told: an item bigger than the limit goes alone', async () => {
    expect(await all(batches([1, 2, 3, 4, 5], 2))).toEqual([[1, 2], [3, 4], [5]]);
    const sizes = [3, 3, 3, 10, 1, 1, 4];
    expect(await all(batches(sizes, 100, { bytes: 6, of: (n) => n }))).toEqual([[3, 3], [3], [10], [1, 1, 4]]);
    expect(await all(batches(sizes, 2, { bytes: 6, of: (n) => n }))).toEqual([[3, 3], [3], [10], [1, 1], [4]]);
  });
});
