// Preloaded with `node --import ./bench/mem-trace.mjs` (e.g. through BENCH_NODE_OPTIONS): every
// 50 ms, this process's process.memoryUsage() (MiB: rss, heapTotal, heapUsed, external,
// arrayBuffers) as a line of $MEM_TRACE, with the log lines it writes to fd 2 in between (their
// first 100 characters), so that each part of the run can be told apart.
import fs, { appendFileSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const out = process.env.MEM_TRACE;
if (out) {
  const t0 = Date.now();
  const mib = (n) => (n / 2 ** 20).toFixed(1);
  writeFileSync(out, 'ms\trss\theapTotal\theapUsed\texternal\tarrayBuffers\n');
  const sample = () => {
    const m = process.memoryUsage();
    appendFileSync(
      out,
      `${Date.now() - t0}\t${mib(m.rss)}\t${mib(m.heapTotal)}\t${mib(m.heapUsed)}\t` +
        `${mib(m.external)}\t${mib(m.arrayBuffers)}\n`,
    );
  };
  setInterval(sample, 50).unref();
  // The log writes to fd 2 with fs.writeSync (src/log.ts).
  const writeSync = fs.writeSync;
  fs.writeSync = (fd, chunk, ...rest) => {
    if (fd === 2) {
      sample();
      appendFileSync(out, `# ${Date.now() - t0} ${String(chunk).slice(0, 100).trim()}\n`);
    }
    return writeSync(fd, chunk, ...rest);
  };
  syncBuiltinESMExports();
  process.on('exit', () => appendFileSync(out, `# peak rss ${mib(process.resourceUsage().maxRSS * 1024)} MiB\n`));
}
