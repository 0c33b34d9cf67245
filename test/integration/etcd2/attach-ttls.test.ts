// The attach-ttls step: the TTLs of an etcd2 -> etcd3 conversion wait in the pending file and become
// leases at the end of the chain. Interrupted anywhere (killed, or its etcd failing), a rerun still
// gives every key its TTL within 2 s, and no key loses its TTL.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChecksumBuilder, formatChecksum, kvDigest } from '../../../src/checksum.ts';
import { attachTtls } from '../../../src/etcd2/convert/leases.ts';
import { readPendingTtls, writePendingTtls } from '../../../src/etcd2/convert/pending.ts';
import type { TtlLine } from '../../../src/etcd2/convert/ttl.ts';
import { httpClient } from '../../../src/etcd/client/http.ts';
import { V3, type Op } from '../../../src/etcd/client/v3.ts';
import { parseVersion } from '../../../src/version.ts';
import { runCli } from '../../helpers/cli.ts';
import { BIN_DIR, ENTRY, requireBinaries } from '../../helpers/env.ts';
import { dumpKeys, grantLease, etcdctl, startEtcd } from '../../helpers/etcd.ts';
import { fixtureBinDir } from '../../helpers/fixtures.ts';
import { b64, k8sDataSet, writeV3, type DataKey } from '../../helpers/k8sdata.ts';
import { freePort, onCleanup, tmpDir } from '../../helpers/tmp.ts';
import { checkTtls, makeV2Data, range } from '../../helpers/ttl.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';
const PENDING = '.etcd-migrate.pending-ttls';
/**
 * The etcd that serves the data next is the test's (helpers/etcd.ts: --election-timeout 100): the tool is told, as a
 * pod's env would.
 */
const NEXT_ETCD = { ETCD_ELECTION_TIMEOUT: '100' };

