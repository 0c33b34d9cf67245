// The image under test: built from this checkout by image/build.sh, run with podman as users run
// it (host network, the data dir bind-mounted), never pulled.
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BIN_DIR, REPO } from './env.ts';
import { onCleanup } from './tmp.ts';

/** Why the image tests cannot run here, or undefined when they can. */
export async function podmanMissing(): Promise<string | undefined> {
  const r = await execa('podman', ['--version'], { reject: false }).catch(() => undefined);
  return r?.exitCode === 0
    ? undefined
    : 'podman is not installed (as root: apt-get install podman runc; .ci/run does it)';
}

let confEnv: Record<string, string> | undefined;

/**
 * CONTAINERS_CONF and CONTAINERS_REGISTRIES_CONF, written by scripts/podman-conf.sh (other CONTAINERS_* pass
 * through).
 */
export async function podmanEnv(): Promise<Record<string, string>> {
  if (!confEnv) {
    const r = await execa('bash', [path.join(REPO, 'scripts/podman-conf.sh')]);
    confEnv = Object.fromEntries(
      String(r.stdout)
        .replace(/^export /, '')
        .trim()
        .split(/\s+/)
        .map((kv) => kv.split('=', 2) as [string, string]),
    );
  }
  const own = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => k.startsWith('CONTAINERS_') && v !== undefined),
  ) as Record<string, string>;
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...own, ...confEnv };
}

export function podman(args: string[], o: { reject?: boolean; timeoutMs?: number } = {}) {
  return podmanEnv().then((env) =>
    execa('podman', args, {
      env,
      extendEnv: false,
      reject: o.reject ?? true,
      timeout: o.timeoutMs ?? 120_000,
      stdin: 'ignore',
    }),
  );
}

/**
 * Builds the image from this checkout (cached layers make a rebuild take seconds); returns its ID and the build's
 * time.
 */
export async function buildImage(): Promise<{ id: string; seconds: number; output: string }> {
  const t0 = Date.now();
  const r = await execa('bash', [path.join(REPO, 'image/build.sh')], {
    env: { ...(await podmanEnv()), ETCD_BIN_DIR: BIN_DIR, IMAGE: 'localhost/etcd-migrate:test' },
    extendEnv: false,
    all: true,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`image/build.sh failed (exit ${r.exitCode}):\n${String(r.all).slice(-3000)}`);
  const id = String(r.stdout)
    .trim()
    .split('\n')
    .at(-1)!
    .replace(/^sha256:/, '');
  return { id, seconds: (Date.now() - t0) / 1000, output: String(r.all) };
}

export interface Container {
  name: string;
  logs: () => Promise<string>;
  /** `podman stop` (SIGTERM, then SIGKILL after `grace` s); resolves to the exit code and the seconds it took. */
  stop: (grace?: number) => Promise<{ exitCode: number; seconds: number }>;
  /** Waits until it exits by itself; resolves to the exit code. */
  wait: () => Promise<number>;
}

let serial = 0;

/** `podman run -d --net=host --pull=never`, the data dir bind-mounted; removed after the test. */
export async function runImage(
  image: string,
  o: { mounts: Array<[string, string]>; env: Record<string, string>; args: string[] },
): Promise<Container> {
  const name = `etcd-migrate-test-${process.pid}-${++serial}`;
  await podman([
    'run',
    '-d',
    '--name',
    name,
    '--net=host',
    '--pull=never',
    ...o.mounts.flatMap(([h, c]) => ['-v', `${h}:${c}`]),
    ...Object.entries(o.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    image,
    ...o.args,
  ]);
  onCleanup(async () => {
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
  });
  const wait = async () => Number(String((await podman(['wait', name], { timeoutMs: 180_000 })).stdout).trim());
  return {
    name,
    logs: async () => {
      const r = await podman(['logs', name], { reject: false });
      return `${r.stdout}\n${r.stderr}`;
    },
    stop: async (grace = 20) => {
      const t0 = Date.now();
      await podman(['stop', '-t', String(grace), name], { timeoutMs: (grace + 30) * 1000 });
      const seconds = (Date.now() - t0) / 1000;
      return { exitCode: await wait(), seconds };
    },
    wait,
  };
}

export interface Manifest {
  env: Record<string, string>;
  /** The container path where the hostPath volume with the data dir is mounted. */
  mountPath: string;
  args: string[];
}

/** The env, the data volume's mountPath and the args of an image/*.yaml static pod (our own simple YAML). */
export async function readManifest(file: string): Promise<Manifest> {
  const text = await fs.readFile(path.join(REPO, 'image', file), 'utf8');
  const unquote = (s: string) => s.trim().replace(/^"(.*)"$/, '$1');
  const env: Record<string, string> = {};
  const re = /-\s+name:\s*(\S+)\s*\n\s+value:\s*(.*)/g;
  for (const m of text.matchAll(re)) env[m[1]!] = unquote(m[2]!.replace(/\s+#.*$/, ''));
  const mountPath = /mountPath:\s*(\S+)/.exec(text)?.[1];
  if (!mountPath) throw new Error(`${file} has no volume mountPath`);
  const argsBlock = /\n\s+args:\s*\n((?:\s+-\s.*\n)+)/.exec(text)?.[1] ?? '';
  const args = argsBlock
    .split('\n')
    .filter((l) => l.trim().startsWith('-'))
    .map((l) => unquote(l.trim().slice(1)));
  return { env, mountPath, args };
}
