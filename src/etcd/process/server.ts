// A temporary etcd member on the hidden loopback port: start it, wait until a write commits, stop it.
import { execa, type ResultPromise } from 'execa';
import { ProcessError } from '../../errors.ts';
import { compareMinor, fmt, type Storage, type Version } from '../../version.ts';
import { isCluster, memberNames } from '../../cluster.ts';
import { isJoined, probeWriteV2, probeWriteV3, versions } from '../client/probe.ts';
import { debug, lastLines, type Log } from '../../log.ts';
import path from 'node:path';
import { temporaryEtcdEnv } from './env.ts';
import { missing, type Expectation, type Seen } from './readiness.ts';
import type { ClientTls } from '../tls/config.ts';

export interface MemberConfig {
  name: string;
  initialCluster: string;
  listenPeerUrls: string;
  initialAdvertisePeerUrls: string;
  /** Hidden client port on 127.0.0.1. */
  port: number;
  /** ETCD_CREDS and the like, given to every temporary etcd after our own flags. */
  extraArgs: readonly string[];
  /** Set when ETCD_CREDS gives a server certificate: the hidden port then serves https. */
  clientTls?: ClientTls;
  /** For members restored from a snapshot; etcd's default when unset. */
  initialClusterToken?: string;
}

export interface StartOptions {
  bin: string;
  version: Version;
  dataDir: string;
  member: MemberConfig;
  /** etcd2 storage is probed through the v2 API only; 3.3+ then get --enable-v2. */
  storage: Storage;
  env: NodeJS.ProcessEnv;
  /** How long to wait for a committed write. */
  timeoutMs: number;
  /** The lowest cluster version that counts as ready (cluster.ts clusterVersionNeeded); default: `version`'s minor. */
  clusterAtLeast?: Version;
  /** Progress while a cluster member waits for its peers; a start repeated or a stop forced. */
  log?: Log;
  /** Also serve the v2 API (3.4+ need --enable-v2), e.g. to empty the v2 store after a conversion. */
  v2?: boolean;
  /** More etcd flags for this run (e.g. --snapshot-count=1), before the member's extra args. */
  flags?: readonly string[];
}

const V3_6: Version = { major: 3, minor: 6, patch: 0 };
const POLL_MS = 5;
/** A cluster member may wait minutes for its peers: poll gently, and say what it waits for. */
const CLUSTER_POLL_MS = 50;
const CLUSTER_LOG_EVERY_MS = 15_000;
const STOP_GRACE_MS = 10_000;
/**
 * A cluster member stops within a second or two (leadership transfer; BENCHMARKS.md). When peers stop at the
 * same moment, leadership can come back to a member already shutting down, and etcd 3.4 then never
 * exits (seen in the all-members test). Its write-ahead log already holds
 * every committed entry (fsynced before the commit), so after this grace it is killed, and that is
 * not a failure once it was ready.
 */
const CLUSTER_STOP_GRACE_MS = 3_000;
const LOG_LINES = 20;
/**
 * etcd decides its cluster version when its leader first commits in a term, if its version monitor
 * already waits for that signal (3.4: a send on forceVersionC that is dropped when nobody waits;
 * 3.5: FirstCommitInTermNotify), else at the monitor's next round, 4 s later. A lone member answers
 * only once it has committed (ReadyNotify), and then decides within milliseconds. Still below the
 * version waited for this long after its first answer, it missed the signal (which made chains 4 s
 * longer; BENCHMARKS.md): it is stopped and started again, once, unless its start took so long that
 * waiting is quicker.
 */
const MISSED_VERSION_MS = 300;
const RESTART_IF_START_UNDER_MS = 2_000;

/** waitReady's signal that a lone member missed its cluster version decision (see MISSED_VERSION_MS). */
class VersionDecisionMissed extends Error {}