/** Runs the entrypoint until `when` holds (checked every few ms), then SIGKILLs its process group (etcd too). */
async function runUntil(
  args: string[],
  when: (stderr: string) => boolean | Promise<boolean>,
): Promise<{ killed: boolean; exitCode?: number; stderr: string }> {
  const proc = execa(process.execPath, [ENTRY, ...args], {
    detached: true,
    reject: false,
    stdin: 'ignore',
    stdout: 'ignore',
    buffer: false,
    env: NEXT_ETCD,
  });
  onCleanup(async () => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => {
    stderr += c;
  });
  let exited = false;
  const done = proc.then((r) => {
    exited = true;
    return r;
  });
  let killed = false;
  while (!exited) {
    if (await when(stderr)) {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
        killed = true;
      } catch {
        /* exited meanwhile */
      }
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const r = await done;
  return { killed: killed && r.signal === 'SIGKILL', exitCode: r.exitCode, stderr };
}

/** Whether the etcd on `port` holds any lease (false while none answers). */
async function hasLeases(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/v3/lease/leases`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(500),
    });
    return r.ok && ((await r.json()) as { leases?: unknown[] }).leases !== undefined;
  } catch {
    return false;
  }
}

/** etcd 3.5.30 on the migrated data: same keys and values, a lease exactly on the TTL keys, each within 2 s. */
async function expectTtlsKept(
  dir: string,
  keys: readonly DataKey[],
  expiries: ReadonlyMap<string, number>,
  label: string,
): Promise<void> {
  expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.5.30/etcd3');
  await expect(fs.access(path.join(dir, PENDING)), 'the pending TTL file is gone').rejects.toThrow();
  const m = await startEtcd('3.5.30', dir, { name: NAME });
  const { after, wrongLease, errors } = await checkTtls(m.endpoint, keys, expiries);
  // Short keys may be due already (the data was written a while ago): every other key is there.
  const due = new Set(keys.filter((k) => k.ttl && expiries.get(k.key)! <= Date.now()).map((k) => k.key));
  expect(after.map((k) => k.key).sort()).toEqual(
    keys
      .map((k) => k.key)
      .filter((k) => !due.has(k) || after.some((a) => a.key === k))
      .sort(),
  );
  expect(wrongLease).toEqual([]);
  expect(errors.length).toBe(keys.filter((k) => k.ttl && after.some((a) => a.key === k.key)).length);
  console.log(`${label}: TTL error from ${range(errors)}`);
  expect(Math.max(...errors.map(Math.abs))).toBeLessThanOrEqual(2);
  await m.stop();
}

describe('attach-ttls at the end of the chain', () => {
  it("3 s election timeout on the exec'd etcd: leases end from ~1 s before to 3 s after the v2 expiry", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(300);
    const expiries = await makeV2Data(dir, keys, NAME);
    const r = await runCli(
      [
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        BIN_DIR,
        '--name',
        NAME,
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
      ],
      { ETCD_ELECTION_TIMEOUT: '3000' },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    // As the pod's exec starts it: its flags come after the test helper's (the last one counts).
    const m = await startEtcd('3.5.30', dir, {
      name: NAME,
      extraArgs: ['--heartbeat-interval', '300', '--election-timeout', '3000'],
    });
    const { errors, wrongLease } = await checkTtls(m.endpoint, keys, expiries);
    expect(wrongLease).toEqual([]);
    expect(errors.length).toBeGreaterThan(50);
    console.log(`election timeout 3 s: TTL error from ${range(errors)}`);
    // TTLs are whole seconds, rounded down (up to 1 s early); the election wait is up to one election timeout.
    expect(Math.min(...errors)).toBeGreaterThanOrEqual(-1.5);
    expect(Math.max(...errors)).toBeLessThanOrEqual(3.5);
  }, 120_000);

  it("cuts transactions by bytes: 1,200 2 KB events and a value near etcd's 1.5 MiB limit get leases", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const event = (i: number) => JSON.stringify({ kind: 'Event', i, message: 'x'.repeat(2000) });
    const keys: DataKey[] = [
      ...Array.from({ length: 1200 }, (_, i) => ({ key: `/registry/events/ns/e-${i}`, value: event(i), ttl: 3600 })),
      { key: '/registry/configmaps/ns/big', value: 'b'.repeat(1_400_000), ttl: 7200 },
    ];
    const expiries = await makeV2Data(dir, keys, NAME);
    const r = await runCli(
      [
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        BIN_DIR,
        '--name',
        NAME,
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
      ],
      NEXT_ETCD,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /step 3\/3 attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: 1,201 keys on \d+ leases?, [\d.]+ s$/m,
    );
    await expectTtlsKept(dir, keys, expiries, 'large values');
  }, 120_000);

  it('killed after conversion, then while granting leases: the rerun gives every key its TTL within 2 s', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(2000);
    const expiries = await makeV2Data(dir, keys, NAME);
    const port = await freePort();
    const args = [
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(port),
      '--peer-port',
      String(await freePort()),
    ];

    // 1. Killed as soon as the conversion is recorded: the keys are in etcd3, their TTLs only in the pending file.
    const first = await runUntil(args, (err) => /^etcd-migrate: step 1\/3 convert .*, [\d.]+ s$/m.test(err));
    expect(first.killed, first.stderr).toBe(true);
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toMatch(/^3\.(3\.25|4\.23)\/etcd3$/);
    expect((await fs.readFile(path.join(dir, PENDING), 'utf8')).split('\n').filter(Boolean)).toHaveLength(
      expiries.size + 1,
    );

    // 2. The rerun plans the rest of the chain and the attach from the pending file alone (with the
    // upgrade to 3.5.30: its etcd starts on the 3.4.23 data); killed once the attach's etcd holds a
    // lease (granted, keys maybe attached, the file not yet removed).
    const second = await runUntil(args, async (err) => /-> 3\.4\.23\/etcd3: [\d.]+ s$/m.test(err) && hasLeases(port));
    expect(second.stderr).not.toMatch(/upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3/);
    expect(second.killed || second.exitCode === 0, second.stderr).toBe(true);
    const pendingLeft = await fs.access(path.join(dir, PENDING)).then(
      () => true,
      () => false,
    );
    console.log(
      `second run: ${second.killed ? 'killed' : 'completed'}; ` +
        `pending TTL file ${pendingLeft ? 'still there' : 'removed'}`,
    );

    // 3. Completes.
    const third = await runCli(args, NEXT_ETCD);
    expect(third.exitCode, third.stderr).toBe(0);
    if (pendingLeft)
      expect(third.stderr).toMatch(
        joinedRegex(
          /step 1\/1 attach TTLs 3\.(4\.23|5\.30)\/etcd3 -> 3\.5\.30\/etcd3: /,
          /[\d,]+ keys? on [\d,]+ leases?(, [\d,]+ keys? expired)?, [\d.]+ s$/m,
        ),
      );
    await expectTtlsKept(dir, keys, expiries, 'after two kills');
  }, 120_000);

  it('finds a write of an outside etcd that only its WAL holds (killed before its backend committed)', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(300);
    await makeV2Data(dir, keys, NAME);
    const args = [
      '--data-dir',
      dir,
      '--target-version',
      '3.4.23',
      '--bin-dir',
      BIN_DIR,
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    const first = await runUntil(args, (err) => /^etcd-migrate: step 1\/2 convert .*, [\d.]+ s$/m.test(err));
    expect(first.killed, first.stderr).toBe(true);
    // An etcd 3.4.23 that commits its backend only every 10 minutes, and never here: one put, then SIGKILL.
    const m = await startEtcd('3.4.23', dir, {
      name: NAME,
      extraArgs: ['--backend-batch-interval', '10m', '--backend-batch-limit', '1000000'],
    });
    await etcdctl('3.4.23', m.endpoint, ['put', '/registry/outside', 'x']);
    await m.kill();
    const r = await runCli(args, NEXT_ETCD);
    expect(r.exitCode, r.stderr).toBe(1);
    const m2 =
      /the keyspace is not as the etcd2 -> etcd3 conversion left it: expected keys=(\d+) .*, found keys=(\d+) /.exec(
        r.stderr,
      );
    expect(m2, r.stderr).not.toBeNull();
    expect(Number(m2![2])).toBe(Number(m2![1]) + 1);
  }, 60_000);

  /**
   * A bin dir whose etcd 3.5.30 fails the attach step's start (the only one with --max-txn-ops on the live data dir)
   * once.
   */
  async function attachFailsOnce(): Promise<string> {
    const marker = path.join(await tmpDir(), 'failed-once');
    return fixtureBinDir({
      'etcd-3.5.30':
        `case "$*" in *--max-txn-ops*) if [ ! -e ${marker} ]; then touch ${marker}; ` +
        'echo "injected failure" >&2; exit 3; fi;; esac\nexec "$REAL" "$@"',
    });
  }

  it('attach fails in the converting run: etcd2 backup put back, TTLs stale; rerun converts and attaches', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(1000);
    const expiries = await makeV2Data(dir, keys, NAME);
    const args = [
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      await attachFailsOnce(),
      '--name',
      NAME,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];

    const failed = await runCli(args, NEXT_ETCD);
    expect(failed.exitCode, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/restored the data dir from the backup .*\(version\.txt = 3\.3\.25\/etcd2\)/);
    expect(failed.stderr).toMatch(
      joinedRegex(
        /step 3\/3 \(attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: .*\) failed: /,
        /etcd 3\.5\.30 exited before a write committed \(exit code 3\)/s,
      ),
    );
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.3.25/etcd2');
    await fs.access(path.join(dir, PENDING));

    const again = await runCli(args, NEXT_ETCD);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/step 1\/3 convert 3\.3\.25\/etcd2 -> 3\.3\.25\/etcd3: .+, [\d.]+ s$/m);
    // No key expired since the conversion: the line names none.
    expect(again.stderr).toMatch(
      /step 3\/3 attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d,]+ keys? on [\d,]+ leases?, [\d.]+ s$/m,
    );
    await expectTtlsKept(dir, keys, expiries, 'after a failed attach, converted again');
  }, 120_000);

  it('attach fails in a run begun with pending TTLs: data stays 3.4.23 with TTLs pending; rerun attaches', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(1000);
    const expiries = await makeV2Data(dir, keys, NAME);
    const port = ['--port', String(await freePort()), '--peer-port', String(await freePort())];
    const args = (bin: string) => [
      '--data-dir',
      dir,
      '--target-version',
      '3.5.30',
      '--bin-dir',
      bin,
      '--name',
      NAME,
      ...port,
    ];
    // Killed once the upgrade to 3.4.23 is recorded, before the attach's etcd (3.5.30, the last upgrade too) starts.
    const first = await runUntil(args(BIN_DIR), (err) => /-> 3\.4\.23\/etcd3: [\d.]+ s$/m.test(err));
    expect(first.killed, first.stderr).toBe(true);
    const bin = await attachFailsOnce();

    const failed = await runCli(args(bin), NEXT_ETCD);
    expect(failed.exitCode, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(
      joinedRegex(
        /step 1\/1 \(attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: .*\) failed: /,
        /etcd 3\.5\.30 exited before a write committed \(exit code 3\).*version\.txt says 3\.4\.23\/etcd3/s,
      ),
    );
    expect(await fs.readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('3.4.23/etcd3');
    await fs.access(path.join(dir, PENDING));

    const again = await runCli(args(bin), NEXT_ETCD);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/step 1\/1 attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: .+, [\d.]+ s$/m);
    await expectTtlsKept(dir, keys, expiries, 'after a failed attach on its own');
  }, 120_000);

  it("as a pod sees it: the exec'd etcd, with the default election timeout, serves every TTL within 2 s", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys = k8sDataSet(1000);
    const expiries = await makeV2Data(dir, keys, NAME);
    const client = `http://127.0.0.1:${await freePort()}`;
    const peer = `http://127.0.0.1:${await freePort()}`;
    // etcd's own flags as a manifest gives them: no --election-timeout (1000 ms), which etcd adds to
    // every lease when it becomes leader; the attach step grants that much less.
    const pod = execa(
      process.execPath,
      [
        ENTRY,
        '--data-dir',
        dir,
        '--target-version',
        '3.5.30',
        '--bin-dir',
        BIN_DIR,
        '--name',
        NAME,
        '--port',
        String(await freePort()),
        '--peer-port',
        String(await freePort()),
        '--',
        '--name',
        NAME,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `${NAME}=${peer}`,
      ],
      { reject: false, stdin: 'ignore', all: true, env: { LOG_LEVEL: 'debug' } },
    );
    onCleanup(async () => {
      pod.kill('SIGTERM');
      await pod;
    });
    for (let i = 0; (await etcdctl('3.5.30', client, ['endpoint', 'health'], { reject: false })).exitCode !== 0; i++) {
      if (pod.exitCode !== null || i > 1500) throw new Error(`etcd did not serve: ${(await pod).all}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const { after, wrongLease, errors } = await checkTtls(client, keys, expiries);
    expect(after).toHaveLength(keys.length);
    expect(wrongLease).toEqual([]);
    expect(errors).toHaveLength(expiries.size);
    console.log(`exec'd etcd, default election timeout: TTL error from ${range(errors)}`);
    expect(Math.max(...errors.map(Math.abs))).toBeLessThanOrEqual(2);
    await expect(fs.access(path.join(dir, PENDING))).rejects.toThrow();
    pod.kill('SIGTERM');
    const r = await pod;
    expect(String(r.all)).toMatch(/^etcd-migrate: step 3\/3 attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: /m);
    const short = joinedRegex(
      /^etcd-migrate: debug: step 3\/3: .*granted [\d.]+ s before the end of this step; /,
      /.*each is ([\d.]+) s shorter for the target etcd's election timeout and start/m,
    ).exec(String(r.all));
    expect(short, String(r.all)).not.toBeNull();
    expect(Number(short![1])).toBeGreaterThan(1);
  }, 120_000);

  it('--dry-run shows the attach step for pending TTLs and changes nothing', async () => {
    const dir = path.join(await tmpDir(), 'data');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'version.txt'), '3.4.23/etcd3');
    await fs.mkdir(path.join(dir, 'member'));
    await fs.writeFile(
      path.join(dir, PENDING),
      '#etcd-migrate pending TTLs v1\t0\t0\t0000000000000000\t0000000000000000\n',
    );
    const r = await runCli(['--data-dir', dir, '--target-version', '3.5.30', '--bin-dir', BIN_DIR, '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      joinedRegex(
        /1\. attach TTLs 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: /,
        /start etcd 3\.5\.30 \(the upgrade to it\) and give every key/,
      ),
    );
    expect(r.stdout).not.toMatch(/2\. /);
  });
});

