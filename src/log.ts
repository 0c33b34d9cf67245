// Log lines go to stderr, prefixed, one per event. Key values never reach a log line.
import { writeSync } from 'node:fs';

export type Log = (line: string) => void;

/**
 * Written straight to fd 2, before an exec can replace the process: process.stderr on a pipe (a
 * container's stderr) would first load the net and stream modules (~4 ms of every pod start).
 * Anything unusual (a non-blocking pipe that is full, a closed fd) goes through process.stderr.
 */
export const stderrLog: Log = (line) => {
  const bytes = Buffer.from(`etcd-migrate: ${line}\n`);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(2, bytes, done);
  } catch {
    process.stderr.write(bytes.subarray(done));
  }
};

/** `n` and the noun, singular for 1 ("1 key", "0 keys", "2 keys"). */
export const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "was" or "were" for `n` things. */
export const were = (n: number): string => (n === 1 ? 'was' : 'were');

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
