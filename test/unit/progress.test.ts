// The progress reporter, on a clock and a ticker the test moves by hand.
import { describe, expect, it } from 'vitest';
import { bar, LINE_EVERY_MS, progressLine, progressReporter, sharedTerminal, type Ticker } from '../../src/progress.ts';
import type { Extra } from '../../src/log.ts';

/** A clock at `t` and a ticker whose callbacks run when the test advances the clock past them. */
function fakeTime() {
  let t = 1_000_000;
  const timers: Array<{ ms: number; next: number; fn: () => void; stopped: boolean }> = [];
  const ticker: Ticker = (ms, fn) => {
    const timer = { ms, next: t + ms, fn, stopped: false };
    timers.push(timer);
    return () => {
      timer.stopped = true;
    };
  };
  const advance = (ms: number) => {
    const end = t + ms;
    for (;;) {
      const due = timers.filter((x) => !x.stopped && x.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      t = due.next;
      due.next += due.ms;
      due.fn();
    }
    t = end;
  };
  return { now: () => t, ticker, advance, running: () => timers.filter((x) => !x.stopped).length };
}

function logged() {
  const lines: Array<{ line: string; extra?: Extra }> = [];
  return { lines, log: (line: string, extra?: Extra) => lines.push({ line, extra }) };
}

describe('progress as log lines', () => {
  it('logs nothing for work shorter than one interval, and stops its ticker at the end', () => {
    const time = fakeTime();
    const { lines, log } = logged();
    const p = progressReporter({ log, now: time.now, ticker: time.ticker })('attaching TTLs', 100, 'key');
    p.add(50);
    time.advance(LINE_EVERY_MS - 1);
    p.end();
    time.advance(60_000);
    expect(lines).toEqual([]);
    expect(time.running()).toBe(0);
  });

  it('logs a line every interval with how far it is, its figures as fields', () => {
    const time = fakeTime();
    const { lines, log } = logged();
    const p = progressReporter({ log, now: time.now, ticker: time.ticker })('attaching TTLs', 200_000, 'key');
    p.add(45_000);
    time.advance(LINE_EVERY_MS);
    p.set(90_000);
    time.advance(LINE_EVERY_MS);
    p.end();
    expect(lines.map((l) => l.line)).toEqual([
      'attaching TTLs: 45,000 of 200,000 keys (22%), 5 s',
      'attaching TTLs: 90,000 of 200,000 keys (45%), 10 s',
    ]);
    expect(lines[1]!.extra).toEqual({ fields: { done: 90_000, total: 200_000, unit: 'key', seconds: 10 } });
  });
});

describe('progress of work done elsewhere', () => {
  it('asks how far it is at each tick, and says nothing once ended', async () => {
    const time = fakeTime();
    const { lines, log } = logged();
    let written = 3;
    const p = progressReporter({ log, now: time.now, ticker: time.ticker })(
      'etcdctl migrate',
      undefined,
      'MiB',
      async () => written,
    );
    time.advance(LINE_EVERY_MS);
    await Promise.resolve();
    written = 7;
    time.advance(LINE_EVERY_MS);
    p.end();
    await Promise.resolve();
    expect(lines.map((l) => l.line)).toEqual(['etcdctl migrate: 3 MiB, 5 s']);
  });
});

describe('progress as a bar', () => {
  it('draws one line that it rewrites, from its first second, and clears it at the end; the log gets nothing', () => {
    const time = fakeTime();
    const { lines, log } = logged();
    const out: string[] = [];
    const p = progressReporter({
      log,
      now: time.now,
      ticker: time.ticker,
      tty: { write: (s) => out.push(s), columns: 80 },
    })('converting', 10, 'key');
    time.advance(750);
    expect(out).toEqual([]);
    p.set(5);
    time.advance(250);
    p.end();
    expect(out).toEqual(['\rconverting [############------------] 50% 1 s\x1b[K', '\r\x1b[K']);
    expect(lines).toEqual([]);
  });

  it('is 80 columns wide on a terminal that does not say', () => {
    const time = fakeTime();
    const out: string[] = [];
    const p = progressReporter({
      log: () => {},
      now: time.now,
      ticker: time.ticker,
      tty: { write: (s) => out.push(s), columns: 0 },
    })('x'.repeat(100), 1, 'key');
    time.advance(1000);
    p.end();
    expect(out[0]).toBe(`\r${'x'.repeat(79)}\x1b[K`);
  });

  it('clears nothing when it never drew', () => {
    const time = fakeTime();
    const out: string[] = [];
    const p = progressReporter({
      log: () => {},
      now: time.now,
      ticker: time.ticker,
      tty: { write: (s) => out.push(s) },
    })('x', 1, 'key');
    p.end();
    expect(out).toEqual([]);
  });
});

describe('sharedTerminal', () => {
  it('clears a bar before a log line, and only while one is drawn', () => {
    const out: string[] = [];
    const { tty, log } = sharedTerminal({ write: (s) => out.push(s) }, (line) => out.push(`${line}\n`));
    log('first');
    tty.write('\rbar 10%');
    log('second');
    log('third');
    tty.write('\rbar 20%');
    tty.write('\r\x1b[K');
    log('fourth');
    expect(out).toEqual([
      'first\n',
      '\rbar 10%',
      '\r\x1b[K',
      'second\n',
      'third\n',
      '\rbar 20%',
      '\r\x1b[K',
      'fourth\n',
    ]);
  });
});

describe('the texts', () => {
  it('says what is done when there is no total, caps at 100% and fits the terminal', () => {
    expect(progressLine('reading the v2 store', 1234, undefined, 'key', 6400)).toBe(
      'reading the v2 store: 1,234 keys, 6 s',
    );
    expect(progressLine('x', 12, 10, 'key', 0)).toBe('x: 10 of 10 keys (100%), 0 s');
    expect(progressLine('reading', 1, 2048, 'MiB', 0)).toBe('reading: 1 of 2,048 MiB (0%), 0 s');
    expect(bar('attaching TTLs', 1, 4, 'key', 2000, 80)).toBe('attaching TTLs [######------------------] 25% 2 s');
    expect(bar('attaching TTLs', 1, 4, 'key', 2000, 11)).toBe('attaching ');
  });
});
