// The log's JSON records and the --log-format found before the command line is parsed.
import { describe, expect, it } from 'vitest';
import { jsonRecord, logFormatOf } from '../../src/log.ts';

describe('jsonRecord', () => {
  const now = new Date('2026-12-03T19:00:00.000Z');
  it('is one JSON object, info by default, error for an error line without its prefix', () => {
    expect(JSON.parse(jsonRecord('step 1/1 done', now))).toEqual({ level: 'info', ts: '2026-12-03T19:00:00.000Z', caller: 'etcd-migrate', msg: 'step 1/1 done' });
    expect(JSON.parse(jsonRecord('error: no\nits last lines:\n  x', now))).toMatchObject({ level: 'error', msg: 'no\nits last lines:\n  x' });
    expect(JSON.parse(jsonRecord('internal error: bug', now))).toMatchObject({ level: 'error', msg: 'bug' });
    expect(jsonRecord('a\nb', now).includes('\n')).toBe(false);
  });
});

describe('logFormatOf', () => {
  it.each([
    [['--log-format=json'], 'json'],
    [['--data-dir', 'd', '--log-format', 'json'], 'json'],
    [['--log-format=text'], 'text'],
    [[], 'text'],
    [['--', '--log-format=json'], 'text'],
  ] as const)('%j -> %s', (argv, format) => {
    expect(logFormatOf(argv)).toBe(format);
  });
});
