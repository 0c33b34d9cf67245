// The command line itself: --version, help, --dry-run on stdout, --output json. Runs the bundle.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { BIN_DIR, REPO, requireBinaries } from '../helpers/env.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

/** The etcd versions in BIN_DIR, oldest first, read here the way a person would list them. */
async function binVersions(): Promise<string[]> {
  const names = (await fs.readdir(BIN_DIR)).filter((n) => /^etcd-\d+\.\d+\.\d+$/.test(n)).map((n) => n.slice(5));
  return names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

async function dataDirAt(version: string): Promise<string> {
  const dir = path.join(await tmpDir(), 'data');
  await fs.mkdir(path.join(dir, 'member'), { recursive: true });
  await fs.writeFile(path.join(dir, 'version.txt'), version);
  return dir;
}

describe('--version', () => {
  it("names the tool's version, its commit and every etcd of the bin dir", async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version', '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^etcd-migrate ${pkg.version.replace(/\./g, '\\.')} \\(commit [0-9a-f]{7,}(-dirty)?\\)\n`),
    );
    expect(r.stdout).toContain(`etcd versions in ${BIN_DIR}: ${(await binVersions()).join(', ')}`);
  });

  it('is the same from the sources in the repo (bin/etcd-migrate.js, the development path)', async () => {
    const { execa } = await import('execa');
    const [dev, built] = await Promise.all([
      execa(process.execPath, [path.join(REPO, 'bin/etcd-migrate.js'), '--version', '--bin-dir', BIN_DIR], {
        reject: false,
      }),
      runCli(['--version', '--bin-dir', BIN_DIR]),
    ]);
    expect(dev.exitCode, String(dev.stderr)).toBe(0);
    // The bundle may say -dirty (built from a changed tree); the sources name the commit alone.
    expect(String(dev.stdout).replace(/-dirty\)/, ')')).toBe(built.stdout.replace(/-dirty\)/, ')'));
  });

  it('--output json gives the same facts, and a bin dir without etcd is said, not fatal', async () => {
    const empty = await tmpDir();
    const r = await runCli(['--version', '--output', 'json', '--bin-dir', empty]);
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      version: string;
      commit: string;
      binDir: string;
      etcd: string[];
      problem: string;
    };
    expect(j).toMatchObject({ binDir: empty, etcd: [] });
    expect(j.problem).toMatch(/holds no etcd-<x\.y\.z> binary/);
  });
});

describe('help', () => {
  it('-h, --help and `help` print the same grouped help, with the static pod form as the first example', async () => {
    const [h, help, word] = await Promise.all([runCli(['-h']), runCli(['--help']), runCli(['help'])]);
    for (const r of [h, help, word]) expect(r.exitCode, r.stderr).toBe(0);
    expect(h.stdout).toBe(help.stdout);
    expect(word.stdout).toBe(help.stdout);
    const groups = [...help.stdout.matchAll(/^([A-Z][a-z ]+):$/gm)].map((m) => m[1]);
    expect(groups).toEqual(['Migration', 'Member and cluster', 'Temporary etcd', 'Backups', 'Output', 'Examples']);
    const examples = help.stdout.slice(help.stdout.indexOf('Examples:'));
    // yargs wraps each example over lines: its command on the left, its text on the right.
    expect(examples.split('\n')[1]).toMatch(/^\s+etcd-migrate --data-dir \S+\s+a static pod's command/);
    expect(examples).toMatch(/-- --name/);
  });

  it.each([
    ['backup', 'etcd-migrate backup <file>'],
    ['restore', 'etcd-migrate restore <file>'],
    ['rehearse', 'etcd-migrate rehearse'],
  ])('`help %s` is the same as its --help and -h', async (command, usage) => {
    const [word, flag, short] = await Promise.all([
      runCli(['help', command]),
      runCli([command, '--help']),
      runCli([command, '-h']),
    ]);
    expect(word.exitCode, word.stderr).toBe(0);
    expect(word.stdout).toContain(usage);
    expect(flag.stdout).toBe(word.stdout);
    expect(short.stdout).toBe(word.stdout);
  });
});

describe('--dry-run and --output json', () => {
  it('--dry-run prints its plan on stdout, nothing about it on stderr, and changes nothing', async () => {
    const dir = await dataDirAt('3.4.23/etcd3');
    const before = await treeSnapshot(dir);
    const r = await runCli(['--data-dir', dir, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      joinedRegex(
        /^plan \(dry run, nothing changed\): 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: 1 step\(s\)\n/,
        /  1\. upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3/,
      ),
    );
    expect(r.stdout).toContain(`first: one verified backup of the data`);
    expect(r.stderr).not.toContain('plan');
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  it('--dry-run --output json gives the plan as one JSON object', async () => {
    const dir = await dataDirAt('3.3.25/etcd3');
    const r = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--dry-run',
      '--output',
      'json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.dryRun).toBe(true);
    expect(j.plan.from).toBe('3.3.25/etcd3');
    expect(j.plan.steps.map((s: { kind: string; to: string }) => `${s.kind} ${s.to}`)).toEqual([
      'upgrade 3.4.23/etcd3',
      'upgrade 3.5.30/etcd3',
    ]);
    expect(j.result).toMatchObject({ ok: true, changed: false, versionTxt: null, exec: null });
  });

  it('--output json on a run gives the result; on bad input, the error and its exit code', async () => {
    const dir = await dataDirAt('3.5.29/etcd3');
    const ok = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--output',
      'json',
    ]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      dryRun: false,
      plan: { from: '3.5.29/etcd3', steps: [] },
      result: { ok: true, changed: true, versionTxt: '3.5.30/etcd3' },
    });
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');

    const bad = await runCli([
      '--data-dir',
      dir,
      '--target-version',
      '3.9.1',
      '--bin-dir',
      BIN_DIR,
      '--output',
      'json',
    ]);
    expect(bad.exitCode).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({
      result: { ok: false, exitCode: 2, error: expect.stringMatching(/3\.9\.1 is not bundled/) },
    });
  });

  it("a pod start prints nothing on stdout: it is etcd's", async () => {
    const dir = await dataDirAt('3.5.30/etcd3');
    const r = await runCli(['--data-dir', dir, '--target-version', '3.5.30', '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });
});

describe('unknown words', () => {
  it('every command refuses an unknown flag with the nearest valid name; a mistyped command is named', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['rehearse', '--data-dri', '/x'],
        joinedRegex(
          /^etcd-migrate: error: unknown flag --data-dri for rehearse; /,
          /did you mean --data-dir\? see etcd-migrate rehearse --help$/,
        ),
      ],
      [
        ['restore', 'f.db', '--data-dri', '/x'],
        joinedRegex(
          /^etcd-migrate: error: unknown flag --data-dri for restore; /,
          /did you mean --data-dir\? see etcd-migrate restore --help$/,
        ),
      ],
      [['rehearse', 'extra'], /^etcd-migrate: error: unexpected argument "extra"; see etcd-migrate rehearse --help$/],
      [['backpu'], /^etcd-migrate: error: unexpected argument "backpu"; did you mean the command backup\? /],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
    }
  });
});

describe('--log-format json', () => {
  it('logs each line as an etcd-shaped record (level, ts, caller, msg, fields), errors at level error', async () => {
    const { makeV3Data } = await import('../helpers/data.ts');
    const { freePort } = await import('../helpers/tmp.ts');
    const dir = path.join(await tmpDir(), 'data');
    await makeV3Data('3.4.23', dir, 'm1', 3);
    const r = await runCli([
      '--log-format=json',
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
    const records = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string | number>);
    for (const rec of records) {
      expect(Object.keys(rec).slice(0, 4)).toEqual(['level', 'ts', 'caller', 'msg']);
      expect(rec.level).toBe('info');
      expect(Number.isNaN(Date.parse(String(rec.ts)))).toBe(false);
    }
    const step = records.find((x) => String(x.msg).startsWith('step 1/1 '));
    expect(step?.msg).toMatch(/^step 1\/1 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/);
    expect(step).toMatchObject({
      step: 1,
      steps: 1,
      kind: 'upgrade',
      from: '3.4.23/etcd3',
      to: '3.5.30/etcd3',
      seconds: expect.any(Number),
    });
    expect(records.at(-1)).toMatchObject({
      from: '3.4.23/etcd3',
      to: '3.5.30/etcd3',
      steps: 1,
      msg: expect.stringMatching(/^migrated /),
    });

    // A refusal of the command line itself is a record too.
    const bad = await runCli([
      '--log-format',
      'json',
      '--data-dir',
      dir,
      '--target-version',
      '3.9.0',
      '--bin-dir',
      BIN_DIR,
    ]);
    expect(bad.exitCode).toBe(2);
    const [rec] = bad.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(rec).toMatchObject({
      level: 'error',
      caller: 'etcd-migrate',
      msg: expect.stringMatching(/^target version 3\.9\.0 is not bundled/),
    });
  });
});

describe('--log-level', () => {
  it('info: one short line per event; debug adds what each step did; error: nothing but errors', async () => {
    const { makeV3Data } = await import('../helpers/data.ts');
    const { freePort } = await import('../helpers/tmp.ts');
    const run = async (level: string, version: string) => {
      const dir = path.join(await tmpDir(), 'data');
      await makeV3Data('3.4.23', dir, 'm1', 3);
      return runCli(
        [
          '--data-dir',
          dir,
          '--target-version',
          version,
          '--bin-dir',
          BIN_DIR,
          '--name',
          'm1',
          '--port',
          String(await freePort()),
          '--peer-port',
          String(await freePort()),
        ],
        { LOG_LEVEL: level },
      );
    };
    const info = await run('info', '3.5.30');
    expect(info.exitCode, info.stderr).toBe(0);
    const lines = info.stderr.trim().split('\n');
    expect(
      lines.every((l) => l.startsWith('etcd-migrate: ') && !l.startsWith('etcd-migrate: debug: ')),
      info.stderr,
    ).toBe(true);
    // Each line short, but for the paths it names (the backup's file).
    expect(
      lines.filter((l) => l.replace(/\/\S+/g, '/p').length > 120),
      info.stderr,
    ).toEqual([]);

    const debug = await run('debug', '3.5.30');
    expect(debug.exitCode, debug.stderr).toBe(0);
    expect(debug.stderr).toMatch(
      joinedRegex(
        /^etcd-migrate: debug: step 1\/1 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: /,
        /start etcd 3\.5\.30 until a write commits, then stop it$/m,
      ),
    );
    expect(debug.stderr.split('\n').length).toBeGreaterThan(lines.length);

    const quiet = await run('error', '3.5.30');
    expect(quiet.exitCode, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');
    const refused = await run('error', '3.9.0');
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/^etcd-migrate: error: target version 3\.9\.0 is not bundled/);
  });

  it('refuses a level that is none, from the flag or LOG_LEVEL, with one line and exit code 2', async () => {
    const flag = await runCli(['--log-level', 'verbose', '--data-dir', '/nonexistent', '--target-version', '3.5.30']);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toBe('etcd-migrate: error: --log-level verbose is not a level: use debug, info, warn or error');
    const env = await runCli(['backup', 'f', '--data-dir', '/nonexistent'], { LOG_LEVEL: 'INFO' });
    expect(env.exitCode).toBe(2);
    expect(env.stderr).toBe('etcd-migrate: error: LOG_LEVEL=INFO is not a level: use debug, info, warn or error');
  });
});
