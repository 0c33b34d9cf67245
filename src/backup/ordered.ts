// Runs async jobs a few at a time and hands their results back in order: a backup's blocks are read
// and hashed side by side, and written in sequence.

/** Results of `fn` over `items`, in order, with at most `limit` jobs started and not yet taken. */
export async function* mapOrdered<T, R>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const queue: Array<Promise<R>> = [];
  const it = items[Symbol.iterator]();
  const fill = (): void => {
    while (queue.length < limit) {
      const n = it.next();
      if (n.done) return;
      const p = fn(n.value);
      // A job that fails before its turn must not count as an unhandled rejection meanwhile.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  try {
    fill();
    while (queue.length > 0) {
      const r = await queue.shift()!;
      fill();
      yield r;
    }
  } finally {
    // Stopped early (an error, or the consumer left): the jobs still running are awaited, so none
    // touches a file handle after its owner closed it.
    await Promise.allSettled(queue);
  }
}

/** 0, 1, ..., n - 1. */
export function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}
