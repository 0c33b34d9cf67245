// A spill file: one line per key, written once and read back in order, so that per-key facts
// (a key's expiry, its digest, its value) never have to sit in memory all at once.
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import readline from 'node:readline';

export class SpillWriter {
  private readonly out: WriteStream;
  lines = 0;
  /**
   * Up to 1 MiB waits in memory before a write waits for the disk: with 16 KiB (the default), the
   * transformer waited every ~40 lines of TTL keys with their values, and migrate on it (BENCHMARKS.md).
   */
  constructor(file: string) {
    this.out = createWriteStream(file, { mode: 0o600, highWaterMark: 1 << 20 });
  }

  /** Appends a line (no newline inside); waits when the disk is behind. */
  async write(fields: ReadonlyArray<string | number>): Promise<void> {
    this.lines++;
    if (!this.out.write(`${fields.join('\t')}\n`)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }
}

/** The lines of a spill file, each split into its fields. */
export async function* readSpill(file: string): AsyncGenerator<string[]> {
  const rl = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) if (line) yield line.split('\t');
}
