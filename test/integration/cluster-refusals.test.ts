// What a cluster member (or a TLS setup) cannot do is refused before anything changes: one line,
// exit 2, the data dir's tree unchanged.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { makeCerts } from '../helpers/certs.ts';
import { runCli, treeSnapshot } from '../helpers/cli.ts';
import { freePort, tmpDir } from '../helpers/tmp.ts';
import { joinedRegex } from '../helpers/regex.ts';

beforeAll(requireBinaries);

interface Case {
  name: string;
  version: string;
  args: (root: string) => Promise<string[]>;
  env?: (root: string) => Promise<Record<string, string>>;
  message: RegExp;
}

const cluster = async () =>
  `m1=http://127.0.0.1:${await freePort()},m2=http://127.0.0.1:${await freePort()},` +
  `m3=http://127.0.0.1:${await freePort()}`;
const none = async () => [];
const made = new Map<string, ReturnType<typeof makeCerts>>();
/** One set of certificates per test (root), made on first use. */
const certs = (root: string, o: Parameters<typeof makeCerts>[2] = {}) => {
  if (!made.has(root)) made.set(root, makeCerts(path.join(root, 'certs'), ['m1', 'client'], o));
  return made.get(root)!;
};
const serverCreds = (c: Awaited<ReturnType<typeof certs>>, auth = true) =>
  `--cert-file=${c.crt('m1')} --key-file=${c.key('m1')}${auth ? ` --trusted-ca-file=${c.ca} --client-cert-auth` : ''}`;
const clientArgs = (c: Awaited<ReturnType<typeof certs>>) => [
  '--client-ca-file',
  c.ca,
  '--client-cert-file',
  c.crt('client'),
  '--client-key-file',
  c.key('client'),
];

const cases: Case[] = [
  {
    name: 'v2 -> v3 on a cluster',
    version: '3.3.25/etcd2',
    args: async () => ['--initial-cluster', await cluster()],
    message: joinedRegex(
      /the plan to 3\.5\.30\/etcd3 holds a storage conversion \(convert 3\.3\.25\/etcd2 -> 3\.3\.25\/etcd3\), /,
      /which a member of a 3-member cluster \(INITIAL_CLUSTER\) cannot run on its own; /,
      /stop the cluster, .*--force-new-cluster.*docs\/clusters\.md\)/,
    ),
  },
  {
    name: 'a downgrade on a cluster',
    version: '3.5.30/etcd3',
    args: async () => ['--initial-cluster', await cluster(), '--target-version', '3.4.23'],
    message: joinedRegex(
      /cannot downgrade 3\.5\.30\/etcd3 -> 3\.4\.23\/etcd3 for a member of a multi-member cluster /,
      /.*restore it on every member with "etcd-migrate restore"/,
    ),
  },
  {
    name: 'a rollback to etcd2 on a cluster',
    version: '3.3.25/etcd3',
    args: async () => ['--initial-cluster', await cluster(), '--target-version', '3.3.25', '--target-storage', 'etcd2'],
    message: /holds a storage conversion \(roll back 3\.3\.25\/etcd3 -> 3\.3\.25\/etcd2\)/,
  },
  {
    name: 'a server certificate in ETCD_CREDS without --client-ca-file',
    version: '3.4.23/etcd3',
    args: none,
    env: async (r) => ({ ETCD_CREDS: serverCreds(await certs(r), false) }),
    message: /ETCD_CREDS gives --cert-file, so the temporary etcd serves https on 127\.0\.0\.1; pass --client-ca-file/,
  },
  {
    name: 'client certificates checked but none given',
    version: '3.4.23/etcd3',
    args: async (r) => ['--client-ca-file', (await certs(r)).ca],
    env: async (r) => ({ ETCD_CREDS: serverCreds(await certs(r)) }),
    message: /pass --client-cert-file and --client-key-file/,
  },
  {
    name: 'client options without a server certificate',
    version: '3.4.23/etcd3',
    args: async (r) => clientArgs(await certs(r)),
    message: /ETCD_CREDS has no --cert-file\/--key-file, so the temporary etcd serves plain http/,
  },
  {
    name: 'a client certificate without its key (env)',
    version: '3.4.23/etcd3',
    args: none,
    env: async () => ({
      CLIENT_CERT_FILE: '/c.crt',
      CLIENT_CA_FILE: '/ca.crt',
      ETCD_CREDS: '--cert-file=/s.crt --key-file=/s.key',
    }),
    message: /--client-cert-file is given without --client-key-file; give both/,
  },
  {
    name: '--auto-tls in ETCD_CREDS',
    version: '3.4.23/etcd3',
    args: none,
    env: async () => ({ ETCD_CREDS: '--auto-tls' }),
    message: /ETCD_CREDS has --auto-tls/,
  },
  {
    name: 'a server certificate for another name',
    version: '3.4.23/etcd3',
    args: async (r) => clientArgs(await certs(r, { san: 'DNS:etcd.example' })),
    env: async (r) => ({ ETCD_CREDS: serverCreds(await certs(r, { san: 'DNS:etcd.example' })) }),
    message: /names neither 127\.0\.0\.1 nor localhost.*add IP:127\.0\.0\.1/,
  },
  {
    name: 'a server certificate without client auth while clients are checked',
    version: '3.4.23/etcd3',
    args: async (r) => clientArgs(await certs(r, { usage: 'serverAuth' })),
    env: async (r) => ({ ETCD_CREDS: serverCreds(await certs(r, { usage: 'serverAuth' })) }),
    message: /does not allow client auth.*extendedKeyUsage serverAuth,clientAuth/,
  },
  {
    name: 'an unreadable CA file',
    version: '3.4.23/etcd3',
    args: async (r) => [...clientArgs(await certs(r)), '--client-ca-file', path.join(r, 'no-ca.crt')],
    env: async (r) => ({ ETCD_CREDS: serverCreds(await certs(r)) }),
    message: /the CA file .*no-ca\.crt \(--client-ca-file\) cannot be read \(ENOENT\)/,
  },
  {
    name: 'a step timeout of 0',
    version: '3.4.23/etcd3',
    args: async () => ['--step-timeout', '0'],
    message: /--step-timeout must be a number of seconds above 0/,
  },
  {
    name: 'a step timeout that is not a number (env)',
    version: '3.4.23/etcd3',
    args: none,
    env: async () => ({ STEP_TIMEOUT: 'soon' }),
    message: /STEP_TIMEOUT must be a number of seconds above 0 \(got soon\)/,
  },
];

describe('refused before anything changes', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const root = await tmpDir();
    const dataDir = path.join(root, 'data');
    await fs.mkdir(path.join(dataDir, 'member/snap'), { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(dataDir, 'member/snap/db'), Buffer.alloc(4096, 7), { mode: 0o600 });
    await fs.writeFile(path.join(dataDir, 'version.txt'), c.version);
    const before = await treeSnapshot(dataDir);
    const r = await runCli(
      [
        '--data-dir',
        dataDir,
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
        ...(await c.args(root)),
      ],
      (await c.env?.(root)) ?? {},
    );
    expect(r.exitCode, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^etcd-migrate: error: /);
    expect(lines[0]).toMatch(c.message);
    expect(await treeSnapshot(dataDir)).toEqual(before);
  });
});
