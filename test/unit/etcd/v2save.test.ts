import { describe, expect, it } from 'vitest';
import { withoutFlag } from '../../../src/etcd/v2save.ts';

describe('withoutFlag', () => {
  it('leaves out a flag in each of its spellings, with its value, and keeps the rest', () => {
    const args = ['--cert-file=/c', '--snapshot-count=10000', '-snapshot-count', '5', '--snapshot-count', '7', '--key-file', '/k', '-snapshot-count=3'];
    expect(withoutFlag(args, '--snapshot-count')).toEqual(['--cert-file=/c', '--key-file', '/k']);
  });
});
