// An etcd running on a data dir: the locks it holds, as /proc/locks lists them.
import { describe, expect, it } from 'vitest';
import { devName, procLocks } from '../../../../src/etcd/process/running.ts';

describe('/proc/locks', () => {
  const text = [
    '1: OFDLCK ADVISORY  WRITE -1 fe:00:2171795 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 18722 fe:00:2171810 0 EOF',
    '3: POSIX  ADVISORY  WRITE 99 103:02:17 0 EOF',
    '4: -> FLOCK  ADVISORY  WRITE 18723 fe:00:5 0 EOF',
    'not a lock line',
  ].join('\n');
  it('lists every locked device:inode, with the PID when there is one', () => {
    expect(procLocks(text)).toEqual([
      { id: 'fe:00:2171795' },
      { id: 'fe:00:2171810', pid: 18722 },
      { id: '103:02:17', pid: 99 },
      { id: 'fe:00:5', pid: 18723 },
    ]);
  });
  it.each([
    [0xfe00, 'fe:00'],
    [(0x103 << 8) | 2, '103:02'],
    [(1 << 20) | (0x12 << 8) | 0x34, '12:134'],
    // A major above 0xfff keeps its high bits from bit 44 on, a minor above 0xff from bit 20 (glibc's makedev).
    [0x1000 * 2 ** 32 + (0x12 << 8) + 0x34, '1012:34'],
  ])('device %i is %s', (dev, name) => {
    expect(devName(dev)).toBe(name);
  });
});
