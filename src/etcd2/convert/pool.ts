// Runs an async task per item with at most `limit` in flight; the first failure stops the intake
// and is thrown once the tasks in flight have settled.

export async function forEachConcurrent<T>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for await (const item of items) {
    if (failure) break;
    const p: Promise<void> = task(item)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
}

/** A cap on the bytes of a batch: `of` gives an item's; an item bigger than `bytes` goes alone. */
export interface ByteLimit<T> {
  bytes: number;
  of: (item: T) => number;
}

/** Groups items into arrays of up to `size` items and, with `limit`, up to `limit.bytes` bytes. */
export async function* batches<T>(
  items: AsyncIterable<T> | Iterable<T>,
  size: number,
  limit?: ByteLimit<T>,
): AsyncGenerator<T[]> {
  let batch: T[] = [];
  let bytes = 0;
  for await (const item of items) {
    const b = limit ? limit.of(item) : 0;
    if (limit && batch.length && bytes + b > limit.bytes) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += b;
    if (batch.length >= size) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length) yield batch;
}
