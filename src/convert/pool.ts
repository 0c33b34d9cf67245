// Runs an async task per item with at most `limit` in flight; the first failure stops the intake
// and is thrown once the tasks in flight have settled.

export async function forEachConcurrent<T>(items: AsyncIterable<T> | Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for await (const item of items) {
    if (failure) break;
    const p: Promise<void> = task(item).catch((error: unknown) => { failure ??= { error }; }).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
}

/** Groups items into arrays of up to `size`. */
export async function* batches<T>(items: AsyncIterable<T> | Iterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}
