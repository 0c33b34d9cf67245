// Issue 16, item 14: a temporary etcd that exits on a bad flag is reported with its own error line
// (Go's flag error, which comes first), not with the tail of the usage text that follows it.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorLine } from '../../src/etcd/process/server.ts';
import { runCli } from '../helpers/cli.ts';
import { fixtureBinDir, makeHistoryData } from '../helpers/fixtures.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

describe('an etcd that exits on a bad flag', () => {
  for (const [from, to, creds, said] of [
    ['3.4.23', '3.5.30', '--bogus-flag', 'flag provided but not defined: -bogus-flag'],
    ['3.3.25', '3.4.23', '--snapshot-count=abc', 'invalid value "abc" for flag -snapshot-count: parse error'],
  ] as const) {
    it(`etcd ${to} with ETCD_CREDS=${creds}: the step's error names etcd's own line, not the usage text`, async () => {
      const dir = path.join(await tmpDir(), 'data');
      await makeHistoryData(from, dir, NAME);
      const r = await runCli(
        [
          '--data-dir',
          dir,
          '--target-version',
          to,
          '--bin-dir',
          BIN_DIR,
          '--name',
          NAME,
          '--port',
          String(await freePort()),
          '--peer-port',
          String(await freePort()),
        ],
        { ETCD_CREDS: creds },
      );
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain(`etcd ${to} exited before a write committed (exit code 2); etcd said: ${said};`);
      expect(r.stderr).not.toMatch(/grpc-proxy|Usage:|usage:/);
    });
  }
});

describe('an etcd that exits with output of its own', () => {
  it('its last lines end the error, each on its own line, indented, named; in JSON inside the one record', async () => {
    const bin = await fixtureBinDir({ 'etcd-3.5.30': 'echo "first line" >&2\necho "second | line" >&2\nexit 3' });
    const run = async (format: string) => {
      const dir = path.join(await tmpDir(), 'data');
      await makeHistoryData('3.4.23', dir, NAME);
      return runCli([
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        bin,
        '--name',
        NAME,
        '--log-format',
        format,
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
      ]);
    };
    const text = await run('text');
    expect(text.exitCode, text.stderr).toBe(1);
    expect(text.stderr).toMatch(
      joinedRegex(
        /^etcd-migrate: error: step 1\/1 \(upgrade .*\) failed: /,
        /etcd 3\.5\.30 exited before a write committed \(exit code 3\); .*; /,
        /its last lines:\n  etcd-3\.5\.30\| first line\n  etcd-3\.5\.30\| second \| line$/m,
      ),
    );
    // Every other line is the entrypoint's own.
    expect(
      text.stderr.split('\n').filter((l) => !l.startsWith('etcd-migrate: ') && !l.startsWith('  etcd-3.5.30| ')),
    ).toEqual([]);

    const json = await run('json');
    expect(json.exitCode, json.stderr).toBe(1);
    const records = json.stderr.split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(records.at(-1)!.level).toBe('error');
    expect(records.at(-1)!.msg).toMatch(
      /; its last lines:\n  etcd-3\.5\.30\| first line\n  etcd-3\.5\.30\| second \| line$/,
    );
  });
});

describe('errorLine', () => {
  it("finds the cause in each version's log format and ignores ordinary lines", () => {
    expect(errorLine('2026-12-03 18:01:35.487320 C | etcdmain: open /x: no such file or directory')).toEqual({
      kind: 'fatal',
      text: 'etcdmain: open /x: no such file or directory',
    });
    expect(errorLine('2026-12-03 18:01:35.487212 I | embed: ready to serve client requests')).toBeUndefined();
    expect(
      errorLine(
        '{"level":"fatal","ts":"t","msg":"listener failed",' +
          '"error":"open /x: no such file or directory","stacktrace":"a\\nb"}',
      ),
    ).toEqual({ kind: 'fatal', text: 'listener failed: open /x: no such file or directory' });
    expect(errorLine('{"level":"info","msg":"serving"}')).toBeUndefined();
    expect(
      errorLine('panic: tocommit(37) is out of range [lastIndex(10)]. Was the raft log corrupted, truncated, or lost?')
        ?.kind,
    ).toBe('panic');
    expect(errorLine('  etcd grpc-proxy')).toBeUndefined();
  });
});
