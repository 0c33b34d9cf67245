// A temporary etcd listens on 127.0.0.1 only, whatever ETCD_* variables the pod sets: the listeners
// it would open from the pod's environment (metrics, an HTTP-only client listener) stay shut.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { withTempEtcd } from '../../src/etcd/process/server.ts';
import { parseVersion } from '../../src/version.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

/** The TCP sockets `pid` listens on, as "address:port" in /proc/net/tcp{,6}'s hex. */
function listening(pid: number): string[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        } catch {
          return undefined;
        }
      })
      .filter(Boolean),
  );
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const row of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) out.push(f[1]!);
    }
  }
  return out;
}

describe("a temporary etcd and the pod's ETCD_* variables", () => {
  it.each([
    ['ETCD_LISTEN_METRICS_URLS', 'metrics'],
    ['ETCD_LISTEN_CLIENT_HTTP_URLS', 'an HTTP-only client listener'],
  ])('%s on 0.0.0.0 (%s) opens no listener beyond 127.0.0.1; ETCD_LOG_LEVEL is kept', async (variable) => {
    const [port, peer, wide] = [await freePort(), await freePort(), await freePort()];
    const env = { PATH: '/usr/bin:/bin', [variable]: `http://0.0.0.0:${wide}`, ETCD_LOG_LEVEL: 'warn' };
    const localPeer = `http://127.0.0.1:${peer}`;
    const seen = await withTempEtcd(
      {
        bin: path.join(BIN_DIR, 'etcd-3.5.30'),
        version: parseVersion('3.5.30'),
        dataDir: path.join(await tmpDir(), 'd'),
        storage: 'etcd3',
        env,
        timeoutMs: 30_000,
        member: {
          name: 'm1',
          initialCluster: `m1=${localPeer}`,
          listenPeerUrls: localPeer,
          initialAdvertisePeerUrls: localPeer,
          port,
          extraArgs: [],
        },
      },
      async (e) => ({
        sockets: listening(e.pid!),
        environ: readFileSync(`/proc/${e.pid}/environ`, 'utf8').split('\0'),
      }),
    );
    const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
    expect(seen.sockets.sort()).toEqual([`0100007F:${hex(port)}`, `0100007F:${hex(peer)}`].sort());
    expect(seen.environ).toContain('ETCD_LOG_LEVEL=warn');
    expect(seen.environ.filter((v) => v.startsWith('ETCD_LISTEN'))).toEqual([]);
  });
});
