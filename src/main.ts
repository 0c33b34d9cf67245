// The bundle's entry (dist/etcd-migrate.mjs): run the CLI.
import { run } from './cli.ts';

await run();