export class TempEtcd {
  readonly endpoint: string;
  private readonly proc: ResultPromise<{ reject: false; buffer: false; stdin: 'ignore'; all: true }>;
  private readonly tail: string[] = [];
  /** The line that says why it stopped: a flag error, a panic, a fatal log line (errorLine). */
  private cause: ErrorLine | undefined;
  private exited: { code?: number; signal?: string } | undefined;
  private readonly done: Promise<void>;

  readonly opts: StartOptions;
  /**
   * When it first answered (its version), as Date.now(): how long its start took, without what it
   * waits for after (its cluster version, which etcd may decide up to 4 s late; the peers).
   */
  answeredAt: number | undefined;
  /** When it was spawned (Date.now()). */
  readonly spawnedAt = Date.now();

  constructor(opts: StartOptions) {
    this.opts = opts;
    const args = etcdArgs(opts);
    this.endpoint = clientUrl(opts.member);
    this.proc = execa(opts.bin, args, {
      reject: false,
      buffer: false,
      stdin: 'ignore',
      all: true,
      env: temporaryEtcdEnv(opts.env, args),
      extendEnv: false,
    });
    this.proc.all.setEncoding('utf8');
    let partial = '';
    this.proc.all.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      this.tail.push(...lines);
      if (this.tail.length > LOG_LINES) this.tail.splice(0, this.tail.length - LOG_LINES);
      for (const line of lines) this.noteError(line);
    });
    this.done = this.proc.then((r) => {
      this.exited = { code: r.exitCode, signal: r.signal };
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /**
   * Resolves once the member is ready (readiness.ts): a lone member reports the step's minor as the
   * cluster version; a cluster member answers as this version, has joined, and the cluster version
   * is at least `clusterAtLeast`. Then a probe write must commit.
   */
  async waitReady(restartIfMissed = false): Promise<void> {
    const { version, storage, timeoutMs, member, log } = this.opts;
    const tls = member.clientTls;
    const cluster = isCluster(member.initialCluster);
    const expect: Expectation = {
      version,
      clusterAtLeast: this.opts.clusterAtLeast ?? version,
      cluster: cluster
        ? { members: memberNames(member.initialCluster).length, name: member.name, clientUrl: this.endpoint }
        : undefined,
    };
    const started = Date.now();
    const deadline = started + timeoutMs;
    let nextLog = started + CLUSTER_LOG_EVERY_MS;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (this.exited) throw this.failure(`etcd ${fmt(version)} exited before a write committed`);
      try {
        const seen: Seen = {};
        let unanswered = '';
        const v = await versions(this.endpoint, tls).catch((e: Error) => {
          unanswered = `: ${e.message}`;
        });
        if (v) {
          this.answeredAt ??= Date.now();
          seen.server = v.server;
          seen.cluster = v.cluster;
          seen.storage = v.storage;
          // etcd 2.x has no v3 member list; its probe write needs the quorum all the same.
          if (cluster && version.major >= 3)
            seen.joined = await isJoined(this.endpoint, version, member.name, this.endpoint, tls);
        }
        const why = missing(expect, seen);
        // A lone member that answers now, still below the cluster version waited for (MISSED_VERSION_MS).
        const lowStorage =
          compareMinor(expect.clusterAtLeast, V3_6) >= 0 &&
          (!seen.storage || compareMinor(seen.storage, expect.clusterAtLeast) < 0);
        const below =
          seen.server !== undefined &&
          version.major >= 3 &&
          (!seen.cluster || compareMinor(seen.cluster, expect.clusterAtLeast) < 0 || lowStorage);
        if (
          restartIfMissed &&
          !cluster &&
          below &&
          why &&
          Date.now() - this.answeredAt! > MISSED_VERSION_MS &&
          this.answeredAt! - this.spawnedAt < RESTART_IF_START_UNDER_MS
        ) {
          throw new VersionDecisionMissed(why);
        }
        if (why) last = why + unanswered;
        else if (
          await (storage === 'etcd2' ? probeWriteV2(this.endpoint, tls) : probeWriteV3(this.endpoint, version, tls))
        )
          return;
        else last = 'probe write not committed';
      } catch (e) {
        if (e instanceof VersionDecisionMissed) throw e;
        last = (e as Error).message;
      }
      if (cluster && log && Date.now() >= nextLog) {
        const waited = Math.round((Date.now() - started) / 1000);
        log(`etcd ${fmt(version)} waiting ${waited} s: ${last}`, { fields: { etcd: fmt(version), seconds: waited } });
        nextLog += CLUSTER_LOG_EVERY_MS;
      }
      await sleep(cluster ? CLUSTER_POLL_MS : POLL_MS);
    }
    throw this.failure(`etcd ${fmt(version)} was not ready within ${timeoutMs / 1000} s (last: ${last})`);
  }

  /** SIGTERM, then SIGKILL after a grace period. etcd exits 143 on SIGTERM: a clean stop. */
  async stop(): Promise<void> {
    if (this.exited) throw this.failure(`etcd ${fmt(this.opts.version)} exited on its own`);
    const cluster = isCluster(this.opts.member.initialCluster);
    await this.kill();
    const { code, signal } = this.exited!;
    if (signal === 'SIGKILL' && cluster) {
      const log = this.opts.log ?? (() => {});
      log(
        `etcd ${fmt(this.opts.version)} killed, still stopping ${CLUSTER_STOP_GRACE_MS / 1000} s after SIGTERM; ` +
          'its WAL holds every commit',
      );
      debug(log, 'a cluster member may take that long when a peer stopping at the same moment hands leadership back');
      return;
    }
    if (signal === 'SIGKILL')
      throw this.failure(`etcd ${fmt(this.opts.version)} ignored SIGTERM for ${STOP_GRACE_MS / 1000} s and was killed`);
    if (!(code === 0 || code === 143 || signal === 'SIGTERM'))
      throw this.failure(`etcd ${fmt(this.opts.version)} did not stop cleanly`);
  }

  /** Stops it without judging how: for cleanup after another failure. */
  async kill(): Promise<void> {
    if (!this.exited) {
      this.proc.kill('SIGTERM');
      const grace = isCluster(this.opts.member.initialCluster) ? CLUSTER_STOP_GRACE_MS : STOP_GRACE_MS;
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), grace);
      await this.done;
      clearTimeout(timer);
    }
  }

  private noteError(line: string): void {
    const found = errorLine(line);
    // The first flag error, panic or fatal line is the cause: what follows is the usage text or a
    // stack trace. Until one comes, the latest error line stands.
    if (!found || (this.cause && this.cause.kind !== 'error')) return;
    this.cause = found;
  }

  private failure(message: string): ProcessError {
    const e = this.exited;
    const how = e ? (e.signal ? ` (signal ${e.signal})` : ` (exit code ${e.code})`) : '';
    const said = e && this.cause ? `; etcd said: ${this.cause.text}` : '';
    // After a flag error etcd prints only its usage text: nothing more to show.
    const last = this.tail.filter(Boolean).slice(-5);
    const shown = this.cause?.kind === 'flag' && e ? '' : lastLines(path.basename(this.opts.bin), last);
    const facts = { command: this.opts.bin, exitCode: e?.code, signal: e?.signal, output: this.tail.join('\n'), shown };
    return new ProcessError(`${message}${how}${said}`, facts);
  }
}

