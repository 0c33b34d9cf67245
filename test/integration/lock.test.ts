// The data dir's lock (src/lock.ts) between processes: other PID namespaces, many contenders for a
// stale lock, release, zombies. The holders are small processes (test/helpers/lock-holder.ts).
import { execa, type ResultPromise } from 'execa';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN_DIR, REPO } from '../helpers/env.ts';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { freePort, onCleanup, tmpDir } from '../helpers/tmp.ts';
import { DatabaseSync } from 'node:sqlite';
import { acquireLock, lockedFileIsCurrent } from '../../src/lock.ts';
import { ENTRY } from '../helpers/env.ts';

const HOLDER = path.join(REPO, 'test/helpers/lock-holder.ts');
const isRoot = process.getuid?.() === 0;
const WAIT = 'wait for it to finish, or stop it';

/** Starts a holder (optionally through a wrapper command) and waits for its first line. */
interface Holder {
  proc: ResultPromise;
  line: string;
}

async function holder(dir: string, opts: { wrap?: string[]; exit?: boolean } = {}): Promise<Holder> {
  const cmd = [...(opts.wrap ?? []), process.execPath, HOLDER, dir, ...(opts.exit ? ['--exit'] : [])];
  const proc = execa(cmd[0]!, cmd.slice(1), { reject: false, stdin: 'pipe', buffer: false });
  onCleanup(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const line = await firstLine(proc);
  return { proc, line };
}

function firstLine(proc: ResultPromise): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    void proc.then(() => (out.includes('\n') ? undefined : reject(new Error(`holder ended without a line: ${out}`))));
  });
}

async function dataDir(): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  await fs.mkdir(path.join(dir, 'member'), { recursive: true });
  await fs.writeFile(path.join(dir, 'version.txt'), '3.5.30/etcd3');
  return dir;
}

describe('the data dir lock', () => {
  it('a holder in another PID namespace (PID 1 there, as is the contender in its own) is not stale', async () => {
    if (!isRoot) return expect.soft(isRoot, 'needs root (unshare); CI runs as root').toBe(true);
    const dir = await dataDir();
    const ns = ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'];
    const h = await holder(dir, { wrap: ns });
    expect(h.line).toBe('held 1');
    const before = await treeSnapshot(dir);
    const args = [
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    const r = await execa(ns[0]!, [...ns.slice(1), process.execPath, ENTRY, ...args], { reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(2);
    expect(String(r.stderr)).toMatch(
      new RegExp(
        '^etcd-migrate: error: another etcd-migrate ' +
          '\\(pid 1 in another PID namespace ' +
          '\\(host .*, since .*\\)\\) is working on .*; wait for it to finish, or stop it\n?$',
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('a stale lock goes to exactly one of 8 simultaneous contenders', async () => {
    const dir = await dataDir();
    // The holder dies holding it: its lock file and its record stay behind.
    const dead = await holder(dir, { exit: true });
    expect(dead.line).toMatch(/^held \d+$/);
    await dead.proc;
    expect((await fs.readdir(dir)).length).toBeGreaterThan(2);
    // Each winner holds until every contender has answered, so the count is exact.
    const lines = await Promise.all(Array.from({ length: 8 }, () => holder(dir).then((h) => h.line)));
    const held = lines.filter((l) => l.startsWith('held '));
    expect(held, lines.join('\n')).toHaveLength(1);
    const winner = held[0]!.split(' ')[1];
    for (const l of lines.filter((x) => !x.startsWith('held '))) {
      // Never the dead holder: the winner, or no name while its record is not written yet.
      expect([
        `refused another etcd-migrate (pid ${winner}) is working on ${dir}; ${WAIT}`,
        `refused another etcd-migrate holds the lock ${dir}/.etcd-migrate.lock.db; ${WAIT}`,
      ]).toContain(l);
    }
  });

  it('a lock on a file a release unlinked meanwhile is seen as such (acquireLock then tries the new one)', async () => {
    // Also through a symlink to the data dir: /proc names the open file by its real path.
    const dir = await dataDir();
    const link = `${dir}-link`;
    await fs.symlink(dir, link);
    const file = path.join(link, '.etcd-migrate.lock.db');
    const db = new DatabaseSync(file, { timeout: 0 });
    try {
      db.exec('BEGIN EXCLUSIVE');
      expect(lockedFileIsCurrent(file)).toBe(true);
      await fs.rm(file);
      expect(lockedFileIsCurrent(file)).toBe(false);
      await fs.writeFile(file, '');
      expect(lockedFileIsCurrent(file)).toBe(false);
    } finally {
      db.close();
    }
    expect(lockedFileIsCurrent(file)).toBe(false);
  });

  it('a lock file that is not one refuses the run, naming the file and the fix, and stays', async () => {
    const dir = await dataDir();
    await fs.writeFile(path.join(dir, '.etcd-migrate.lock.db'), 'not a lock');
    const h = await holder(dir);
    expect(h.line).toBe(
      `refused ${dir}/.etcd-migrate.lock.db is not a lock etcd-migrate made (those stay empty); ` +
        'if no etcd-migrate runs on this data dir, remove it',
    );
    expect(await fs.readFile(path.join(dir, '.etcd-migrate.lock.db'), 'utf8')).toBe('not a lock');
  });

  it('release removes only its own lock, also when called again after another process took it', async () => {
    const dir = await dataDir();
    const mine = await acquireLock(dir);
    await mine.release();
    const other = await holder(dir);
    expect(other.line).toMatch(/^held \d+$/);
    await mine.release();
    const third = await holder(dir);
    const otherPid = other.line.split(' ')[1];
    expect(third.line).toBe(`refused another etcd-migrate (pid ${otherPid}) is working on ${dir}; ${WAIT}`);
    other.proc.stdin!.end();
    await other.proc;
    expect((await fs.readdir(dir)).sort()).toEqual(['member', 'version.txt']);
  });

  it('a zombie holder counts as gone', async () => {
    const dir = await dataDir();
    // sh starts the holder and becomes a sleep that never reaps it: once it exits it is a zombie.
    const h = await holder(dir, { wrap: ['sh', '-c', '"$@" & exec sleep 60', 'sh'], exit: true });
    const pid = Number(h.line.split(' ')[1]);
    const zombie = () => /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    for (let i = 0; i < 500 && !zombie(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      'm1',
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await fs.readdir(dir)).sort()).toEqual(['member', 'version.txt']);
  });
});
