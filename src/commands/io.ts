import type { Log } from '../log.ts';

/** What a command gets: the environment, the log (stderr), and its output (stdout). */
export interface CommandIO {
  env: NodeJS.ProcessEnv;
  log: Log;
  print: (line: string) => void;
  hostname: string;
}
