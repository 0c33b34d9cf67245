// Benchmark: etcd2 -> etcd3 conversion with every TTL re-attached (the v2-to-v3 and attach-ttls
// steps, through the CLI, with the run's backup) side by side with `etcdctl migrate` alone, on copies
// of the same 3.3.25 etcd2 data dir.
// Time and peak RSS (VmHWM of each process, sampled from /proc every 20 ms).
// Usage: node bench/convert.ts [keys=100000] [bin-dir=.cache/etcd-bin] [port-base=23500]
// (BENCH_NODE_OPTIONS becomes the NODE_OPTIONS of the etcd-migrate process, e.g. --max-old-space-size=64)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeV2DataDir } from './v2data.ts';

const keys = Number(process.argv[2] ?? 100_000);
const binDir = path.resolve(process.argv[3] ?? '.cache/etcd-bin');
const portBase = Number(process.argv[4] ?? 23500);
const ENTRY = path.resolve(import.meta.dirname, '../bin/etcd-migrate.js');

interface Peak { name: string; hwmKiB: number }

/** Peak RSS of a process and every descendant, by executable name, until it exits. */
function sampleTree(rootPid: number): { stop: () => Promise<Peak[]> } {
  const peaks = new Map<number, Peak>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const pids = [rootPid, ...(await descendants(rootPid))];
      for (const pid of pids) {
        const st = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
        const hwm = /VmHWM:\s+(\d+)/.exec(st);
        const name = path.basename(await fs.readlink(`/proc/${pid}/exe`).catch(() => ''));
        if (hwm && name) peaks.set(pid, { name, hwmKiB: Math.max(Number(hwm[1]), peaks.get(pid)?.hwmKiB ?? 0) });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { stop: async () => { running = false; await loop; return [...peaks.values()]; } };
}

async function descendants(pid: number): Promise<number[]> {
  const kids = (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  return [...kids, ...(await Promise.all(kids.map(descendants))).flat()];
}

async function timed(file: string, args: string[], env: Record<string, string>): Promise<{ seconds: number; peaks: Peak[]; stderr: string }> {
  const t0 = performance.now();
  const p = execa(file, args, { env, extendEnv: false, reject: false, all: true });
  const sampler = sampleTree(p.pid!);
  const r = await p;
  const peaks = await sampler.stop();
  if (r.exitCode !== 0) throw new Error(`${file} failed: ${r.all}`);
  return { seconds: (performance.now() - t0) / 1000, peaks, stderr: String(r.all) };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const peakOf = (peaks: Peak[], re: RegExp) => Math.max(0, ...peaks.filter((p) => re.test(p.name)).map((p) => p.hwmKiB));

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
try {
  const base = path.join(work, 'base');
  const t0 = performance.now();
  await makeV2DataDir(base, keys, binDir, portBase, portBase + 1);
  console.error(`data: ${keys} keys written through the v2 API of etcd 3.3.25 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const copy = async (name: string) => {
    const d = path.join(work, name);
    await fs.cp(base, d, { recursive: true });
    return d;
  };

  const a = await copy('migrate-only');
  const migrate = await timed(path.join(binDir, 'etcdctl-3.3.25'), ['migrate', '--data-dir', a], { ETCDCTL_API: '3' });

  const b = await copy('ours');
  const ours = await timed(process.execPath, [ENTRY, '--data-dir', b, '--target-version', '3.3.25', '--bin-dir', binDir, '--name', 'm1',
    '--port', String(portBase), '--peer-port', String(portBase + 1)],
  // BENCH_NODE_OPTIONS=--max-old-space-size=N shows the conversion runs within a fixed heap.
  { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}) });
  const report = /before \(v2\): keys=(\d+) ttl-keys=(\d+).*?(\d+) keys on (\d+) leases \(granted ([\d.]+) s before/s.exec(ours.stderr);
  const stepTime = (what: string) => new RegExp(`done in ([\\d.]+) s: ${what}`).exec(ours.stderr)?.[1] ?? '?';
  const backups = [...ours.stderr.matchAll(/read back and verified in ([\d.]+) s/g)].reduce((t, m) => t + Number(m[1]), 0);

  const du = async (d: string) => (await execa('du', ['-sm', path.join(d, 'member')])).stdout.split('\t')[0];
  console.log(`| ${keys} keys (${report?.[2] ?? '?'} with a TTL) | etcdctl migrate alone (TTLs dropped) | ${migrate.seconds.toFixed(1)} s | etcdctl ${mib(peakOf(migrate.peaks, /etcdctl/))} | ${await du(a)} MB |`);
  console.log(`| ${keys} keys (${report?.[2] ?? '?'} with a TTL) | etcd-migrate: v2-to-v3 step ${stepTime('convert')} s (read, migrate, v2 store emptied, checks) + attach-ttls step ${stepTime('attach TTLs')} s (${report?.[3] ?? '?'} keys on ${report?.[4] ?? '?'} leases, granted ${report?.[5] ?? '?'} s before its end) + the run's backup ${backups.toFixed(1)} s | ${ours.seconds.toFixed(1)} s | node ${mib(peakOf(ours.peaks, /node/))}, etcd ${mib(peakOf(ours.peaks, /^etcd-/))}, etcdctl ${mib(peakOf(ours.peaks, /etcdctl/))} | ${await du(b)} MB |`);
  console.log(`load average after: ${(await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
