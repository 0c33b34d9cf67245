// readV2Content (src/inspect/v2content.ts) on data dirs the real binaries wrote, checked against
// what etcdutl 3.5.36 `check v2store` says and against what etcd 3.6.17 and 3.7.3 then do.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readV2Content, V2ContentReader } from '../../src/inspect/v2content.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { etcdctl, startEtcd } from '../helpers/etcd.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const CLEAN = 'No custom content found in both v2store and WAL records.';

async function checkV2store(dataDir: string, version = '3.5.36'): Promise<{ exitCode: number; out: string }> {
  const args = ['check', 'v2store', '--data-dir', dataDir];
  const r = await execa(path.join(BIN_DIR, `etcdutl-${version}`), args, { reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, out: String(r.all).trim() };
}

/** A v2 PUT through etcd 3.5's v2 HTTP API (form-encoded value, as curl -d would send it). */
async function v2Put(endpoint: string, key: string, query = '', value?: string): Promise<void> {
  const r = await fetch(`${endpoint}/v2/keys/${key}${query}`, {
    method: 'PUT',
    ...(value !== undefined && {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `value=${encodeURIComponent(value)}`,
    }),
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`v2 PUT ${key}: HTTP ${r.status}`);
}

/** Starts etcd `version` on `dir` expecting it to exit on its own within 20 s; returns its log. */
async function startFails(version: string, dir: string, flags: string[] = []): Promise<string> {
  const [client, peer] = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const proc = execa(
    path.join(BIN_DIR, `etcd-${version}`),
    [
      '--name',
      'test-member',
      '--data-dir',
      dir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test-member=${peer}`,
      ...flags,
    ],
    { reject: false, all: true, timeout: 20_000, stdin: 'ignore' },
  );
  onCleanup(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const r = await proc;
  expect(r.timedOut).toBe(false);
  expect(r.exitCode).not.toBe(0);
  return String(r.all);
}

/** A stopped member written by etcd 3.5.30: a few v3 keys, nothing else. */
async function v3Data(): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  const m = await startEtcd('3.5.30', dir);
  for (let i = 0; i < 3; i++) await etcdctl('3.5.30', m.endpoint, ['put', `/registry/k${i}`, `v${i}`]);
  await m.stop();
  return dir;
}

async function copyOf(dir: string): Promise<string> {
  const copy = path.join(await tmpDir(), 'data');
  await fs.cp(dir, copy, { recursive: true });
  return copy;
}

/** One run of `version` with `flags` and one v3 write, stopped. */
async function runOnce(version: string, dir: string, flags: string[]): Promise<void> {
  const m = await startEtcd(version, dir, { extraArgs: flags });
  await etcdctl('3.5.30', m.endpoint, ['put', '/registry/after', 'x']);
  await m.stop();
}

describe('readV2Content', () => {
  it("3.5.30 data: its start's raw v2 PUTs are after the (absent) snapshot, all allowed; etcdutl agrees", async () => {
    const dir = await v3Data();
    const c = await readV2Content(dir);
    expect(c.snapshot).toBeUndefined();
    expect(c.walSnapshot).toEqual({ index: 0, term: 0 });
    expect(c.v2EntriesAfterSnapshot).toBeGreaterThan(0);
    expect(c.walRequests).toEqual([]);
    expect(c.snapshotKeys).toEqual([]);
    const check = await checkV2store(dir);
    expect(check).toEqual({ exitCode: 0, out: CLEAN });
  });

  it('3.6.17 --snapshot-count=1 leaves no v2 entry after the snapshot and 3.7.3 starts; else it fails', async () => {
    const dir = await v3Data();
    const plain = await copyOf(dir);
    await runOnce('3.6.17', dir, ['--snapshot-count=1']);
    const c = await readV2Content(dir);
    expect(c.v2EntriesAfterSnapshot).toBe(0);
    expect(c.walRequests).toEqual([]);
    // The .snap loaded is the one the last WAL snapshot record names, by its <term>-<index> name.
    expect(c.snapshot).toBeDefined();
    expect({ index: c.snapshot!.index, term: c.snapshot!.term }).toEqual(c.walSnapshot);
    const hex = (n: number) => n.toString(16).padStart(16, '0');
    expect(c.snapshot!.file).toBe(`${hex(c.walSnapshot.term)}-${hex(c.walSnapshot.index)}.snap`);
    await (await startEtcd('3.7.3', dir)).stop();

    await runOnce('3.6.17', plain, []);
    const p = await readV2Content(plain);
    expect(p.v2EntriesAfterSnapshot).toBeGreaterThan(0);
    expect(p.walRequests).toEqual([]);
    expect(await startFails('3.7.3', plain)).toMatch(/unmarshal should never fail/);
  });

  it('custom v2 keys: named in the WAL, then in the snapshot; etcdutl and etcd 3.6.17 refuse both', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { extraArgs: ['--enable-v2=true'] });
    await v2Put(m.endpoint, 'foo/bar', '', 'secret-1');
    await v2Put(m.endpoint, 'foo/baz', '', 'secret-2');
    await v2Put(m.endpoint, 'empty', '?dir=true');
    await v2Put(m.endpoint, '_hidden', '', 'secret-3');
    await m.stop();

    const inWal = await readV2Content(dir);
    // The run's reader reads once while nothing changed, and again once etcd has run on the data.
    const reader = new V2ContentReader(dir);
    const first = await reader.read();
    expect(first).toEqual(inWal);
    expect(await reader.read()).toBe(first);
    expect(inWal.walRequests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'PUT /1/foo/bar',
      'PUT /1/foo/baz',
      'PUT /1/empty',
      'PUT /1/_hidden',
    ]);
    expect(inWal.snapshotKeys).toEqual([]);
    expect(JSON.stringify(inWal)).not.toMatch(/secret/);
    const walCheck = await checkV2store(dir);
    expect(walCheck.exitCode).not.toBe(0);
    expect(walCheck.out).toBe('Error: detected custom v2 content in WAL records');
    // The check of 3.5.30 (before 3.5.32) reads the .snap only: it misses them.
    expect(await checkV2store(dir, '3.5.30')).toEqual({ exitCode: 0, out: 'No custom content found in v2store.' });
    expect(await startFails('3.6.17', await copyOf(dir))).toMatch(
      /detected disallowed v2 WAL for stage --v2-deprecation=write-only/,
    );

    const m2 = await startEtcd('3.5.30', dir, { extraArgs: ['--enable-v2=true', '--snapshot-count=1'] });
    for (let i = 0; i < 3; i++) await etcdctl('3.5.30', m2.endpoint, ['put', `/registry/w${i}`, 'x']);
    await m2.stop();
    const inSnap = await readV2Content(dir);
    expect(await reader.read()).not.toBe(first);
    expect(await reader.read()).toEqual(inSnap);
    // A hidden node does not count for 3.6 (its Get does not list it); an empty dir does.
    expect(inSnap.snapshotKeys).toEqual(['/1/empty', '/1/foo/bar', '/1/foo/baz']);
    expect(inSnap.walRequests).toEqual([]);
    expect(inSnap.v2EntriesAfterSnapshot).toBe(0);
    const snapCheck = await checkV2store(dir);
    expect(snapCheck.exitCode).not.toBe(0);
    expect(snapCheck.out).toBe('Error: detected custom content in v2store');
    expect(await startFails('3.6.17', await copyOf(dir))).toMatch(/detected disallowed custom content in v2store/);
  });

  it('only a hidden v2 node ("_" first) in the snapshot: clean for us, etcdutl and etcd 3.6.17', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { extraArgs: ['--enable-v2=true', '--snapshot-count=1'] });
    await v2Put(m.endpoint, '_hidden', '', 'secret');
    for (let i = 0; i < 2; i++) await etcdctl('3.5.30', m.endpoint, ['put', `/registry/w${i}`, 'x']);
    await m.stop();
    const c = await readV2Content(dir);
    expect(c.snapshot).toBeDefined();
    expect(c).toMatchObject({ snapshotKeys: [], walRequests: [], v2EntriesAfterSnapshot: 0 });
    expect(await checkV2store(dir)).toEqual({ exitCode: 0, out: CLEAN });
    await (await startEtcd('3.6.17', dir)).stop();
  });

  it('3.5.36 --v2-deprecation=write-only-drop-data drops nothing: v2 keys reach the snapshot; it refuses', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { extraArgs: ['--enable-v2=true'] });
    await v2Put(m.endpoint, 'foo/bar', '', 'secret');
    await m.stop();
    await runOnce('3.5.36', dir, ['--v2-deprecation=write-only-drop-data', '--snapshot-count=1']);
    const c = await readV2Content(dir);
    expect(c).toMatchObject({ snapshotKeys: ['/1/foo/bar'], walRequests: [], v2EntriesAfterSnapshot: 0 });
    expect(await checkV2store(dir)).toEqual({ exitCode: 1, out: 'Error: detected custom content in v2store' });
    expect(await startFails('3.5.36', dir, ['--v2-deprecation=write-only-drop-data'])).toMatch(
      /detected disallowed custom content in v2store for stage --v2-deprecation=write-only-drop-data/,
    );
  });
});
