// 200 SIGKILLs at random moments of 3.3.25/etcd2 (Kubernetes-shaped keys, a quarter with TTLs) ->
// 3.5.30/etcd3, rerunning until each copy converges; prints how many kills, episodes, violations
// and whether every copy converged.
// Run: node bench/torture.ts [kills] [seed]   (Node 24: node_modules/.bin/node; make etcd-bin first)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN_DIR } from '../test/helpers/env.ts';
import { k8sDataSet, writeV2 } from '../test/helpers/k8sdata.ts';
import { checkStorage, copier, torture } from '../test/helpers/torture.ts';
// @ts-expect-error: a plain .mjs build script without types
import { bundle } from '../scripts/build.mjs';

const kills = Number(process.argv[2] ?? 200);
const seed = Number(process.argv[3] ?? Date.now() % 100000);
await (bundle as () => Promise<void>)();
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-torture-'));
const pristine = path.join(root, 'pristine');
const [client, peer] = ['http://127.0.0.1:10479', 'http://127.0.0.1:10480'];
const etcd = execa(
  path.join(BIN_DIR, 'etcd-3.3.25'),
  [
    '--name',
    'm1',
    '--data-dir',
    pristine,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `m1=${peer}`,
    '--heartbeat-interval',
    '10',
    '--election-timeout',
    '100',
  ],
  { reject: false },
);
const ctl = (...a: string[]) =>
  execa(path.join(BIN_DIR, 'etcdctl-3.3.25'), ['--endpoints', client, ...a], {
    env: { ETCDCTL_API: '3' },
    reject: false,
  });
while ((await ctl('endpoint', 'health')).exitCode !== 0) await new Promise((r) => setTimeout(r, 20));
await writeV2(client, k8sDataSet(200));
etcd.kill('SIGTERM');
await etcd;
await fs.writeFile(path.join(pristine, 'version.txt'), '3.3.25/etcd2');

const freshDataDir = copier(pristine, root);
const args = (dir: string) => [
  '--data-dir',
  dir,
  '--target-version',
  '3.5.30',
  '--bin-dir',
  BIN_DIR,
  '--name',
  'm1',
  '--port',
  '10481',
  '--peer-port',
  '10482',
];
const t0 = Date.now();
await execa(process.execPath, ['dist/etcd-migrate.mjs', ...args(await freshDataDir())]);
const full = Date.now() - t0;
const r = await torture({ freshDataDir, args, kills, seed, maxDelayMs: full, check: checkStorage });
console.log(
  `torture: ${r.kills} kills (${r.orphans} orphaning the temporary etcd) ` +
    `over ${r.episodes} copies in ${r.runs} runs; ` +
    `kill moments in [0, ${full} ms); seed ${seed}; violations: ${r.violations.length}; ` +
    `last copy converged: ${r.converged}; ` +
    `${r.converged && r.violations.length === 0 ? `${r.episodes}/${r.episodes} copies converged` : 'FAILED'}`,
);
for (const v of r.violations) console.log(`  ${v}`);
await fs.rm(root, { recursive: true, force: true });
process.exit(r.converged && r.violations.length === 0 ? 0 : 1);
