// A process for the lock tests: takes a data dir's lock (src/lock.ts), prints "held <pid>" and holds
// it until its stdin ends (then releases it); with --exit it exits at once without releasing. A
// refusal prints "refused <message>" and exits 3.
import { acquireLock } from '../../src/lock.ts';

const [dir, mode] = process.argv.slice(2);
try {
  const lock = await acquireLock(dir!);
  process.stdout.write(`held ${process.pid}\n`);
  if (mode === '--exit') process.exit(0);
  process.stdin.resume();
  process.stdin.on('end', () => void lock.release().then(() => process.exit(0)));
} catch (e) {
  process.stdout.write(`refused ${(e as Error).message}\n`);
  process.exit(3);
}
