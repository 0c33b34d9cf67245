// Records every distinct content version.txt takes while a migration runs.
import { promises as fs } from 'node:fs';
import path from 'node:path';

export function watchVersionFile(dataDir: string): { stop: () => Promise<string[]> } {
  const seen: string[] = [];
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const v = await fs.readFile(path.join(dataDir, 'version.txt'), 'utf8').catch(() => '');
      if (v && seen.at(-1) !== v) seen.push(v);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    stop: async () => {
      watching = false;
      await loop;
      return seen;
    },
  };
}
