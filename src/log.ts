// Log lines go to stderr, prefixed, one per event. Key values never reach a log line.
import { writeSync } from 'node:fs';

export type Log = (line: string) => void;

/**
 * Written straight to fd 2, before an exec can replace the process: process.stderr on a pipe (a
 * container's stderr) would first load the net and stream modules (~4 ms of every pod start).
 * Anything unusual (a non-blocking pipe that is full, a closed fd) goes through process.stderr.
 */
export const stderrLog: Log = (line) => writeWhole(2, `etcd-migrate: ${line}\n`);

/** All of `text` to fd 1 or 2 with write(2); whatever that cannot take goes through the stream. */
export function writeWhole(fd: 1 | 2, text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(fd, bytes, done);
  } catch {
    (fd === 1 ? process.stdout : process.stderr).write(bytes.subarray(done));
  }
}

export type LogFormat = 'text' | 'json';

/**
 * One record for a log line, shaped like etcd's own (zap's JSON), so one collector reads the
 * entrypoint and the etcd it execs alike. A message with a child's output keeps it in `msg`.
 */
export function jsonRecord(line: string, now: Date): string {
  const m = /^(internal error|error): /.exec(line);
  const level = m ? 'error' : 'info';
  const msg = m ? line.slice(m[0].length) : line;
  return JSON.stringify({ level, ts: now.toISOString(), caller: 'etcd-migrate', msg });
}

/** The log of `format`: text lines as before, or JSON records. */
export function makeLog(format: LogFormat): Log {
  return format === 'json' ? (line) => writeWhole(2, `${jsonRecord(line, new Date())}\n`) : stderrLog;
}

/**
 * The --log-format the command line asks for, found before it is parsed: a refusal of the command
 * line itself is logged in that format too. Flags after `--` are etcd's.
 */
export function logFormatOf(argv: readonly string[]): LogFormat {
  const own = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    const value = a === '--log-format' ? own[i + 1] : a.startsWith('--log-format=') ? a.slice('--log-format='.length) : '';
    if (value === 'json') return 'json';
  }
  return 'text';
}

/** `n` and the noun, singular for 1 ("1 key", "0 keys", "2 keys"). */
export const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "was" or "were" for `n` things. */
export const were = (n: number): string => (n === 1 ? 'was' : 'were');

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
