// What a command must undo when SIGINT or SIGTERM ends it: cli.ts runs these hooks, bounded in
// time, before it exits. A command registers one while it holds files no one else may see.
const hooks = new Set<() => Promise<void>>();

/** Registers `fn` for an interrupt; returns the function that unregisters it. */
export function onInterrupt(fn: () => Promise<void>): () => void {
  hooks.add(fn);
  return () => {
    hooks.delete(fn);
  };
}

/** Runs every registered hook (each once), waiting at most `ms`. */
export async function runInterruptHooks(ms: number): Promise<void> {
  const all = [...hooks];
  hooks.clear();
  if (!all.length) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(all.map((f) => f())),
    new Promise((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}
