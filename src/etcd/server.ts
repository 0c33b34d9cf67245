// A temporary etcd member on the hidden loopback port: start it, wait until a write commits, stop it.
import { execa, type ResultPromise } from 'execa';
import { ProcessError } from '../errors.ts';
import { compareMinor, fmt, fmtMinor, type Storage, type Version } from '../version.ts';
import { clusterVersion, probeWriteV2, probeWriteV3 } from './client.ts';
import { childEnv } from './env.ts';

export interface MemberConfig {
  name: string;
  initialCluster: string;
  listenPeerUrls: string;
  initialAdvertisePeerUrls: string;
  /** Hidden client port on 127.0.0.1. */
  port: number;
  /** ETCD_CREDS and the like, given to every temporary etcd after our own flags. */
  extraArgs: readonly string[];
  /** For members restored from a snapshot; etcd's default when unset. */
  initialClusterToken?: string;
}

export interface StartOptions {
  bin: string;
  version: Version;
  dataDir: string;
  member: MemberConfig;
  /** etcd2 storage is probed through the v2 API only; 3.4+ then need --enable-v2. */
  storage: Storage;
  env: NodeJS.ProcessEnv;
  /** How long to wait for a committed write. */
  timeoutMs: number;
  /** Also serve the v2 API (3.4+ need --enable-v2), e.g. to empty the v2 store after a conversion. */
  v2?: boolean;
  /** More etcd flags for this run (e.g. --snapshot-count=1), before the member's extra args. */
  flags?: readonly string[];
}

const POLL_MS = 5;
const STOP_GRACE_MS = 10_000;
const LOG_LINES = 20;

export class TempEtcd {
  readonly endpoint: string;
  private readonly proc: ResultPromise<{ reject: false; buffer: false; stdin: 'ignore'; all: true }>;
  private readonly tail: string[] = [];
  private exited: { code?: number; signal?: string } | undefined;
  private readonly done: Promise<void>;

  readonly opts: StartOptions;

  constructor(opts: StartOptions) {
    this.opts = opts;
    const args = etcdArgs(opts);
    this.endpoint = `http://127.0.0.1:${opts.member.port}`;
    this.proc = execa(opts.bin, args, {
      reject: false, buffer: false, stdin: 'ignore', all: true,
      env: childEnv(opts.env, args), extendEnv: false,
    });
    this.proc.all.setEncoding('utf8');
    let partial = '';
    this.proc.all.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      this.tail.push(...lines);
      if (this.tail.length > LOG_LINES) this.tail.splice(0, this.tail.length - LOG_LINES);
    });
    this.done = this.proc.then((r) => {
      this.exited = { code: r.exitCode, signal: r.signal };
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Resolves once the member reports the expected cluster version and a probe write commits. */
  async waitReady(): Promise<void> {
    const { version, storage, timeoutMs } = this.opts;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (this.exited) throw this.failure(`etcd ${fmt(version)} exited before a write committed`);
      try {
        const cv = await clusterVersion(this.endpoint);
        if (version.major >= 3 && (!cv || compareMinor(cv, version) !== 0)) {
          last = `cluster version ${cv ? fmtMinor(cv) : 'not decided'}`;
        } else if (await (storage === 'etcd2' ? probeWriteV2(this.endpoint) : probeWriteV3(this.endpoint, version))) {
          return;
        } else last = 'probe write not committed';
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(POLL_MS);
    }
    throw this.failure(`etcd ${fmt(version)} did not commit a write within ${timeoutMs / 1000} s (last: ${last})`);
  }

  /** SIGTERM, then SIGKILL after a grace period. etcd exits 143 on SIGTERM: a clean stop. */
  async stop(): Promise<void> {
    if (this.exited) throw this.failure(`etcd ${fmt(this.opts.version)} exited on its own`);
    await this.kill();
    const { code, signal } = this.exited!;
    if (signal === 'SIGKILL') throw this.failure(`etcd ${fmt(this.opts.version)} ignored SIGTERM for ${STOP_GRACE_MS / 1000} s and was killed`);
    if (!(code === 0 || code === 143 || signal === 'SIGTERM')) throw this.failure(`etcd ${fmt(this.opts.version)} did not stop cleanly`);
  }

  /** Stops it without judging how: for cleanup after another failure. */
  async kill(): Promise<void> {
    if (!this.exited) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
      await this.done;
      clearTimeout(timer);
    }
  }

  private failure(message: string): ProcessError {
    const e = this.exited;
    const how = e ? (e.signal ? ` (signal ${e.signal})` : ` (exit code ${e.code})`) : '';
    const tail = this.tail.filter(Boolean).slice(-5).join('\n  ');
    return new ProcessError(`${message}${how}${tail ? `; its last lines:\n  ${tail}` : ''}`, { command: this.opts.bin, exitCode: e?.code, signal: e?.signal, output: this.tail.join('\n') });
  }
}

export async function runTempEtcd(opts: StartOptions): Promise<void> {
  const etcd = new TempEtcd(opts);
  try {
    await etcd.waitReady();
  } catch (e) {
    await etcd.kill();
    throw e;
  }
  await etcd.stop();
}

/** Starts etcd, waits until a write commits, runs `fn` against it, then stops it (also when `fn` fails). */
export async function withTempEtcd<T>(opts: StartOptions, fn: (etcd: TempEtcd) => Promise<T>): Promise<T> {
  const etcd = new TempEtcd(opts);
  let result: T;
  try {
    await etcd.waitReady();
    result = await fn(etcd);
  } catch (e) {
    await etcd.kill();
    throw e;
  }
  await etcd.stop();
  return result;
}

export function etcdArgs(o: StartOptions): string[] {
  const m = o.member;
  const client = `http://127.0.0.1:${m.port}`;
  const args = [
    '--name', m.name,
    '--data-dir', o.dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', m.listenPeerUrls,
    '--initial-advertise-peer-urls', m.initialAdvertisePeerUrls,
    '--initial-cluster', m.initialCluster,
  ];
  // A lone member elects itself after one election timeout: keep it short (etcd-facts: 0.07-0.1 s
  // instead of 0.3-0.8 s). A real cluster keeps etcd's defaults, since peers may be far apart.
  if (!m.initialCluster.includes(',')) args.push('--heartbeat-interval', '10', '--election-timeout', '100');
  if ((o.storage === 'etcd2' || o.v2) && compareMinor(o.version, { major: 3, minor: 4, patch: 0 }) >= 0) args.push('--enable-v2=true');
  return [...args, ...(o.flags ?? []), ...m.extraArgs];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
