// How far long work is: a bar on a terminal, else a log line every few seconds; nothing at all for
// work that ends sooner. The clock and the ticker are passed in, so that tests need not wait.
import { counted, figure, type Log } from './log.ts';

/** Calls `fn` every `ms` until the returned stop is called; the real one never keeps the process up. */
export type Ticker = (ms: number, fn: () => void) => () => void;

export const realTicker: Ticker = (ms, fn) => {
  const t = setInterval(fn, ms);
  t.unref();
  return () => clearInterval(t);
};

/** Progress of bytes is counted in MiB. */
export const MIB = 1 << 20;

/** A log line this often while work lasts (the first after as long: shorter work logs nothing). */
export const LINE_EVERY_MS = 5000;
/** The bar is redrawn this often, from its first second on. */
const BAR_EVERY_MS = 250;
const BAR_AFTER_MS = 1000;
const BAR_WIDTH = 24;

export interface ProgressOptions {
  log: Log;
  /** A terminal (stderr, when the log is text on a TTY): a bar there instead of lines. */
  tty?: Terminal;
  ticker?: Ticker;
  now?: () => number;
}

export interface Terminal {
  write: (text: string) => void;
  /** Its width; none or 0 (a pty that does not say): 80. */
  columns?: number;
}

/**
 * A terminal whose bar a log line clears first, so that the line does not start after the bar's
 * text; the bar is drawn again at its next tick. Returns the terminal for the reporter and the log.
 */
export function sharedTerminal(t: Terminal, log: Log): { tty: Terminal; log: Log } {
  let barShown = false;
  return {
    tty: {
      columns: t.columns,
      write: (text) => {
        barShown = !text.endsWith(CLEAR);
        t.write(text);
      },
    },
    log: (line, extra) => {
      if (barShown) t.write(CLEAR);
      barShown = false;
      log(line, extra);
    },
  };
}

const CLEAR = '\r\x1b[K';

/** What long work tells its reporter: how much is done (`add` or `set`), and when it ends. */
export interface Progress {
  add(n: number): void;
  set(done: number): void;
  end(): void;
}

/**
 * Starts a reporter of the long work `what` ("attaching TTLs"), `total` `unit`s ("key") when known.
 * `poll`: how much is done, asked at each tick, for work done elsewhere (a child writing a file).
 */
export type StartProgress = (what: string, total: number | undefined, unit: string, poll?: Poll) => Progress;

export type Poll = () => Promise<number | undefined>;

export const noProgress: Progress = { add: () => {}, set: () => {}, end: () => {} };

/** The reporter for `o`: a bar when there is a terminal, else lines through the log. */
export function progressReporter(o: ProgressOptions): StartProgress {
  return (what, total, unit, poll) => startProgress({ what, total, unit, poll }, o);
}

interface Work {
  what: string;
  total: number | undefined;
  unit: string;
  poll?: Poll;
}

function startProgress({ what, total, unit, poll }: Work, o: ProgressOptions): Progress {
  const now = o.now ?? Date.now;
  const ticker = o.ticker ?? realTicker;
  const t0 = now();
  let done = 0;
  let drawn = false;
  const tty = o.tty;
  let ended = false;
  const show = tty
    ? () => {
        if (now() - t0 < BAR_AFTER_MS) return;
        // The rest of the line cleared: the bar's text may be shorter than the last one.
        tty.write(`\r${bar(what, done, total, unit, now() - t0, tty.columns || 80)}\x1b[K`);
        drawn = true;
      }
    : () =>
        o.log(progressLine(what, done, total, unit, now() - t0), {
          fields: { done, total, unit, seconds: Math.round((now() - t0) / 1000) },
        });
  const tick = poll
    ? () =>
        void poll().then(
          (n) => {
            if (ended) return;
            if (n !== undefined) done = n;
            show();
          },
          () => {},
        )
    : show;
  const stop = ticker(tty ? BAR_EVERY_MS : LINE_EVERY_MS, tick);
  return {
    add: (n) => {
      done += n;
    },
    set: (n) => {
      done = n;
    },
    end: () => {
      ended = true;
      stop();
      // The bar's line is cleared: the step's own line says what was done.
      if (drawn) tty!.write(CLEAR);
    },
  };
}

/** "attaching TTLs: 45,000 of 100,000 keys (45%), 10 s"; without a total, what is done so far. */
export function progressLine(what: string, done: number, total: number | undefined, unit: string, ms: number): string {
  const secs = `${Math.round(ms / 1000)} s`;
  if (!total) return `${what}: ${amount(done, unit)}, ${secs}`;
  const upTo = figure(Math.round(Math.min(done, total)));
  return `${what}: ${upTo} of ${amount(total, unit)} (${percent(done, total)}%), ${secs}`;
}

/** The bar's text, within `columns`: "attaching TTLs [#########---------] 45% 10 s". */
export function bar(
  what: string,
  done: number,
  total: number | undefined,
  unit: string,
  ms: number,
  columns: number,
): string {
  const secs = `${Math.round(ms / 1000)} s`;
  const text = total
    ? `${what} [${'#'.repeat(Math.round((percent(done, total) / 100) * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}] ` +
      `${percent(done, total)}% ${secs}`
    : `${what}: ${amount(done, unit)}, ${secs}`;
  return text.slice(0, Math.max(0, columns - 1));
}

/** "1,234 keys", "1 key"; a measure ("MiB") stays as it is. */
const amount = (n: number, unit: string): string =>
  /^[KMG]iB$/.test(unit) ? `${figure(Math.round(n))} ${unit}` : counted(Math.round(n), unit);

const percent = (done: number, total: number): number => Math.min(100, Math.floor((done / total) * 100));