describe('attachTtls (on a running etcd 3.5.30)', () => {
  const v = parseVersion('3.5.30');

  /** Keys without a lease, as a conversion leaves them, and the pending file for those with a TTL. */
  async function converted(endpoint: string, keys: readonly DataKey[], expiresAt: (k: DataKey) => number) {
    await writeV3(
      endpoint,
      keys.map((k) => ({ key: k.key, value: k.value })),
    );
    const sum = new ChecksumBuilder();
    const lines: TtlLine[] = [];
    for (const k of keys) {
      sum.add(k.key, k.value, k.ttl !== undefined);
      if (k.ttl !== undefined) lines.push([expiresAt(k), b64(k.key), kvDigest(k.key, k.value), b64(k.value)]);
    }
    const file = path.join(await tmpDir(), 'pending');
    await writePendingTtls(
      file,
      sum.digest(),
      (async function* () {
        yield* lines;
      })(),
    );
    return { file, expected: sum.digest() };
  }

  /** A V3 client whose transactions fail after `n` attach batches: a crash in the middle of the attach. */
  class Interrupted extends V3 {
    private left: number;
    constructor(endpoint: string, n: number) {
      super(httpClient(endpoint), v);
      this.left = n;
    }
    override async txn(ops: readonly Op[]): Promise<void> {
      // Counts the batches of puts onto a lease: the timed pass's (onto the one lease that outlives every key), then
      // the attach's.
      if (ops.some((o) => 'request_put' in o && o.request_put.lease !== '0') && this.left-- <= 0)
        throw new Error('killed');
      return super.txn(ops);
    }
  }

  it('is idempotent: crashed half way, etcd restarted, a rerun gives each key one lease for what is left', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const keys: DataKey[] = Array.from({ length: 300 }, (_, i) => ({
      key: `/registry/events/e${i}`,
      value: `{"n":${i}}`,
      ...(i % 3 ? { ttl: 600 + (i % 40) * 60 } : {}),
    }));
    let m = await startEtcd('3.5.30', dir, { name: NAME });
    const t0 = Date.now();
    const { file, expected } = await converted(m.endpoint, keys, (k) => t0 + k.ttl! * 1000);

    // 200 keys with a TTL, 10 per batch: the timed pass's 20 batches, then 3 of the attach.
    await expect(
      attachTtls(new Interrupted(m.endpoint, 20 + 3), await readPendingTtls(file), { opsPerTxn: 10 }),
    ).rejects.toThrow('killed');
    const half = await dumpKeys('3.5.30', m.endpoint);
    const byLease = new Map<string, number>();
    for (const k of half) if (k.lease !== '0') byLease.set(k.lease, (byLease.get(k.lease) ?? 0) + 1);
    // Every key with a TTL on a lease: 30 on their own already, the others still on the timed pass's.
    expect([...byLease.values()].reduce((a, b) => a + b, 0)).toBe(200);
    expect(Math.max(...byLease.values())).toBe(170);

    // etcd restarts (every lease back to its full TTL), then the rerun.
    await m.stop();
    m = await startEtcd('3.5.30', dir, { name: NAME });
    const r = await attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file), { opsPerTxn: 10 });
    expect(formatChecksum(r.after)).toBe(formatChecksum(expected));
    expect(r.expired).toBe(0);
    const after = await dumpKeys('3.5.30', m.endpoint);
    expect(after.map((k) => [k.key, k.value]).sort()).toEqual(keys.map((k) => [k.key, k.value]).sort());
    const byKey = new Map(after.map((k) => [k.key, k.lease]));
    const ids = new Set<string>();
    for (const k of keys) {
      expect(byKey.get(k.key) !== '0', k.key).toBe(k.ttl !== undefined);
      if (k.ttl) ids.add(byKey.get(k.key)!);
    }
    // One lease per whole second left, each ending within 2 s of the key's expiry.
    expect(ids.size).toBe(r.leases);
    for (const k of keys.filter((x) => x.ttl)) {
      const left = JSON.parse(
        (await etcdctl('3.5.30', m.endpoint, ['lease', 'timetolive', byKey.get(k.key)!, '-w', 'json'])).stdout,
      ).ttl as number;
      expect(Math.abs(Date.now() + left * 1000 - (t0 + k.ttl! * 1000)), k.key).toBeLessThanOrEqual(2000);
      if (ids.delete(byKey.get(k.key)!) && ids.size === 0) break;
    }
  }, 60_000);

  it('puts each key with the value recorded, checked first: one not matching its digest is not written', async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { name: NAME });
    const keys: DataKey[] = Array.from({ length: 30 }, (_, i) => ({
      key: `/registry/events/e${i}`,
      value: `{"n":${i}}`,
      ttl: 600,
    }));
    const now = Date.now();
    const { file } = await converted(m.endpoint, keys, () => now + 600_000);
    // The 21st key's value in the file replaced by another of the same length.
    const text = (await fs.readFile(file, 'latin1')).split('\n');
    text[21] = text[21]!.replace(/\t[^\t]+$/, `\t${b64('{"n":99}')}`);
    await fs.writeFile(file, text.join('\n'), 'latin1');
    const err = await attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file), {
      opsPerTxn: 10,
    }).catch((e: Error) => e);
    expect(String(err)).toMatch(
      joinedRegex(
        /the pending TTL file is damaged: the value of the key "\/registry\/events\/e20" /,
        /does not match the digest the conversion recorded; no value of it was written/,
      ),
    );
    expect(String(err)).not.toMatch(/"n":/);
    const after = await dumpKeys('3.5.30', m.endpoint);
    expect(after.map((k) => [k.key, k.value]).sort()).toEqual(keys.map((k) => [k.key, k.value]).sort());
  });

  it("attaches from an earlier build's pending file (v1, no values) with ignore_value: every value kept", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { name: NAME });
    const keys: DataKey[] = Array.from({ length: 20 }, (_, i) => ({
      key: `/registry/events/e${i}`,
      value: `{"n":${i}}`,
      ...(i % 2 ? { ttl: 600 } : {}),
    }));
    const now = Date.now();
    const { file, expected } = await converted(m.endpoint, keys, () => now + 600_000);
    const text = (await fs.readFile(file, 'latin1')).split('\n').filter(Boolean);
    const v1 = [
      text[0]!.replace('pending TTLs v2', 'pending TTLs v1'),
      ...text.slice(1).map((l) => l.split('\t').slice(0, 3).join('\t')),
    ];
    await fs.writeFile(file, `${v1.join('\n')}\n`, 'latin1');
    const r = await attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file));
    expect(formatChecksum(r.after)).toBe(formatChecksum(expected));
    const after = await dumpKeys('3.5.30', m.endpoint);
    expect(after.map((k) => [k.key, k.value]).sort()).toEqual(keys.map((k) => [k.key, k.value]).sort());
    expect(after.filter((k) => k.lease !== '0').length).toBe(10);
  });

  it("deletes a key due within the next etcd's minimum TTL; others get the rest less what that etcd adds", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { name: NAME });
    const keys: DataKey[] = [
      { key: '/registry/events/soon', value: 'e1', ttl: 1 },
      { key: '/registry/events/later', value: 'e2', ttl: 600 },
    ];
    const now = Date.now();
    const { file } = await converted(m.endpoint, keys, (k) => now + (k.ttl === 1 ? 1200 : 600_000));
    // As for a target etcd with the default 1000 ms election timeout: a lease ends 1 s later, lasts at
    // least 2 s, and the election may take up to 1 s: a key due within 2 s goes (never earlier).
    const r = await attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file), {
      extendMs: 1000,
      minTtl: 2,
      electionWaitMs: 1000,
    });
    expect(r.dueSoon).toBe(1);
    expect(r.dueWithinMs).toBe(2000);
    expect(r.expired).toBe(0);
    expect(r.after).toMatchObject({ keys: 1, ttlKeys: 1 });
    const after = await dumpKeys('3.5.30', m.endpoint);
    expect(after.map((k) => k.key)).toEqual(['/registry/events/later']);
    const left = JSON.parse(
      (await etcdctl('3.5.30', m.endpoint, ['lease', 'timetolive', after[0]!.lease, '-w', 'json'])).stdout,
    ).ttl as number;
    // 600 s from the start, less 1 s for the election timeout, less the attach time, rounded down.
    expect(left).toBeGreaterThanOrEqual(596);
    expect(left).toBeLessThanOrEqual(599);
  });

  it("removed by an earlier attempt's lease just before expiry: expired; missing long before it: a loss", async () => {
    const dir = path.join(await tmpDir(), 'data');
    const m = await startEtcd('3.5.30', dir, { name: NAME });
    const keys: DataKey[] = [
      { key: '/registry/pods/p', value: 'pod' },
      { key: '/registry/events/soon', value: 'e1', ttl: 2 },
      { key: '/registry/events/later', value: 'e2', ttl: 3600 },
    ];
    await writeV3(m.endpoint, keys);
    // The lease of an "earlier attempt" runs out on /soon before the key is due.
    const lease = await grantLease('3.5.30', m.endpoint, 1);
    await etcdctl('3.5.30', m.endpoint, ['put', '/registry/events/soon', 'e1', '--lease', lease]);
    for (
      let i = 0;
      i < 100 && (await dumpKeys('3.5.30', m.endpoint)).some((k) => k.key === '/registry/events/soon');
      i++
    )
      await new Promise((r) => setTimeout(r, 50));
    const now = Date.now();
    const sum = new ChecksumBuilder();
    for (const k of keys) sum.add(k.key, k.value, k.ttl !== undefined);
    const file = path.join(await tmpDir(), 'pending');
    const line = (k: DataKey, exp: number): TtlLine => [exp, b64(k.key), kvDigest(k.key, k.value), b64(k.value)];
    await writePendingTtls(
      file,
      sum.digest(),
      (async function* () {
        yield line(keys[1]!, now + 1500);
        yield line(keys[2]!, now + 3_600_000);
      })(),
    );
    const r = await attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file));
    expect(r.expired).toBe(1);
    expect(r.after.keys).toBe(2);
    expect(r.after.ttlKeys).toBe(1);

    // Now /later is gone an hour before its expiry: refused, naming the way out.
    await etcdctl('3.5.30', m.endpoint, ['del', '/registry/events/later']);
    await expect(attachTtls(new V3(httpClient(m.endpoint), v), await readPendingTtls(file))).rejects.toThrow(
      joinedRegex(
        /the keyspace is not as the etcd2 -> etcd3 conversion left it/,
        /.*delete the pending TTL file to keep the data without its TTLs/,
      ),
    );
  }, 60_000);
});
