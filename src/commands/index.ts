// The subcommands next to the default migration: `backup` and `restore`.
import { backupCommand } from './backup.ts';
import { parseCommand } from './args.ts';
import type { CommandIO } from './io.ts';
import { restoreCommand } from './restore.ts';

export async function runCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const flags = parseCommand(argv);
  if (flags.help) return 0;
  if (flags.command === 'backup') await backupCommand(flags, io);
  else await restoreCommand(flags, io);
  return 0;
}
