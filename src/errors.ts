// Errors the entrypoint reports as one line. Only cli.ts turns them into exit codes.

/** Bad input or configuration, found before anything changed. Exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** A step failed; the data dir is at the last good step and version.txt says which. Exit code 1. */
export class StepError extends Error {
  override readonly name = 'StepError';
  readonly exitCode = 1;
}

/** The run's backup failed before any change; said as the backup's problem, not a step's. Exit code 1. */
export class BackupError extends StepError {}

/**
 * A child process failed: the facts about it, for the log line and for tests. The message is our
 * line, then the child's last lines, each on its own line, indented and prefixed with its name
 * (log.ts childLines): whoever adds to the message adds to `headline` and keeps `shown` last.
 */
export class ProcessError extends StepError {
  readonly command: string;
  readonly processExitCode: number | undefined;
  readonly signal: string | undefined;
  /** The process's last output lines (etcd never logs key values). */
  readonly output: string;
  /** Our line, without the child's. */
  readonly headline: string;
  /** The child's last lines as the message ends with them ("; its last lines:\n  etcd-3.5.30| ..."), or empty. */
  readonly shown: string;
  constructor(
    headline: string,
    facts: { command: string; exitCode?: number; signal?: string; output: string; shown?: string },
  ) {
    super(`${headline}${facts.shown ?? ''}`);
    this.headline = headline;
    this.shown = facts.shown ?? '';
    this.command = facts.command;
    this.processExitCode = facts.exitCode;
    this.signal = facts.signal;
    this.output = facts.output;
  }
}

/**
 * A backup or snapshot file that fails its checks: wrong key, damaged, truncated, or not one of
 * ours. Callers decide what it means: bad input for restore, a failed step for a migration.
 */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
  readonly reason: 'wrong-key' | 'damaged' | 'truncated' | 'format';
  constructor(reason: IntegrityError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A bug: an error that is neither bad input nor a failed step (sysexits' EX_SOFTWARE). */
export const INTERNAL_ERROR_EXIT = 70;

/** Errors a program bug throws, which a step must not report as its own failure. */
export function isBug(e: unknown): boolean {
  if (e instanceof TypeError || e instanceof ReferenceError) return true;
  return (e as { code?: unknown } | undefined)?.code === 'ERR_ASSERTION';
}

export function isUserFacing(e: unknown): e is UsageError | StepError {
  return e instanceof UsageError || e instanceof StepError;
}
