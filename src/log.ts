// Log lines go to stderr, prefixed, one per event. Key values never reach a log line.
export type Log = (line: string) => void;

export const stderrLog: Log = (line) => {
  process.stderr.write(`etcd-migrate: ${line}\n`);
};

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
