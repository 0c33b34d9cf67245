// Is an etcd running on a data dir: the locks it holds, as /proc/locks lists them.
import { describe, expect, it } from 'vitest';
import { lockId, lockedIds } from '../../../../src/etcd/process/live.ts';

describe('/proc/locks', () => {
  const text = [
    '1: OFDLCK ADVISORY  WRITE -1 fe:00:2171795 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 18722 fe:00:2171810 0 EOF',
    '3: POSIX  ADVISORY  WRITE 99 103:02:17 0 EOF',
    '4: -> FLOCK  ADVISORY  WRITE 18723 fe:00:5 0 EOF',
  ].join('\n');
  it('lists every locked device:inode', () => {
    expect([...lockedIds(text)]).toEqual(['fe:00:2171795', 'fe:00:2171810', '103:02:17', 'fe:00:5']);
  });
  it.each([
    [0xfe00, 2171810, 'fe:00:2171810'],
    [(0x103 << 8) | 2, 17, '103:02:17'],
    [(1 << 20) | (0x12 << 8) | 0x34, 9, '12:134:9'],
  ])('dev %i inode %i is %s', (dev, ino, id) => {
    expect(lockId(dev, ino)).toBe(id);
  });
});
