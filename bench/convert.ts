// Benchmark (the entrypoint as the image runs it: the bundle): etcd2 -> etcd3 conversion with every TTL re-attached
// (the v2-to-v3 and attach-ttls steps, through the CLI, with the run's backup) side by side with `etcdctl migrate`
// alone, on copies of the same 3.3.25 etcd2 data dir; and, when a baseline commit is given, the entrypoint of that
// commit too, in the same rounds (migrate, etcd's floor, this tree, baseline; the order turns each
// round). Time and peak RSS (VmHWM of each process, sampled from /proc every 20 ms). etcd's floor
// (see `floor` below) is the least that etcd's own tools take to keep a TTL.
// Usage: [BENCH_BASELINE=<commit>] [BENCH_TARGET=3.3.25] node bench/convert.ts
//   [keys=100000] [bin-dir=.cache/etcd-bin] [port-base=23500] [rounds=1]
// (BENCH_TARGET: the target version; 3.3.25, the default, is the conversion and the attach alone,
// 3.5.30 the whole chain a pod runs: conversion, upgrades, attach)
// (BENCH_NODE_OPTIONS becomes the NODE_OPTIONS of the etcd-migrate process, e.g. --max-old-space-size=64;
// BENCH_DATA=<dir> keeps the written data dir there and reuses it for 15 min: its TTLs run out;
// BENCH_ENV="NAME=value ..." adds to the environment of both etcd-migrate processes, e.g.
// MALLOC_MMAP_THRESHOLD_=131072 as the image sets it)
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withTempEtcd } from '../src/etcd/process/server.ts';
import { restoreSnapshot } from '../src/etcd/process/snapshot.ts';
import { seedClusterVersion } from '../src/etcd/disk/snapfile.ts';
import { parseVersion } from '../src/version.ts';
import { machine, median } from './lib.ts';
import { makeV2DataDir } from './v2data.ts';

const keys = Number(process.argv[2] ?? 100_000);
const binDir = path.resolve(process.argv[3] ?? '.cache/etcd-bin');
const portBase = Number(process.argv[4] ?? 23500);
const baselineRef = process.env.BENCH_BASELINE || undefined;
const rounds = Number(process.argv[5] ?? 1);
const target = process.env.BENCH_TARGET || '3.3.25';
const repo = path.resolve(import.meta.dirname, '..');
const FRESH_MS = 15 * 60_000;

interface Peak {
  name: string;
  hwmKiB: number;
}

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
        // A node below the entrypoint is the transformer that etcdctl migrate runs.
        const who = name === 'node' && pid !== rootPid ? 'transformer' : name;
        if (hwm && name) peaks.set(pid, { name: who, hwmKiB: Math.max(Number(hwm[1]), peaks.get(pid)?.hwmKiB ?? 0) });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...peaks.values()];
    },
  };
}

async function descendants(pid: number): Promise<number[]> {
  const kids = (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => ''))
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  return [...kids, ...(await Promise.all(kids.map(descendants))).flat()];
}

interface Run {
  seconds: number;
  peaks: Peak[];
  stderr: string;
  dir: string;
  failed?: string;
}

