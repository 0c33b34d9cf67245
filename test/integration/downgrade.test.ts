// Issue 5: downgrades through snapshots with the real binaries, and what a failing or lying
// etcdctl does to them (nothing to the data).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { fixtureBinDir, makeHistoryData, modeOf, served } from '../helpers/fixtures.ts';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { leaseTtl, startEtcd } from '../helpers/etcd.ts';
import { watchVersionFile } from '../helpers/watch.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

async function cli(
  dir: string,
  target: string,
  binDir = BIN_DIR,
  extra: string[] = [],
  env: Record<string, string> = {},
) {
  return runCli(
    [
      '--data-dir',
      dir,
      '--target-version',
      target,
      '--bin-dir',
      binDir,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
      ...extra,
    ],
    env,
  );
}

describe('downgrade with real etcd', () => {
  it('3.5.30 -> 3.4.23 -> 3.3.25 keeps every key, value, lease, the revision; each step in version.txt', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const data = await makeHistoryData('3.5.30', dir, NAME);
    const watcher = watchVersionFile(dir);
    const r = await cli(dir, '3.3.25', BIN_DIR, ['--log-level', 'debug']);
    const seen = await watcher.stop();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      joinedRegex(
        /step 1\/2 downgrade 3\.5\.30\/etcd3 -> 3\.4\.23\/etcd3: /,
        /[\d,]+ keys at revision [\d,]+, new member and cluster IDs, [\d.]+ s$/m,
      ),
    );
    expect(r.stderr).toMatch(
      joinedRegex(
        /step 2\/2 downgrade 3\.4\.23\/etcd3 -> 3\.3\.25\/etcd3: /,
        /[\d,]+ keys at revision [\d,]+, new member and cluster IDs, [\d.]+ s$/m,
      ),
    );
    expect(r.stderr).toMatch(/debug: step 1\/2: .*; version\.txt = 3\.4\.23\/etcd3$/m);
    expect(r.stderr).toMatch(/debug: step 2\/2: .*; version\.txt = 3\.3\.25\/etcd3$/m);
    expect(seen).toEqual(['3.5.30/etcd3', '3.4.23/etcd3', '3.3.25/etcd3']);

    // etcd 3.3.25 serves the data: same keys, values, leases, create and mod revisions.
    const after = await served('3.3.25', dir, NAME);
    expect(after.keys).toEqual(data.keys);
    expect(after.revision).toBe(data.revision);
    expect(data.keys.filter((k) => k.lease === data.lease)).toHaveLength(4);
    const m = await startEtcd('3.3.25', dir, { name: NAME });
    const ttl = await leaseTtl('3.3.25', m.endpoint, data.lease);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    await m.stop();

    // One verified backup, before the run's first step, owner-only, beside the data dir.
    const backups = `${dir}.backups`;
    expect(await modeOf(backups)).toBe(0o700);
    const files = (await fs.readdir(backups)).sort();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/-3\.5\.30-etcd3\.backup$/);
    for (const f of files) expect(await modeOf(path.join(backups, f))).toBe(0o600);
  });

  it('refuses a member of a multi-member cluster before anything changes', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await makeHistoryData('3.5.30', dir, NAME);
    const before = await treeSnapshot(dir);
    const peers = `${NAME}=http://127.0.0.1:${await freePort()},m2=http://127.0.0.1:${await freePort()}`;
    const r = await cli(dir, '3.4.23', BIN_DIR, ['--initial-cluster', peers]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /error: cannot downgrade .* multi-member cluster .*etcd-migrate backup.*etcd-migrate restore/,
    );
    expect(await treeSnapshot(dir)).toEqual(before);
  });

  // The fixture etcdctl-3.5.30 takes the real snapshot, then: dies (SIGKILL) leaving half a file,
  // or cuts the file, or changes bytes in its middle, and in the last two cases reports success.
  const LIAR = `case "$*" in *"snapshot save"*)
  "$REAL" "$@" || exit $?
  for last; do :; done
  size=$(wc -c < "$last")
  case "$FIXTURE_MODE" in
    die) head -c $((size / 2)) "$last" > "$last.x"; mv "$last.x" "$last"; kill -9 $$ ;;
    truncate) head -c $((size - 100)) "$last" > "$last.x"; mv "$last.x" "$last" ;;
    corrupt) printf 'XXXX' | dd of="$last" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null ;;
  esac
  exit 0 ;;
esac
exec "$REAL" "$@"`;

  it.each([
    ['dies with half a file', 'die', /etcdctl snapshot save .* failed: .*\(signal SIGKILL\)/],
    [
      'cuts the file and reports success',
      'truncate',
      /snapshot etcd 3\.5\.30 saved is not usable: .* damaged or truncated/,
    ],
    [
      'changes bytes and reports success',
      'corrupt',
      /snapshot etcd 3\.5\.30 saved is not usable: .* damaged or truncated/,
    ],
  ])('an etcdctl that %s leaves the data dir exactly as before the step', async (_what, mode, message) => {
    const dir = path.join(await tmpDir(), 'data');
    const data = await makeHistoryData('3.5.30', dir, NAME);
    const bin = await fixtureBinDir({ 'etcdctl-3.5.30': LIAR });
    const before = await treeSnapshot(dir);
    // 3.5.30 as the newest 3.5, which takes the snapshot (the bin dir also has 3.5.36).
    const r = await cli(dir, '3.4.23', bin, [], { FIXTURE_MODE: mode, BUNDLED_VERSIONS: '3.3.25 3.4.23 3.5.30' });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('the data dir was not changed');
    expect(r.stderr).toMatch(
      joinedRegex(
        /error: step 1\/1 \(downgrade 3\.5\.30\/etcd3 -> 3\.4\.23\/etcd3.*\) failed: /,
        /.*version\.txt says 3\.5\.30\/etcd3/s,
      ),
    );
    expect(await treeSnapshot(dir)).toEqual(before);
    if (mode === 'die') {
      // The real tools then finish the same step on the same data.
      const again = await cli(dir, '3.4.23');
      expect(again.exitCode, again.stderr).toBe(0);
      expect((await served('3.4.23', dir, NAME)).keys).toEqual(data.keys);
    }
  });
});
