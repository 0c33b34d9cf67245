import type { CheckedDb } from '../etcd2/convert/v3db.ts';
import type { MemberConfig } from '../etcd/process/server.ts';
import type { Tool } from '../bundled-versions.ts';
import type { Fields, Log } from '../log.ts';
import type { V2ContentReader } from '../inspect/v2content.ts';
import { progressReporter, type StartProgress } from '../progress.ts';
import type { DataVersion, Version } from '../version.ts';

/**
 * This program's own files: the Node binary that runs it, and the entry of its v2 transformer
 * (src/etcd2/transformer.ts).
 */
export interface Install {
  node: string;
  transformer: string;
}

/** What a step runner gets: everything passed in, no globals. */
export interface StepContext {
  dataDir: string;
  binDir: string;
  member: MemberConfig;
  dataPrefix: string;
  ttlKeysDirectory: string;
  env: NodeJS.ProcessEnv;
  log: Log;
  /** Long work's progress: a bar on a terminal, else lines through `log` (progressOf). */
  progress?: StartProgress;
  stepTimeoutMs: number;
  /** Where the whole plan ends (a cluster member's steps wait differently before the last minor). */
  target: DataVersion;
  /** Where a 'rebuild' step writes the new member dir (inside the data dir's work area). */
  newMember: string;
  /** The target etcd's election timeout (ms): etcd adds it to every lease when it becomes leader. */
  targetElectionTimeoutMs: number;
  install: Install;
  /**
   * The live db's keyspace as a step of this run checked it (the conversion), for a later step of
   * the run (attach-ttls), which takes it only while the file is the same, unchanged (CheckedDb).
   */
  checkedDb?: CheckedDb;
  /** The data dir's v2 content as this run read it, read again only once its files change. */
  v2Content?: V2ContentReader;
}

/** The context's progress reporter, or lines through its log. */
export const progressOf = (ctx: Pick<StepContext, 'log' | 'progress'>): StartProgress =>
  ctx.progress ?? progressReporter({ log: ctx.log });

/** What a step reports for its log line: facts such as key counts and checksums, never values. */
export interface StepReport {
  /** The key figures on the step's line, short: "6,061 keys, 2,026 TTLs pending". */
  figures?: string;
  /** The same figures as the fields of a JSON record. */
  fields?: Fields;
  /** The checksums and the rest behind them: a debug line, and rehearse's report. */
  detail?: string;
}

export interface ToolNeed {
  tool: Tool;
  version: Version;
}
