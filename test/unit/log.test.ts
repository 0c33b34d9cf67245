// The log: its levels, JSON records with fields, the settings found before the command line is parsed.
import { describe, expect, it } from 'vitest';
import {
  childLines,
  counted,
  debug,
  jsonRecord,
  logFormatOf,
  logSettingsOf,
  makeLog,
  textLine,
  type LogSettings,
} from '../../src/log.ts';

const now = new Date('2026-12-03T19:00:00.000Z');

/** A log of `settings` into an array, stamped with a fixed time. */
function capture(settings: LogSettings) {
  const out: string[] = [];
  return { out, log: makeLog(settings, { write: (t) => out.push(t), now: () => now }) };
}

describe('jsonRecord', () => {
  it('is one JSON object, info by default, error for an error line without its prefix', () => {
    expect(JSON.parse(jsonRecord('step 1/1 done', now))).toEqual({
      level: 'info',
      ts: '2026-12-03T19:00:00.000Z',
      caller: 'etcd-migrate',
      msg: 'step 1/1 done',
    });
    expect(JSON.parse(jsonRecord('error: no\nits last lines:\n  x', now))).toMatchObject({
      level: 'error',
      msg: 'no\nits last lines:\n  x',
    });
    expect(JSON.parse(jsonRecord('internal error: bug', now))).toMatchObject({ level: 'error', msg: 'bug' });
    expect(jsonRecord('a\nb', now).includes('\n')).toBe(false);
  });

  it('writes the fields after msg as zap does, in their order; a field named like a record key gets a _', () => {
    const r = jsonRecord('step 1/3 convert', now, {
      fields: { step: 1, steps: 3, keys: 6061, from: '3.3.25/etcd2', no: undefined, msg: 'x' },
    });
    expect(Object.keys(JSON.parse(r))).toEqual([
      'level',
      'ts',
      'caller',
      'msg',
      'step',
      'steps',
      'keys',
      'from',
      'msg_',
    ]);
    expect(JSON.parse(r)).toMatchObject({ msg: 'step 1/3 convert', keys: 6061, from: '3.3.25/etcd2', msg_: 'x' });
  });

  it('takes the level given, unless the line says it is an error', () => {
    expect(JSON.parse(jsonRecord('why', now, { level: 'debug' })).level).toBe('debug');
    expect(JSON.parse(jsonRecord('error: no', now, { level: 'debug' })).level).toBe('error');
  });
});

describe('textLine', () => {
  it('prefixes every line; debug and warn lines say their level, info and error lines as given', () => {
    expect(textLine('step 1/1 done')).toBe('etcd-migrate: step 1/1 done\n');
    expect(textLine('why', { level: 'debug', fields: { keys: 1 } })).toBe('etcd-migrate: debug: why\n');
    expect(textLine('odd', { level: 'warn' })).toBe('etcd-migrate: warning: odd\n');
    expect(textLine('error: no')).toBe('etcd-migrate: error: no\n');
  });
});

describe('makeLog', () => {
  it('drops the lines below its level and keeps the rest, each in one write', () => {
    const { out, log } = capture({ format: 'text', level: 'info' });
    debug(log, 'the reasoning');
    log('step 1/1 done');
    log('odd', { level: 'warn' });
    log('error: no');
    expect(out).toEqual(['etcd-migrate: step 1/1 done\n', 'etcd-migrate: warning: odd\n', 'etcd-migrate: error: no\n']);
  });

  it.each([
    ['debug', 4],
    ['info', 3],
    ['warn', 2],
    ['error', 1],
  ] as const)('at %s writes %i of the four levels', (level, n) => {
    const { out, log } = capture({ format: 'json', level });
    for (const l of ['debug', 'info', 'warn', 'error'] as const) log(`a ${l} line`, { level: l });
    expect(out).toHaveLength(n);
    expect(out.every((r) => r.endsWith('}\n') && r.indexOf('\n') === r.length - 1)).toBe(true);
    expect(JSON.parse(out.at(-1)!)).toMatchObject({ level: 'error', msg: 'a error line' });
  });

  it('writes the fields of a JSON record and none in text', () => {
    const json = capture({ format: 'json', level: 'info' });
    json.log('step 1/3 done', { fields: { step: 1, keys: 6061, seconds: 0.43 } });
    expect(JSON.parse(json.out[0]!)).toEqual({
      level: 'info',
      ts: now.toISOString(),
      caller: 'etcd-migrate',
      msg: 'step 1/3 done',
      step: 1,
      keys: 6061,
      seconds: 0.43,
    });
    const text = capture({ format: 'text', level: 'info' });
    text.log('step 1/3 done', { fields: { step: 1 } });
    expect(text.out).toEqual(['etcd-migrate: step 1/3 done\n']);
  });
});

describe('logFormatOf', () => {
  it.each([
    [['--log-format=json'], 'json'],
    [['--data-dir', 'd', '--log-format', 'json'], 'json'],
    [['--log-format=text'], 'text'],
    [['--log-format=json', '--log-format=text'], 'text'],
    [[], 'text'],
    [['--', '--log-format=json'], 'text'],
  ] as const)('%j -> %s', (argv, format) => {
    expect(logFormatOf(argv)).toBe(format);
  });
});

describe('logSettingsOf', () => {
  it.each([
    [[], {}, 'info'],
    [['--log-level', 'debug'], {}, 'debug'],
    [['--log-level=warn'], { LOG_LEVEL: 'debug' }, 'warn'],
    [['backup', 'f'], { LOG_LEVEL: 'error' }, 'error'],
    [[], { LOG_LEVEL: '' }, 'info'],
    [['--', '--log-level=debug'], {}, 'info'],
  ] as const)('%j %j -> %s', (argv, env, level) => {
    expect(logSettingsOf(argv, env)).toEqual({ format: 'text', level });
  });

  it('names a level that is none, from the flag or the variable, and logs at info meanwhile', () => {
    expect(logSettingsOf(['--log-level', 'verbose', '--log-format=json'], {})).toEqual({
      format: 'json',
      level: 'info',
      bad: '--log-level verbose is not a level: use debug, info, warn or error',
    });
    expect(logSettingsOf([], { LOG_LEVEL: 'INFO' }).bad).toBe(
      'LOG_LEVEL=INFO is not a level: use debug, info, warn or error',
    );
  });
});

describe('childLines', () => {
  it('puts each line of a child on its own line, indented and named', () => {
    expect(`failed${childLines('etcd-3.5.30', ['a', 'b'])}`).toBe('failed\n  etcd-3.5.30| a\n  etcd-3.5.30| b');
    expect(childLines('etcd-3.5.30', [])).toBe('');
  });
});

describe('counted', () => {
  it('groups thousands', () => {
    expect(counted(6061, 'key')).toBe('6,061 keys');
    expect(counted(1, 'key')).toBe('1 key');
    expect(counted(1_000_000, 'TTL')).toBe('1,000,000 TTLs');
  });
});