interface ErrorLine {
  kind: 'flag' | 'panic' | 'fatal' | 'error';
  text: string;
}

const MAX_ERROR_CHARS = 500;
/** Go's flag package: the line it prints before the usage text. */
const FLAG_ERRORS = [
  'flag provided but not defined',
  'invalid value',
  'invalid argument',
  'bad flag syntax',
  'flag needs an argument',
];
const FLAG_ERROR = new RegExp(`^(${FLAG_ERRORS.join('|')})`);

/**
 * A line of etcd's output that says why it failed: Go's flag errors (then the usage text follows),
 * a panic (then its stack trace), a critical or fatal log line (capnslog's `C |` up to 3.4, zap's
 * JSON from 3.5), or an error line.
 */
export function errorLine(line: string): ErrorLine | undefined {
  const text = line.trim();
  const cut = (t: string) => (t.length > MAX_ERROR_CHARS ? `${t.slice(0, MAX_ERROR_CHARS)}...` : t);
  if (FLAG_ERROR.test(text)) return { kind: 'flag', text: cut(text) };
  if (text.startsWith('panic: ')) return { kind: 'panic', text: cut(text) };
  const capns = /^\S+ \S+ ([CEF]) \| (.*)$/.exec(text);
  if (capns) return { kind: capns[1] === 'E' ? 'error' : 'fatal', text: cut(capns[2]!) };
  if (text.startsWith('{') && /"level":"(error|dpanic|panic|fatal)"/.test(text)) {
    try {
      const j = JSON.parse(text) as { level: string; msg?: string; error?: string };
      const said = `${j.msg ?? ''}${j.error ? `: ${j.error}` : ''}`;
      return { kind: j.level === 'error' ? 'error' : 'fatal', text: cut(said) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Starts etcd, waits until a write commits, runs `fn` against it, then stops it (also when `fn` fails). */
export async function withTempEtcd<T>(opts: StartOptions, fn: (etcd: TempEtcd) => Promise<T>): Promise<T> {
  const etcd = await startReady(opts);
  let result: T;
  try {
    result = await fn(etcd);
  } catch (e) {
    await etcd.kill();
    throw e;
  }
  await etcd.stop();
  return result;
}

/**
 * A started etcd, ready; a lone member that missed its cluster version decision started once more
 * (MISSED_VERSION_MS).
 */
async function startReady(opts: StartOptions): Promise<TempEtcd> {
  let etcd = new TempEtcd(opts);
  try {
    await etcd.waitReady(true);
    return etcd;
  } catch (e) {
    if (!(e instanceof VersionDecisionMissed)) {
      await etcd.kill();
      throw e;
    }
    await etcd.stop();
    const log = opts.log ?? (() => {});
    log(
      `etcd ${fmt(opts.version)} still had ${e.message} ${MISSED_VERSION_MS} ms after it first answered: ` +
        'started again',
    );
    debug(log, "its version monitor missed the leader's first commit and would look again 4 s after its start");
  }
  etcd = new TempEtcd(opts);
  try {
    await etcd.waitReady();
  } catch (e) {
    await etcd.kill();
    throw e;
  }
  return etcd;
}

export function etcdArgs(o: StartOptions): string[] {
  const m = o.member;
  const client = clientUrl(m);
  const args = [
    '--name',
    m.name,
    '--data-dir',
    o.dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    m.listenPeerUrls,
    '--initial-advertise-peer-urls',
    m.initialAdvertisePeerUrls,
    '--initial-cluster',
    m.initialCluster,
  ];
  // A lone member elects itself after one election timeout: keep it short (etcd-facts; BENCHMARKS.md).
  // A real cluster keeps etcd's defaults, since peers may be far apart.
  if (!isCluster(m.initialCluster)) args.push('--heartbeat-interval', '10', '--election-timeout', '100');
  // 3.4+ serve v2 only with --enable-v2; 3.3 serves it by default but has the flag, so it is given
  // there too: an ETCD_ENABLE_V2=false in the pod's environment must not turn it off (a flag given
  // drops its variable, see env.ts). 3.0-3.2 have no such flag and always serve v2.
  const v2 = o.storage === 'etcd2' || o.v2;
  if (v2 && compareMinor(o.version, { major: 3, minor: 3, patch: 0 }) >= 0 && compareMinor(o.version, V3_6) < 0) {
    args.push('--enable-v2=true');
  }
  return [...args, ...(o.flags ?? []), ...m.extraArgs];
}

/** The hidden client URL: https when ETCD_CREDS gives a server certificate. */
export function clientUrl(m: MemberConfig): string {
  return `${m.clientTls ? 'https' : 'http'}://127.0.0.1:${m.port}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
