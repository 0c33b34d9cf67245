// Preloaded with `node --import ./bench/rss-hook.mjs`: writes this process's own peak RSS (KiB,
// getrusage RUSAGE_SELF: not its children's, so the temporary etcds are not counted) to $RSS_OUT.
import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  if (process.env.RSS_OUT) writeFileSync(process.env.RSS_OUT, String(process.resourceUsage().maxRSS));
});
