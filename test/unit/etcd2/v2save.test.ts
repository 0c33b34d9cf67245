import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { v2StoreSnapshot, withoutFlag } from '../../../src/etcd2/v2save.ts';
import { first } from '../../helpers/walfile.ts';

describe('withoutFlag', () => {
  it('leaves out a flag in each of its spellings, with its value, and keeps the rest', () => {
    const args = [
      '--cert-file=/c',
      '--snapshot-count=10000',
      '-snapshot-count',
      '5',
      '--snapshot-count',
      '7',
      '--key-file',
      '/k',
      '-snapshot-count=3',
    ];
    expect(withoutFlag(args, '--snapshot-count')).toEqual(['--cert-file=/c', '--key-file', '/k']);
  });
});

/** A WAL file holding entries 1..n, as etcd writes it. */
function wal(n: number): Buffer {
  const w = first();
  for (let i = 1; i <= n; i++) w.entry(i, 1);
  return w.state(1, n).bytes(64);
}

describe('v2StoreSnapshot', () => {
  it('takes the newest snapshot file as is when the WAL holds no entry past it, and runs etcd otherwise', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'v2save-'));
    try {
      const member = path.join(dir, 'data', 'member');
      await fs.mkdir(path.join(member, 'wal'), { recursive: true });
      await fs.mkdir(path.join(member, 'snap'));
      await fs.writeFile(path.join(member, 'wal', '0000000000000000-0000000000000000.wal'), wal(5));
      await fs.writeFile(path.join(member, 'snap', '0000000000000002-0000000000000003.snap'), 'older');
      await fs.writeFile(path.join(member, 'snap', '0000000000000002-0000000000000005.snap'), 'newest');
      const o = {
        bin: path.join(dir, 'no-etcd'),
        version: { major: 3, minor: 3, patch: 25 },
        dataDir: path.join(dir, 'data'),
        scratch: path.join(dir, 'copy'),
        member: {
          name: 'm1',
          initialCluster: 'm1=http://127.0.0.1:1',
          listenPeerUrls: 'http://127.0.0.1:1',
          initialAdvertisePeerUrls: 'http://127.0.0.1:1',
          port: 2,
          extraArgs: [],
        },
        env: {},
        timeoutMs: 1000,
      };
      expect(await v2StoreSnapshot(o)).toEqual({
        file: path.join(member, 'snap', '0000000000000002-0000000000000005.snap'),
        etcdRan: false,
      });
      // One entry past it: etcd must write a newer one (here there is no etcd to start).
      await fs.writeFile(path.join(member, 'wal', '0000000000000000-0000000000000000.wal'), wal(6));
      await expect(v2StoreSnapshot(o)).rejects.toThrow();
      await expect(fs.access(path.join(dir, 'copy', 'member', 'wal'))).resolves.toBeUndefined();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