async function timed(dir: string, file: string, args: string[], env: Record<string, string>): Promise<Run> {
  const t0 = performance.now();
  const p = execa(file, args, { env, extendEnv: false, reject: false, all: true });
  const sampler = sampleTree(p.pid!);
  const r = await p;
  const peaks = await sampler.stop();
  // A failed run is reported in its row (its error line), not thrown: the other sides still run.
  const failed =
    r.exitCode !== 0
      ? (String(r.all)
          .split('\n')
          .filter((l) => /error/.test(l))
          .at(-1)
          ?.slice(0, 300) ?? `exit code ${r.exitCode}`)
      : undefined;
  return { seconds: (performance.now() - t0) / 1000, peaks, stderr: String(r.all), dir, failed };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const peakOf = (peaks: Peak[], re: RegExp) => Math.max(0, ...peaks.filter((p) => re.test(p.name)).map((p) => p.hwmKiB));

const loadBefore = (await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'etcd-migrate-bench-'));
try {
  const base = process.env.BENCH_DATA ? path.resolve(process.env.BENCH_DATA) : path.join(work, 'base');
  // Reused only while fresh: a quarter of the keys carry a 1 h TTL, so older data is mostly expired.
  const made = await fs.stat(path.join(base, 'version.txt')).catch(() => undefined);
  if (!made || Date.now() - made.mtimeMs > FRESH_MS) {
    await fs.rm(base, { recursive: true, force: true });
    const t0 = performance.now();
    await makeV2DataDir(base, keys, binDir, portBase, portBase + 1);
    console.error(
      `data: ${keys} keys written through the v2 API of etcd 3.3.25 ` +
        `in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  // Both sides run the bundle the image ships (dist/etcd-migrate.mjs, built here first); the
  // baseline's from a worktree of that commit, with this tree's node_modules.
  const bundle = async (dir: string) => {
    await execa(process.execPath, ['scripts/build.mjs'], { cwd: dir });
    return path.join(dir, 'dist/etcd-migrate.mjs');
  };
  const thisEntry = await bundle(repo);
  let baselineEntry: string | undefined;
  if (baselineRef) {
    const wt = path.join(work, 'baseline');
    await execa('git', ['-C', repo, 'worktree', 'add', '--detach', wt, baselineRef]);
    await fs.symlink(path.join(repo, 'node_modules'), path.join(wt, 'node_modules'));
    baselineEntry = await bundle(wt);
  }
  let n = 0;
  const copy = async () => {
    const d = path.join(work, `copy-${n++}`);
    await fs.cp(base, d, { recursive: true });
    return d;
  };
  const entryEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    ...Object.fromEntries(
      (process.env.BENCH_ENV ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  };
  const ours = (entry: string) => async (): Promise<Run> => {
    const d = await copy();
    return timed(
      d,
      process.execPath,
      [
        entry,
        '--data-dir',
        d,
        '--target-version',
        target,
        '--bin-dir',
        binDir,
        '--name',
        'm1',
        '--port',
        String(portBase),
        '--peer-port',
        String(portBase + 1),
      ],
      entryEnv,
    );
  };
  // The least that etcd's own tools need to give a converted key a lease: migrate, a new member of
  // its db (snapshot restore, with the cluster version recorded as etcd-migrate does, or etcd 3.3
  // may wait 4 s for it), and an etcd started on it until it grants a lease, then stopped; no check,
  // no backup, no TTL read. What etcd-migrate takes beyond this is its own.
  const floor = async (): Promise<Run> => {
    const d = await copy();
    const v = parseVersion('3.3.25');
    const peer = `http://127.0.0.1:${portBase + 1}`;
    const member = {
      name: 'm1',
      initialCluster: `m1=${peer}`,
      listenPeerUrls: peer,
      initialAdvertisePeerUrls: peer,
      port: portBase,
      extraArgs: [],
    };
    const t0 = performance.now();
    await execa(path.join(binDir, 'etcdctl-3.3.25'), ['migrate', '--data-dir', d], { env: { ETCDCTL_API: '3' } });
    await restoreSnapshot({
      binDir,
      version: v,
      file: path.join(d, 'member', 'snap', 'db'),
      dataDir: path.join(d, 'restored'),
      member,
      token: 'etcd-cluster',
      env: {},
      skipHashCheck: true,
    });
    await seedClusterVersion(path.join(d, 'restored', 'member', 'snap'), '3.3.0');
    await withTempEtcd(
      {
        bin: path.join(binDir, 'etcd-3.3.25'),
        version: v,
        dataDir: path.join(d, 'restored'),
        member,
        storage: 'etcd3',
        env: {},
        timeoutMs: 60_000,
      },
      async (e) => {
        const r = await fetch(`${e.endpoint}/v3beta/lease/grant`, {
          method: 'POST',
          body: JSON.stringify({ TTL: 600 }),
        });
        if (r.status !== 200) throw new Error(`lease grant: ${await r.text()}`);
      },
    );
    return { seconds: (performance.now() - t0) / 1000, peaks: [], stderr: '', dir: d };
  };
  const sides: Array<[string, () => Promise<Run>]> = [
    [
      'etcdctl migrate alone (TTLs dropped)',
      async () => {
        const d = await copy();
        return timed(d, path.join(binDir, 'etcdctl-3.3.25'), ['migrate', '--data-dir', d], { ETCDCTL_API: '3' });
      },
    ],
    ["etcd's floor: migrate, snapshot restore, etcd started until it grants one lease, stopped", floor],
    ['etcd-migrate (this tree)', ours(thisEntry)],
    ...(baselineEntry
      ? [[`etcd-migrate (baseline ${baselineRef})`, ours(baselineEntry)] as [string, () => Promise<Run>]]
      : []),
  ];
  const results = new Map<string, Run[]>(sides.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...sides].reverse() : sides;
    for (const [name, run] of order) {
      const x = await run();
      results.get(name)!.push(x);
      await fs.rm(x.dir, { recursive: true, force: true }).catch(() => {});
      await fs.rm(`${x.dir}.backups`, { recursive: true, force: true }).catch(() => {});
    }
  }
  console.log(
    `machine: ${machine()}; ${keys} keys; target ${target}; ${rounds} round(s);` +
      `${process.env.BENCH_ENV ? ` env ${process.env.BENCH_ENV};` : ''} load average before ${loadBefore}, ` +
      `after: ${(await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`,
  );
  console.log('| what | time (median; each round) | steps (last round) | peak RSS (last round) |');
  console.log('|---|---|---|---|');
  const migrateMedian = median(results.get(sides[0]![0])!.map((x) => x.seconds));
  for (const [name] of sides) {
    const xs = results.get(name)!;
    const last = xs.at(-1)!;
    const t = median(xs.map((x) => x.seconds));
    const backup = [...last.stderr.matchAll(/read back and verified in ([\d.]+) s/g)].reduce(
      (s, m) => s + Number(m[1]),
      0,
    );
    const done = [...last.stderr.matchAll(/step \d+\/\d+ done in ([\d.]+) s: (\w+)/g)].map((m) => `${m[2]} ${m[1]} s`);
    const steps = done.length ? `${done.join(' + ')}; backup ${backup.toFixed(1)} s` : '';
    const rss = (
      [
        ['node', /^node$/],
        ['transformer', /^transformer$/],
        ['etcd', /^etcd-/],
        ['etcdctl', /^etcdctl/],
      ] as const
    )
      .map(([p, re]) => [p, peakOf(last.peaks, re)] as const)
      .filter(([, k]) => k > 0)
      .map(([p, k]) => `${p} ${mib(k)}`)
      .join(', ');
    const fails = xs.filter((x) => x.failed);
    if (fails.length)
      console.log(
        `| ${name} | FAILED in ${fails.length} of ${xs.length} rounds, ` +
          `after ${fails.map((x) => x.seconds.toFixed(1)).join(', ')} s: ${fails.at(-1)!.failed} | | |`,
      );
    if (fails.length === xs.length) continue;
    console.log(
      `| ${name} | ${t.toFixed(1)} s = ${(t / migrateMedian).toFixed(2)}x migrate ` +
        `(${xs.map((x) => x.seconds.toFixed(1)).join(', ')}) | ${steps} | ${rss} |`,
    );
  }
  // The log lines of each etcd-migrate side's last round: where its time went.
  for (const [name] of sides.slice(2)) {
    const last = results.get(name)!.at(-1)!.stderr;
    const detail = last
      .split('\n')
      .filter((l) => /migrate done|db it wrote|snapshot restore|keys on \d+ leases|started again/.test(l))
      .map((l) => l.replace(/^etcd-migrate: /, '').slice(0, /step \d/.test(l) ? 900 : 200));
    console.log(`\n${name}, last round:\n  ${detail.join('\n  ')}`);
    const att =
      /(\d+) keys on (\d+) leases \(granted [\d.]+ s before the end of this step; attached in ([\d.]+) s/.exec(last);
    if (att)
      console.log(
        `  TTL re-attachment: ${att[1]} keys on ${att[2]} leases in ${att[3]} s = ` +
          `${Math.round(Number(att[1]) / Math.max(Number(att[3]), 0.01))} keys/s`,
      );
  }
} finally {
  if (baselineRef)
    await execa('git', ['-C', repo, 'worktree', 'remove', '--force', path.join(work, 'baseline')]).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}
