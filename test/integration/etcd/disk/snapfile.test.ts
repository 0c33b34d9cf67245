// The cluster version written into the v2 store that `snapshot restore` made (src/etcd/disk/snapfile.ts):
// etcd 3.3 starts with it (its log says so; without it: "cluster version: to_be_decided", decided
// after the election or, when etcd 3.3 misses that signal, 4 s later), and its v3 API serves.
import { execa } from 'execa';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { seedClusterVersion } from '../../../../src/etcd/disk/snapfile.ts';
import { BIN_DIR, requireBinaries } from '../../../helpers/env.ts';
import { etcdctl, startEtcd } from '../../../helpers/etcd.ts';
import { freePort, onCleanup, tmpDir } from '../../../helpers/tmp.ts';

beforeAll(requireBinaries);

describe('seedClusterVersion', () => {
  it('etcd 3.3.25 on a restored member with the version recorded: decided at first answer, v3 serving', async () => {
    // A db with keys (a stopped member's), restored as the v2-to-v3 step does it.
    const source = await tmpDir();
    const m = await startEtcd('3.3.25', source);
    for (let i = 0; i < 20; i++) await etcdctl('3.3.25', m.endpoint, ['put', `/registry/k${i}`, `v${i}`]);
    await m.stop();
    const restored = path.join(await tmpDir(), 'data');
    const [port, peerPort] = [await freePort(), await freePort()];
    const peer = `http://127.0.0.1:${peerPort}`;
    await execa(
      path.join(BIN_DIR, 'etcdctl-3.3.25'),
      [
        'snapshot',
        'restore',
        path.join(source, 'member', 'snap', 'db'),
        '--skip-hash-check',
        '--data-dir',
        restored,
        '--name',
        'm1',
        '--initial-cluster',
        `m1=${peer}`,
        '--initial-advertise-peer-urls',
        peer,
      ],
      { env: { ETCDCTL_API: '3' } },
    );
    expect(await seedClusterVersion(path.join(restored, 'member', 'snap'), '3.3.0')).toBe(true);
    expect(await seedClusterVersion(path.join(restored, 'member', 'snap'), '3.3.0')).toBe(false);

    const client = `http://127.0.0.1:${port}`;
    const proc = execa(
      path.join(BIN_DIR, 'etcd-3.3.25'),
      [
        '--name',
        'm1',
        '--data-dir',
        restored,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `m1=${peer}`,
        '--heartbeat-interval',
        '10',
        '--election-timeout',
        '100',
      ],
      { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false },
    );
    onCleanup(async () => {
      proc.kill('SIGKILL');
      await proc;
    });
    let log = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => {
      log += c;
    });
    const answers = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await fetch(`${client}/version`).then(
        (x) => x.json() as Promise<{ etcdcluster: string }>,
        () => undefined,
      );
      if (r) answers.add(r.etcdcluster);
      if (r?.etcdcluster === '3.3.0') break;
      await new Promise((res) => setTimeout(res, 2));
    }
    expect([...answers]).toEqual(['3.3.0']);
    // It read the version at its start (without it: "cluster version: to_be_decided", then "setting up the initial
    // cluster version").
    expect(log).toMatch(/set the cluster version to 3\.3 from store/);
    expect(log).toMatch(/starting server\.\.\. \[version: 3\.3\.25, cluster version: 3\.3\]/);
    expect(log).not.toMatch(/setting up the initial cluster version/);
    expect((await etcdctl('3.3.25', client, ['get', '/registry/k7', '--print-value-only'])).stdout).toBe('v7');
    expect((await etcdctl('3.3.25', client, ['put', '/registry/new', 'x'])).stdout).toBe('OK');
  });
});
