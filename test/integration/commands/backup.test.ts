// `etcd-migrate backup` with the real binaries: a live member over plain HTTP and over TLS with
// client certificates, an offline data dir (left untouched), encrypted output.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, treeSnapshot } from '../../helpers/cli.ts';
import { fixtureBinDir, makeHistoryData, modeOf } from '../../helpers/fixtures.ts';
import { BIN_DIR, ENTRY, requireBinaries } from '../../helpers/env.ts';
import { findLeftoverEtcds } from '../../../src/etcd/process/leftovers.ts';
import { startEtcd } from '../../helpers/etcd.ts';
import { freePort, onCleanup, tmpDir } from '../../helpers/tmp.ts';
import { joinedRegex } from '../../helpers/regex.ts';

beforeAll(requireBinaries);

const NAME = 'm1';

/** The printed `name: value` lines. */
function printed(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
  );
}

/** What etcd's own tool says about a snapshot file. */
async function etcdutlStatus(file: string): Promise<{ hash: number; revision: number }> {
  const r = await execa(path.join(BIN_DIR, 'etcdutl-3.5.30'), ['snapshot', 'status', file, '-w', 'json']);
  return JSON.parse(r.stdout) as { hash: number; revision: number };
}

describe('etcd-migrate backup', () => {
  it('snapshots a live member and prints hash, revision, keys and size that etcd agrees with', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    const data = await makeHistoryData('3.5.30', dir, NAME);
    const m = await startEtcd('3.5.30', dir, { name: NAME });
    // Not offline while etcd runs on it.
    const busy = await runCli([
      'backup',
      path.join(root, 'busy.db'),
      '--data-dir',
      dir,
      '--bin-dir',
      BIN_DIR,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ]);
    expect(busy.exitCode).toBe(2);
    expect(busy.stderr).toMatch(
      joinedRegex(
        /etcd \(pid \d+, etcd-3\.5\.30\) is running on .* \(it holds the lock on member\/snap\/db\); /,
        /back it up with --endpoints/,
      ),
    );
    const out = path.join(root, 'snap.db');
    const r = await runCli(['backup', out, '--endpoints', m.endpoint, '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    const p = printed(r.stdout);
    const st = await etcdutlStatus(out);
    expect(p.hash).toBe(st.hash.toString(16).padStart(8, '0'));
    expect(Number(p.revision)).toBe(data.revision);
    expect(st.revision).toBe(data.revision);
    expect(p.keys).toMatch(new RegExp(`^${data.keys.length} \\(\\d+ bbolt entries\\)$`));
    expect(p.size).toMatch(new RegExp(`^${(await fs.stat(out)).size} bytes`));
    expect(await modeOf(out)).toBe(0o600);
    expect(await fs.readdir(root)).toEqual(['data', 'snap.db']);
    // It never overwrites.
    const again = await runCli(['backup', out, '--endpoints', m.endpoint, '--bin-dir', BIN_DIR]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/exists; backups are never overwritten/);
  });

  it('snapshots a live member over TLS with a client certificate', async (ctx) => {
    const root = await tmpDir();
    const pki = path.join(root, 'pki');
    await fs.mkdir(pki);
    const ssl = (args: string[]) => execa('openssl', args, { cwd: pki, reject: false });
    const ok = await ssl(['version']);
    if (ok.exitCode !== 0) ctx.skip('needs the openssl command to make test certificates');
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await ssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca']);
    await fs.writeFile(path.join(pki, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    for (const who of ['server', 'client']) {
      await ssl(['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`]);
      const s = await ssl([
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${who}.crt`,
        '-days',
        '1',
        '-extfile',
        'ext',
      ]);
      expect(s.exitCode, s.stderr).toBe(0);
    }
    const dir = path.join(root, 'data');
    const data = await makeHistoryData('3.5.30', dir, NAME);
    const [port, peer] = [await freePort(), await freePort()];
    const client = `https://127.0.0.1:${port}`;
    const etcd = execa(
      path.join(BIN_DIR, 'etcd-3.5.30'),
      [
        '--name',
        NAME,
        '--data-dir',
        dir,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        `${NAME}=http://127.0.0.1:${peer}`,
        '--cert-file',
        path.join(pki, 'server.crt'),
        '--key-file',
        path.join(pki, 'server.key'),
        '--trusted-ca-file',
        path.join(pki, 'ca.crt'),
        '--client-cert-auth',
        '--heartbeat-interval',
        '10',
        '--election-timeout',
        '100',
      ],
      { reject: false, stdio: 'ignore' },
    );
    onCleanup(async () => {
      etcd.kill('SIGKILL');
      await etcd;
    });
    const tls = [
      '--cacert',
      path.join(pki, 'ca.crt'),
      '--cert',
      path.join(pki, 'client.crt'),
      '--key',
      path.join(pki, 'client.key'),
    ];
    for (let i = 0; i < 200; i++) {
      const h = await execa(
        path.join(BIN_DIR, 'etcdctl-3.5.30'),
        ['--endpoints', client, ...tls, 'endpoint', 'health'],
        { reject: false },
      );
      if (h.exitCode === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    // Without the client certificate etcd refuses; with it the snapshot is taken.
    const refused = await runCli([
      'backup',
      path.join(root, 'no.db'),
      '--endpoints',
      client,
      '--cacert',
      path.join(pki, 'ca.crt'),
      '--bin-dir',
      BIN_DIR,
    ]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /error: cannot reach etcd at https:\/\/127\.0\.0\.1:\d+ \(.*\); check --endpoints and the TLS flags/,
    );
    await expect(fs.stat(path.join(root, 'no.db'))).rejects.toThrow(/ENOENT/);
    const out = path.join(root, 'tls.db');
    const r = await runCli(['backup', out, '--endpoints', client, ...tls, '--bin-dir', BIN_DIR]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(Number(printed(r.stdout).revision)).toBe(data.revision);
    expect((await etcdutlStatus(out)).revision).toBe(data.revision);
  });

  it('snapshots an offline data dir without changing it, on the hidden port, encrypted when asked', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    const data = await makeHistoryData('3.4.23', dir, NAME);
    const before = await treeSnapshot(dir);
    const key = path.join(root, 'key');
    await fs.writeFile(key, 'x'.repeat(64), { mode: 0o600 });
    const flags = [
      '--data-dir',
      dir,
      '--bin-dir',
      BIN_DIR,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    const plain = await runCli(['backup', path.join(root, 'plain.db'), ...flags]);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(printed(plain.stdout).keys).toMatch(new RegExp(`^${data.keys.length} `));
    expect(Number(printed(plain.stdout).revision)).toBe(data.revision);
    expect((await etcdutlStatus(path.join(root, 'plain.db'))).revision).toBe(data.revision);

    const enc = await runCli(['backup', path.join(root, 'snap.enc'), ...flags, '--backup-encryption-key-file', key]);
    expect(enc.exitCode, enc.stderr).toBe(0);
    expect(enc.stdout).toContain('(encrypted, AES-256-GCM)');
    expect(printed(enc.stdout).hash).toBe(printed(plain.stdout).hash);
    const sealed = await fs.readFile(path.join(root, 'snap.enc'));
    expect(sealed.readUInt32LE(16)).not.toBe(0xed0cdaed);
    expect(await modeOf(path.join(root, 'snap.enc'))).toBe(0o600);

    expect(await treeSnapshot(dir)).toEqual(before);
    expect((await fs.readdir(root)).sort()).toEqual(['data', 'key', 'plain.db', 'snap.enc']);
  });

  it('refuses unclear requests before doing anything', async () => {
    const root = await tmpDir();
    const cases: Array<[string[], RegExp]> = [
      [['backup'], /backup needs a file/],
      [['backup', path.join(root, 'x.db')], /needs --endpoints <client url> .* or --data-dir/],
      [
        ['backup', path.join(root, 'x.db'), '--endpoints', 'http://127.0.0.1:1', '--data-dir', root],
        /either --endpoints .* or --data-dir/,
      ],
      [['backup', path.join(root, 'x.db'), '--endpoints', 'http://127.0.0.1:1,http://127.0.0.1:2'], /one client URL/],
      [['backup', path.join(root, 'x.db'), '--data-dir', root, '--bin-dir', BIN_DIR], /holds no etcd data to back up/],
      [['backup', path.join(root, 'no', 'x.db'), '--data-dir', root], /is not a directory; create it first/],
      [
        [
          'backup',
          path.join(root, 'x.db'),
          '--endpoints',
          'http://127.0.0.1:1',
          '--backup-encryption-key-file',
          path.join(root, 'nokey'),
        ],
        /key file .* cannot be read/,
      ],
      [['backup', path.join(root, 'x.db'), '--bogus'], /unknown flag --bogus for backup/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await fs.readdir(root)).toEqual([]);
    // The default command is untouched: a positional word is still refused there.
    const d = await runCli(['backups']);
    expect(d.exitCode).toBe(2);
    expect(d.stderr).toMatch(/unexpected argument "backups"/);
  });

  // etcdctl 3.3 writes its snapshot 0644 by itself: only the umask keeps it the owner's.
  for (const [signal, code, encrypted, version] of [
    ['SIGTERM', 143, true, '3.4.23'],
    ['SIGINT', 130, false, '3.3.25'],
  ] as const) {
    const name =
      `${signal} while etcd ${version}'s snapshot is on disk${encrypted ? ' (encryption requested)' : ''}: ` +
      'owner-only temporary files, and no snapshot, member copy or etcd left behind';
    it(name, async () => {
      const root = await tmpDir();
      const dir = path.join(root, 'data');
      await makeHistoryData(version, dir, NAME);
      const key = path.join(root, 'key');
      await fs.writeFile(key, 'x'.repeat(64), { mode: 0o600 });
      const mark = path.join(await tmpDir(), 'saved');
      // etcdctl saves the snapshot for real, then says so and waits (as a slow disk would), with
      // the etcd on the member copy still running.
      const etcdctl = `"$REAL" "$@" || exit $?\ncase "$*" in *"snapshot save"*) touch ${mark}; exec sleep 60;; esac`;
      const bin = await fixtureBinDir({ [`etcdctl-${version}`]: etcdctl });
      const out = path.join(root, 'snap.db');
      const p = execa(
        process.execPath,
        [
          ENTRY,
          'backup',
          out,
          '--data-dir',
          dir,
          '--bin-dir',
          bin,
          '--port',
          String(await freePort()),
          '--peer-port',
          String(await freePort()),
          ...(encrypted ? ['--backup-encryption-key-file', key] : []),
        ],
        { reject: false, stdin: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false },
      );
      onCleanup(async () => {
        p.kill('SIGKILL');
        await p;
      });
      for (
        let i = 0;
        i < 600 &&
        !(await fs.stat(mark).then(
          () => true,
          () => false,
        ));
        i++
      ) {
        if (p.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(
        await fs.stat(mark).then(
          () => true,
          () => false,
        ),
        'the snapshot was saved',
      ).toBe(true);
      // The plaintext snapshot is there now, in temporary files that only their owner can read.
      const temps = (await fs.readdir(root)).filter((n) => n.startsWith('snap.db.'));
      expect(temps.length).toBeGreaterThan(0);
      const modes = (await Promise.all(temps.map((t) => treeSnapshot(path.join(root, t))))).flat();
      expect(modes.some((l) => l.startsWith('f '))).toBe(true);
      expect(modes.filter((l) => (parseInt(l.split(' ')[2]!, 8) & 0o077) !== 0)).toEqual([]);
      p.kill(signal);
      const r = await p;
      expect(r.exitCode, `${r.signal} ${String(r.stderr)}`).toBe(code);
      expect((await fs.readdir(root)).sort()).toEqual(['data', 'key']);
      expect(await findLeftoverEtcds(root)).toEqual([]);
    });
  }

  it('refuses a key file its group or others can read', async () => {
    const root = await tmpDir();
    const dir = path.join(root, 'data');
    await makeHistoryData('3.4.23', dir, NAME);
    const flags = [
      '--data-dir',
      dir,
      '--bin-dir',
      BIN_DIR,
      '--port',
      String(await freePort()),
      '--peer-port',
      String(await freePort()),
    ];
    for (const mode of [0o640, 0o604]) {
      const key = path.join(root, `key-${mode.toString(8)}`);
      await fs.writeFile(key, 'x'.repeat(64));
      await fs.chmod(key, mode);
      const r = await runCli(['backup', path.join(root, 'x.db'), ...flags, '--backup-encryption-key-file', key]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `key file .*key-${mode.toString(8)} is readable by (its group|everyone) \\(mode 0${mode.toString(8)}\\); ` +
            "make it the owner's only: chmod 600",
        ),
      );
    }
    expect((await fs.readdir(root)).sort()).toEqual(['data', 'key-604', 'key-640']);
  });
});
