import type { Log } from '../log.ts';
import type { StartProgress } from '../progress.ts';

/** What a command gets: the environment, the log (stderr), and its output (stdout). */
export interface CommandIO {
  env: NodeJS.ProcessEnv;
  log: Log;
  /** Long work's progress (progress.ts); lines through `log` when not given. */
  progress?: StartProgress;
  print: (line: string) => void;
  hostname: string;
}
