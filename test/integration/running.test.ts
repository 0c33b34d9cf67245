// An etcd running on the data dir, however it was started, is refused (exit 2, nothing changed) and
// never signalled: only what this tool started is stopped as "left by an interrupted run".
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, ENTRY, requireBinaries } from '../helpers/env.ts';
import { etcdctl, startEtcd, type MemberOptions } from '../helpers/etcd.ts';
import { runCli } from '../helpers/cli.ts';
import { recordLocked } from '../../src/etcd/process/running.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

const isRoot = process.getuid?.() === 0;

async function data(): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  const m = await startEtcd('3.4.23', dir, { name: 'm1' });
  await etcdctl('3.4.23', m.endpoint, ['put', '/registry/pods/p1', 'pod 1']);
  await m.stop();
  await fs.writeFile(path.join(dir, 'version.txt'), '3.4.23/etcd3');
  return dir;
}

const NS = ['/usr/bin/unshare', '--pid', '--fork', '--kill-child', '--mount-proc'];

/** The entrypoint, in a PID namespace of its own when `ns` (a sibling of the etcd's, as in another container). */
async function run(args: string[], ns: boolean) {
  if (!ns) return runCli(args);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const argv = [...NS.slice(1), process.execPath, ENTRY, ...args];
  const r = await execa(NS[0]!, argv, { reject: false, env, extendEnv: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const VISIBLE = /etcd \(pid \d+, etcd-3\.4\.23\) is running on/;
const ways: Array<[string, (dir: string) => MemberOptions, RegExp]> = [
  ['its data dir from ETCD_DATA_DIR', (dir) => ({ env: { ETCD_DATA_DIR: dir } }), VISIBLE],
  ['--data-dir, not started by this tool', () => ({}), VISIBLE],
  ['in another PID namespace', () => ({ wrap: NS }), /an etcd in another PID namespace \(another container\) is/],
];

describe('an etcd running on the data dir', () => {
  it.each(ways)('started with %s: refused, exit 2, not signalled, nothing changed', async (way, opts, who) => {
    if (way.includes('namespace') && !isRoot) return expect.soft(isRoot, 'needs root (unshare); CI has it').toBe(true);
    const dir = await data();
    const m = await startEtcd('3.4.23', dir, { name: 'm1', ...opts(dir) });
    const r = await run(
      [
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        BIN_DIR,
        '--name',
        'm1',
        '--step-timeout',
        '10',
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
      ],
      way.includes('namespace'),
    );
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(who);
    const locked = 'member\\/(snap\\/db|wal\\/[0-9a-f-]+\\.(wal|tmp))';
    expect(r.stderr).toMatch(new RegExp(`is running on .* \\(it holds the lock on ${locked}\\); stop it before`));
    expect(r.stderr).not.toMatch(/left by an interrupted run/);
    const served = await etcdctl('3.4.23', m.endpoint, ['get', '/registry/pods/p1', '--print-value-only']);
    expect(served.stdout.trim()).toBe('pod 1');
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
    expect((await fs.readdir(path.dirname(dir))).sort()).toEqual(['data']);
  });

  it('the read-lock probe alone sees the WAL lock of an etcd in another PID namespace, not once gone', async () => {
    if (!isRoot) return expect.soft(isRoot, 'needs root (unshare); CI has it').toBe(true);
    const dir = await data();
    const m = await startEtcd('3.4.23', dir, { name: 'm1', wrap: NS });
    const wal = path.join(dir, 'member', 'wal');
    const files = (await fs.readdir(wal)).filter((f) => f.endsWith('.wal')).map((f) => path.join(wal, f));
    expect(files.length).toBeGreaterThan(0);
    expect(files.some(recordLocked)).toBe(true);
    // unshare exits first; the kernel then kills etcd (--kill-child), which releases its locks.
    await m.stop();
    for (let i = 0; i < 500 && files.some(recordLocked); i++) await new Promise((r) => setTimeout(r, 10));
    expect(files.some(recordLocked)).toBe(false);
  });
});
