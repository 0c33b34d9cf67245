import type { MemberConfig } from '../etcd/server.ts';
import type { Tool } from '../bundle.ts';
import type { Version } from '../version.ts';

/** What a step runner gets: everything passed in, no globals. */
export interface StepContext {
  dataDir: string;
  binDir: string;
  member: MemberConfig;
  dataPrefix: string;
  ttlKeysDirectory: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  stepTimeoutMs: number;
}

export interface ToolNeed {
  tool: Tool;
  version: Version;
}
