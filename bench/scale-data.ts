// Issue 19's data: etcd 3.5.30 data dirs of about 1, 4 and 8 GB, written through etcd.
//   node bench/scale-data.ts <out-dir> 1 4 8
// Makes <out-dir>/gb-<n> for each size (GB of bbolt db), growing one data dir and copying it aside
// at each size; an existing gb-<n> (with its version.txt) is kept, so a rerun reuses the data.
// Keys like Kubernetes' (/registry/<resource>/<namespace>/<name>), values like its objects: 2-16 KB
// of JSON with names, uids, labels and one random blob (zstd level 1 takes them to about a third).
// Some history: a tenth of the keys written twice, one in fifty deleted; no compaction.
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { bin, flags, untilWrite } from './lib.ts';

const QUOTA = 9 * 1024 ** 3;
const base = Number(process.env.BENCH_PORT_BASE ?? 27100);
const [port, peer] = [base, base + 1];
const url = `http://127.0.0.1:${port}`;
const RESOURCES = ['pods', 'services', 'configmaps', 'secrets', 'events', 'deployments', 'replicasets', 'leases'];

/** An object of about `size` bytes: mostly structure, one random part. */
export function objectValue(i: number, size: number): Buffer {
  const blob = crypto.randomBytes(Math.floor(size / 5)).toString('base64');
  const labels = Object.fromEntries(
    Array.from({ length: 6 }, (_, j) => [`app.kubernetes.io/l${j}`, `value-${(i * 7 + j) % 97}`]),
  );
  const spec = Array.from({ length: Math.max(1, Math.floor(size / 400)) }, (_, j) => ({
    name: `container-${j}`,
    image: `registry.k8s.io/app-${j % 5}:v1.${i % 30}.0`,
    imagePullPolicy: 'IfNotPresent',
    resources: { requests: { cpu: '100m', memory: '128Mi' } },
    terminationMessagePath: '/dev/termination-log',
  }));
  return Buffer.from(
    JSON.stringify({
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: `obj-${i}`,
        namespace: `ns-${i % 50}`,
        uid: crypto.randomUUID(),
        resourceVersion: String(i),
        labels,
      },
      spec: { containers: spec },
      status: { phase: 'Running', podIP: `10.${i % 250}.${(i >> 8) % 250}.${i % 200}` },
      annotations: { 'example.com/blob': blob },
    }),
  );
}

const keyOf = (i: number): string => `/registry/${RESOURCES[i % RESOURCES.length]}/ns-${i % 50}/obj-${i}`;
const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64');

async function txn(ops: object[]): Promise<void> {
  const r = await fetch(`${url}/v3/kv/txn`, { method: 'POST', body: JSON.stringify({ success: ops }) });
  if (!r.ok) throw new Error(`txn: ${r.status} ${await r.text()}`);
}

/** Writes objects until the db holds `bytes`; returns the next object number. */
async function fillTo(bytes: number, from: number): Promise<number> {
  let next = from;
  // In use, not the file's size: bbolt grows its file ahead of the data, with zeros.
  const size = async () => {
    const r = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    return Number(((await r.json()) as { dbSizeInUse: string }).dbSizeInUse);
  };
  const worker = async () => {
    while ((await size()) < bytes) {
      const batch = Array.from({ length: 50 }, () => next++);
      const ops: object[] = batch.map((i) => ({
        request_put: { key: b64(keyOf(i)), value: b64(objectValue(i, 2048 + ((i * 2654435761) % 14336))) },
      }));
      // History: every tenth object is written again, every fiftieth deleted.
      for (const i of batch) {
        if (i % 10 === 5)
          if (i >= 5000) ops.push({ request_put: { key: b64(keyOf(i - 5000)), value: b64(objectValue(i, 4096)) } });
        if (i % 50 === 25 && i >= 20000) ops.push({ request_delete_range: { key: b64(keyOf(i - 20000)) } });
      }
      await txn(ops);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return next;
}

export const scaleDir = (out: string, gb: number): string => path.join(out, `gb-${gb}`);
const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => false,
  );

export async function makeScaleData(out: string, sizes: number[]): Promise<void> {
  const work = path.join(out, 'filling');
  await fs.rm(work, { recursive: true, force: true });
  let next = 0;
  for (const gb of [...sizes].sort((a, b) => a - b)) {
    const dir = scaleDir(out, gb);
    if (await exists(path.join(dir, 'version.txt'))) continue;
    if (!(await exists(work))) {
      const prev = (await fs.readdir(out))
        .filter((n) => /^gb-\d+$/.test(n))
        .map((n) => Number(n.slice(3)))
        .filter((n) => n < gb)
        .sort((a, b) => b - a)[0];
      if (prev !== undefined) await fs.cp(scaleDir(out, prev), work, { recursive: true });
      next = prev !== undefined ? Number(await fs.readFile(`${scaleDir(out, prev)}.next`, 'utf8')) : 0;
    }
    const t0 = performance.now();
    const etcd = execa(
      bin('etcd', '3.5.30'),
      [
        ...flags('m1', work, port, peer),
        '--quota-backend-bytes',
        String(QUOTA),
        '--max-request-bytes',
        String(8 << 20),
        '--snapshot-count',
        '500',
      ],
      { reject: false, stdio: 'ignore' },
    );
    await untilWrite(port, '/v3', 60_000);
    next = await fillTo(gb * 1e9, next);
    etcd.kill('SIGTERM');
    await etcd;
    await fs.writeFile(path.join(work, 'version.txt'), '3.5.30/etcd3');
    await fs.cp(work, dir, { recursive: true });
    await fs.writeFile(`${dir}.next`, String(next));
    process.stderr.write(`gb-${gb}: ${next} objects written, in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  await fs.rm(work, { recursive: true, force: true });
}

if (import.meta.filename === path.resolve(process.argv[1] ?? '')) {
  const [out, ...sizes] = process.argv.slice(2);
  if (!out || sizes.length === 0) throw new Error('usage: node bench/scale-data.ts <out-dir> <GB>...');
  await fs.mkdir(out, { recursive: true });
  await makeScaleData(out, sizes.map(Number));
}
