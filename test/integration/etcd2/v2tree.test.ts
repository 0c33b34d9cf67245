// Issue 16: the whole v2 tree reaches etcd3. Hidden nodes (names starting with `_`) and directory
// TTLs, written through etcd 3.3.25's v2 API, then converted to 3.3.25/etcd3.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../../helpers/env.ts';
import { dumpKeys, leaseTtl, startEtcd } from '../../helpers/etcd.ts';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { fixtureBinDir } from '../../helpers/fixtures.ts';
import { freePort, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

/** A v2 PUT of a key (`value`) or a directory (`dir`); returns the node etcd wrote. */
async function put(
  endpoint: string,
  key: string,
  o: { value?: string; dir?: boolean; ttl?: number },
): Promise<{ expiration?: string }> {
  const q = new URLSearchParams();
  if (o.dir) q.set('dir', 'true');
  if (o.ttl) q.set('ttl', String(o.ttl));
  const r = await fetch(`${endpoint}/v2/keys${key}?${q}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: o.dir ? '' : `value=${encodeURIComponent(o.value ?? '')}`,
  });
  const body = await r.text();
  if (r.status !== 201 && r.status !== 200) throw new Error(`v2 PUT ${key}: ${r.status} ${body}`);
  return (JSON.parse(body) as { node: { expiration?: string } }).node;
}

async function convert(dir: string, env: Record<string, string> = {}) {
  return runCli(
    [
      '--data-dir',
      dir,
      '--target-version',
      '3.3.25',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ],
    { ETCD_ELECTION_TIMEOUT: '100', LOG_LEVEL: 'debug', ...env },
  );
}

/** The keys, values and remaining lease TTLs (s; none: no lease) of the converted data, read by etcd 3.3.25. */
async function readBack(dir: string): Promise<Map<string, { value: string; ttl?: number }>> {
  const m = await startEtcd('3.3.25', dir, { name: NAME });
  const out = new Map<string, { value: string; ttl?: number }>();
  for (const kv of await dumpKeys('3.3.25', m.endpoint, '')) {
    out.set(kv.key, {
      value: kv.value,
      ...(kv.lease !== '0' ? { ttl: await leaseTtl('3.3.25', m.endpoint, kv.lease) } : {}),
    });
  }
  await m.stop();
  return out;
}

describe('the whole v2 tree', () => {
  it('converts hidden (_) nodes at any depth, with or without TTL, checked against the v2 store itself', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    const keys: Array<{ key: string; value: string; ttl?: number }> = [
      { key: '/registry/pods/ns/p', value: 'visible' },
      { key: '/registry/_hidden', value: 'hidden key' },
      { key: '/registry/events/ns/_e', value: 'hidden with a TTL', ttl: 3600 },
      { key: '/_top/k', value: 'under a hidden directory' },
      { key: '/_top/sub/_deep', value: 'hidden under hidden', ttl: 1800 },
      { key: '/registry/_hdir/x', value: 'visible name, hidden parent' },
    ];
    const expiry = new Map<string, number>();
    for (const k of keys) {
      const n = await put(m.endpoint, k.key, { value: k.value, ttl: k.ttl });
      if (n.expiration) expiry.set(k.key, Date.parse(n.expiration));
    }
    // A hidden directory with a TTL of its own takes a key without one with it.
    const hdir = Date.parse((await put(m.endpoint, '/registry/_ttl', { dir: true, ttl: 900 })).expiration!);
    await put(m.endpoint, '/registry/_ttl/k', { value: 'in a hidden directory with a TTL' });
    await m.stop();
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');

    const r = await convert(dir);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await readBack(dir);
    expect([...after.keys()].sort()).toEqual([...keys.map((k) => k.key), '/registry/_ttl/k'].sort());
    for (const k of keys) expect(after.get(k.key)!.value, k.key).toBe(k.value);
    for (const k of keys) {
      if (!k.ttl) expect(after.get(k.key)!.ttl, k.key).toBeUndefined();
      else
        expect(Math.abs(after.get(k.key)!.ttl! - (expiry.get(k.key)! - Date.now()) / 1000), k.key).toBeLessThanOrEqual(
          3,
        );
    }
    expect(Math.abs(after.get('/registry/_ttl/k')!.ttl! - (hdir - Date.now()) / 1000)).toBeLessThanOrEqual(3);
    expect(r.stderr).toMatch(
      /the whole v2 store, .*: 7 keys not due \(3 with a TTL\), of which 6 hidden .* in 4 hidden directories/,
    );
    expect(r.stderr).toMatch(/migrate done in .*: 7 keys \(3 with a TTL\)/);
    expect(r.stderr).not.toMatch(/hidden key|under a hidden/);
  });

  it("keys under TTL dirs get the earliest of own and ancestors' expiries; none under due dirs converted", async () => {
    const base = await tmpDir();
    let dir = '';
    let dirExpiry = 0;
    // The due directory must still be in the store when etcd stops (its leader expires nodes every
    // 500 ms): etcd is stopped right away, and a stop that came too late is done again.
    for (let attempt = 0; ; attempt++) {
      dir = path.join(base, `data-${attempt}`);
      const m = await startEtcd('3.3.25', dir, { name: NAME });
      dirExpiry = Date.parse((await put(m.endpoint, '/registry/ttldir', { dir: true, ttl: 600 })).expiration!);
      await put(m.endpoint, '/registry/ttldir/plain', { value: 'p' });
      await put(m.endpoint, '/registry/ttldir/longer', { value: 'l', ttl: 7200 });
      await put(m.endpoint, '/registry/ttldir/shorter', { value: 's', ttl: 300 });
      await put(m.endpoint, '/registry/ttldir/sub', { dir: true });
      await put(m.endpoint, '/registry/ttldir/sub/deep', { value: 'd' });
      await put(m.endpoint, '/registry/permanent', { value: 'k' });
      const due = Date.parse((await put(m.endpoint, '/registry/duedir', { dir: true, ttl: 3 })).expiration!);
      await put(m.endpoint, '/registry/duedir/k', { value: 'gone' });
      await put(m.endpoint, '/registry/duedir/long', { value: 'gone too', ttl: 7200 });
      await m.stop();
      if (Date.now() < due - 1000 || attempt === 4) break;
    }
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
    await new Promise((r) => setTimeout(r, 3500));

    const r = await convert(dir);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /: 5 keys \(4 with a TTL\) in \d+ directories .*; 2 keys were already due and are not converted/,
    );
    const after = await readBack(dir);
    expect([...after.keys()].sort()).toEqual([
      '/registry/permanent',
      '/registry/ttldir/longer',
      '/registry/ttldir/plain',
      '/registry/ttldir/shorter',
      '/registry/ttldir/sub/deep',
    ]);
    expect(after.get('/registry/permanent')!.ttl).toBeUndefined();
    const left = (dirExpiry - Date.now()) / 1000;
    for (const k of ['plain', 'longer', 'sub/deep']) {
      expect(Math.abs(after.get(`/registry/ttldir/${k}`)!.ttl! - left), k).toBeLessThanOrEqual(3);
    }
    expect(after.get('/registry/ttldir/shorter')!.ttl).toBeLessThanOrEqual(300);
  });

  it("reads the whole v2 store also when the temporary etcds' extra flags set their own --snapshot-count", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    await put(m.endpoint, '/registry/_hidden', { value: 'h' });
    await put(m.endpoint, '/registry/k', { value: 'k' });
    await m.stop();
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
    const r = await convert(dir, { ETCD_CREDS: '--snapshot-count=100000', STEP_TIMEOUT: '10' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /the whole v2 store, saved by etcd 3\.3\.25 .*: 2 keys not due \(0 with a TTL\), of which 1 hidden/,
    );
    expect([...(await readBack(dir)).keys()].sort()).toEqual(['/registry/_hidden', '/registry/k']);
  });

  it("fails, changing nothing, if migrate's output is not the v2 store (checked from the store itself)", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    await put(m.endpoint, '/registry/kept', { value: 'k' });
    await put(m.endpoint, '/registry/lost', { value: 'x' });
    await m.stop();
    await fs.writeFile(path.join(dir, 'version.txt'), '3.3.25/etcd2');
    // An etcdctl whose migrate loses one node on its way to the transformer.
    const bin = await fixtureBinDir({
      'etcdctl-3.3.25': [
        'if [ "$1" = migrate ]; then',
        '  W="$(dirname "$5")/lossy.sh"',
        `  printf '#!/bin/sh\\nsed "s|{\\\\"key\\\\":\\\\"/registry/lost\\\\"[^}]*}||" | %s\\n' "$5" > "$W"`,
        '  chmod +x "$W"',
        '  exec "$REAL" migrate --data-dir "$3" --transformer "$W"',
        'fi',
        'exec "$REAL" "$@"',
      ].join('\n'),
    });
    const before = await treeSnapshot(dir);
    const r = await runCli(
      [
        '--data-dir',
        dir,
        '--target-version',
        '3.3.25',
        '--bin-dir',
        bin,
        '--name',
        NAME,
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
      ],
      { ETCD_ELECTION_TIMEOUT: '100' },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      joinedRegex(
        /etcdctl migrate and its transformer converted keys=1 .*, /,
        /but the v2 store holds keys=2 .*; the live data was not changed/,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });
});
