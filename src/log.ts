// Log lines go to stderr, prefixed, one per event. Key values never reach a log line.
import { writeSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

/** A line's key figures, beside `msg` in a JSON record as zap's fields are: counts, names, seconds; never values. */
export type Fields = Readonly<Record<string, string | number | boolean | undefined>>;

/** What a call may add to its line: a level other than the line's own, and its key figures. */
export interface Extra {
  level?: Level;
  fields?: Fields;
}

export type Log = (line: string, extra?: Extra) => void;

/** A debug line: the reasoning and the figures behind an info line, shown with --log-level debug. */
export const debug = (log: Log, line: string, fields?: Fields): void => log(line, { level: 'debug', fields });

/** A line given as an error ("error: ...", "internal error: ..."): its level and its text without the prefix. */
function parsed(line: string, extra: Extra | undefined): { level: Level; msg: string } {
  const m = /^(internal error|error): /.exec(line);
  if (m) return { level: 'error', msg: line.slice(m[0].length) };
  return { level: extra?.level ?? 'info', msg: line };
}

/** Written before a text line of a level other than info and error (whose line says "error:" itself). */
const LABEL: Record<Level, string> = { debug: 'debug: ', info: '', warn: 'warning: ', error: '' };

/** The text line: the prefix, then the line whole; a child's output in it stays on its own indented lines. */
export function textLine(line: string, extra?: Extra): string {
  return `etcd-migrate: ${LABEL[parsed(line, extra).level]}${line}\n`;
}

/** Names a record's own keys take: a field of the same name is written with a `_` after it. */
const RESERVED = new Set(['level', 'ts', 'caller', 'msg']);

/**
 * One record for a log line, shaped like etcd's own (zap's JSON): level, ts, caller, msg, then the
 * line's fields, so one collector reads the entrypoint and the etcd it execs alike. A message with a
 * child's output keeps it in `msg`.
 */
export function jsonRecord(line: string, now: Date, extra?: Extra): string {
  const { level, msg } = parsed(line, extra);
  const record: Record<string, unknown> = { level, ts: now.toISOString(), caller: 'etcd-migrate', msg };
  for (const [k, v] of Object.entries(extra?.fields ?? {})) {
    if (v !== undefined) record[RESERVED.has(k) ? `${k}_` : k] = v;
  }
  return JSON.stringify(record);
}

export type LogFormat = 'text' | 'json';

export interface LogSettings {
  format: LogFormat;
  /** The lowest level written: below it, lines are dropped. */
  level: Level;
}

/** Where a log writes and what time it stamps: fd 2 and the clock, or a test's. */
export interface LogSink {
  write: (text: string) => void;
  now: () => Date;
}

/**
 * Written straight to fd 2, before an exec can replace the process: process.stderr on a pipe (a
 * container's stderr) would first load the net and stream modules (~4 ms of every pod start).
 */
const STDERR: LogSink = { write: (text) => writeWhole(2, text), now: () => new Date() };

/** The log of `settings`: text lines or JSON records, each whole in one write, below the level dropped. */
export function makeLog(settings: LogSettings, sink: LogSink = STDERR): Log {
  const least = LEVELS.indexOf(settings.level);
  return (line, extra) => {
    if (LEVELS.indexOf(parsed(line, extra).level) < least) return;
    sink.write(settings.format === 'json' ? `${jsonRecord(line, sink.now(), extra)}\n` : textLine(line, extra));
  };
}

/** Text lines at info and above: the default. */
export const stderrLog: Log = makeLog({ format: 'text', level: 'info' });

/**
 * All of `text` to fd 1 or 2 with write(2); whatever that cannot take (a non-blocking pipe that is
 * full, a closed fd) goes through the stream.
 */
export function writeWhole(fd: 1 | 2, text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(fd, bytes, done);
  } catch {
    (fd === 1 ? process.stdout : process.stderr).write(bytes.subarray(done));
  }
}

/** The value of `--flag` in `argv` (`--flag v` or `--flag=v`, the last one given); flags after `--` are etcd's. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  const own = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  let value: string | undefined;
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (a === flag) value = own[i + 1];
    else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
  }
  return value;
}

/**
 * The --log-format the command line asks for, found before it is parsed: a refusal of the command
 * line itself is logged in that format too.
 */
export function logFormatOf(argv: readonly string[]): LogFormat {
  return flagValue(argv, '--log-format') === 'json' ? 'json' : 'text';
}

const isLevel = (v: string | undefined): v is Level => LEVELS.includes(v as Level);

/**
 * The log settings of a command line and environment (--log-level, else LOG_LEVEL), found before
 * the command line is parsed. `bad`: a level that is none, which the caller refuses in that log.
 */
export function logSettingsOf(argv: readonly string[], env: NodeJS.ProcessEnv): LogSettings & { bad?: string } {
  const flag = flagValue(argv, '--log-level');
  const asked = flag ?? env.LOG_LEVEL;
  const format = logFormatOf(argv);
  if (asked === undefined || asked === '' || isLevel(asked)) return { format, level: isLevel(asked) ? asked : 'info' };
  const how = flag === undefined ? `LOG_LEVEL=${asked}` : `--log-level ${asked}`;
  return { format, level: 'info', bad: `${how} is not a level: use debug, info, warn or error` };
}

/**
 * A child process's output lines inside one of ours: each on its own line, indented and prefixed
 * with the child's name (`  etcd-3.5.30| ...`), so no line of it reads as the entrypoint's.
 */
export function childLines(name: string, lines: readonly string[]): string {
  return lines.map((l) => `\n  ${name}| ${l}`).join('');
}

/** A failed child's last lines, for the end of an error: "; its last lines:" and childLines(), or nothing. */
export const lastLines = (name: string, lines: readonly string[]): string =>
  lines.length ? `; its last lines:${childLines(name, lines)}` : '';

/** `n` and the noun, singular for 1 ("1 key", "0 keys", "2 keys"). */
export const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** `n` with thousands grouped ("6,061"), for the short lines a reader takes in at a glance. */
export const figure = (n: number): string => n.toLocaleString('en-US');

/** count() with thousands grouped: "6,061 keys". */
export const counted = (n: number, one: string, many = `${one}s`): string => `${figure(n)} ${n === 1 ? one : many}`;

/** "was" or "were" for `n` things. */
export const were = (n: number): string => (n === 1 ? 'was' : 'were');

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Seconds as a field's number, to the hundredth as seconds() writes them. */
export const secondsField = (ms: number): number => Math.round(ms / 10) / 100;
