// The subcommands' names, apart from their parsers, so the pod start path need not load yargs.
export const COMMANDS = ['backup', 'restore'] as const;
export type Command = (typeof COMMANDS)[number];

export const isCommand = (word: string | undefined): word is Command =>
  (COMMANDS as readonly string[]).includes(word ?? '');
