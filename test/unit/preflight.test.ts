// preflight.ts: a file system error found before anything changed is one line naming the path once.
import { describe, expect, it } from 'vitest';
import { fsUsageError } from '../../src/preflight.ts';

const err = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('fsUsageError', () => {
  it("names the path once when Node's message has it already", () => {
    expect(
      fsUsageError(err('EIO', "EIO: i/o error, open '/var/etcd/data/version.txt'"), '/var/etcd/data').message,
    ).toBe("EIO: i/o error, open '/var/etcd/data/version.txt'");
  });
  it('adds the path when the message lacks it', () => {
    expect(fsUsageError(err('EIO', 'EIO: i/o error'), '/var/etcd/data').message).toBe('/var/etcd/data: EIO: i/o error');
  });
});
