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

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
