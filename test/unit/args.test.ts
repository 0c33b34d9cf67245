// The main command's parser and the CLI's exit codes.
import { describe, expect, it } from 'vitest';
import { nearestFlag, parseArgs } from '../../src/args.ts';
import { parseCommand } from '../../src/commands/args.ts';
import { parseRehearseArgs } from '../../src/commands/rehearse/args.ts';
import { exitCode } from '../../src/cli.ts';
import { INTERNAL_ERROR_EXIT, isBug, StepError, UsageError } from '../../src/errors.ts';
import { ENV, OPTIONS } from '../../src/option-table.ts';

const flags = Object.keys(OPTIONS);

describe('nearestFlag', () => {
  it('finds the flag a typo, a prefix or a longer name meant', () => {
    expect(nearestFlag('data-dri', flags)).toBe('data-dir');
    expect(nearestFlag('taget-version', flags)).toBe('target-version');
    expect(nearestFlag('data-directory', flags)).toBe('data-dir');
    expect(nearestFlag('keep-backup', flags)).toBe('keep-backups');
  });

  it('suggests nothing for a name like no flag', () => {
    expect(nearestFlag('zzz', flags)).toBeUndefined();
    expect(nearestFlag('compression', flags)).toBeUndefined();
  });
});

describe('parseArgs', () => {
  it('reads every option of the table into its Flags key', () => {
    const argv: string[] = [];
    for (const [k, o] of Object.entries(OPTIONS)) {
      if (k === 'help') continue;
      const choice = 'choices' in o ? o.choices[o.choices.length - 1]! : `v-${k}`;
      argv.push(`--${k}`, ...(o.type === 'boolean' ? [] : o.type === 'number' ? ['7'] : [choice]));
    }
    const f = parseArgs(argv) as unknown as Record<string, unknown>;
    expect(f.dataDir).toBe('v-data-dir');
    expect(f.initialAdvertisePeerUrls).toBe('v-initial-advertise-peer-urls');
    expect(f.keepBackups).toBe(7);
    expect(f.dryRun).toBe(true);
    expect(f.version).toBe(true);
    expect(f.output).toBe('json');
    expect(f.logFormat).toBe('json');
    expect(f.logLevel).toBe('error');
  });

  it('refuses a log level that is none, naming the four', () => {
    expect(() => parseArgs(['--log-level', 'verbose'])).toThrow(
      '--log-level verbose is not a level: use debug, info, warn or error',
    );
    expect(parseArgs(['--log-level', 'debug']).logLevel).toBe('debug');
  });

  it('refuses an unknown flag with the nearest valid name', () => {
    expect(() => parseArgs(['--bin-dirs', '/x'])).toThrow(
      /unknown flag --bin-dirs; did you mean --bin-dir\? see etcd-migrate --help/,
    );
  });

  it('keeps what follows -- for etcd', () => {
    expect(parseArgs(['--dry-run', '--', '--name', 'a']).etcdArgs).toEqual(['--name', 'a']);
  });
});

describe('the subcommands', () => {
  it('take --log-format and --log-level (read before parsing, cli.ts) and refuse a level that is none', () => {
    expect(() => parseCommand(['backup', 'f', '--log-format', 'json', '--log-level', 'debug'])).not.toThrow();
    expect(() => parseCommand(['restore', 'f', '--log-level=warn'])).not.toThrow();
    expect(() => parseRehearseArgs(['rehearse', '--log-format=json', '--log-level', 'error'])).not.toThrow();
    expect(() => parseCommand(['backup', 'f', '--log-level', 'verbose'])).toThrow(/log-level/);
    expect(() => parseRehearseArgs(['rehearse', '--log-level', 'verbose'])).toThrow(/log-level/);
  });
});

describe('the option table', () => {
  it('gives each environment variable to one option', () => {
    const names = Object.values(ENV);
    expect(new Set(names).size).toBe(names.length);
    expect(ENV.etcdServerExtraArgs).toBe('ETCD_CREDS');
  });
});

describe('exit codes', () => {
  it('bad input 2, a failed step 1, a bug its own code', () => {
    expect(exitCode(new UsageError('x'))).toBe(2);
    expect(exitCode(new StepError('x'))).toBe(1);
    expect(exitCode(new TypeError('x is not a function'))).toBe(INTERNAL_ERROR_EXIT);
    expect(INTERNAL_ERROR_EXIT).not.toBe(1);
  });

  it('a step reports failures of its own, not bugs in this program', () => {
    expect(isBug(new TypeError('cannot read properties of undefined'))).toBe(true);
    expect(isBug(Object.assign(new Error('assert'), { code: 'ERR_ASSERTION' }))).toBe(true);
    expect(isBug(Object.assign(new Error('no space'), { code: 'ENOSPC' }))).toBe(false);
    expect(isBug(new StepError('etcd exited 1'))).toBe(false);
  });
});

describe('the option table of docs/configuration.md', () => {
  it('is the one the option table makes (node scripts/readme-options.ts rewrites it)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { withOptionsTable } = await import('../../src/option-doc.ts');
    const readme = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(withOptionsTable(readme)).toBe(readme);
  });

  it('has a row for every option, with its variable', async () => {
    const { optionsMarkdown } = await import('../../src/option-doc.ts');
    const rows = optionsMarkdown().split('\n').slice(2);
    expect(rows).toHaveLength(Object.keys(OPTIONS).length);
    expect(rows.find((r) => r.startsWith('| `--etcd-server-extra-args`'))).toContain('`ETCD_CREDS`');
  });
});

describe("the option table's defaults", () => {
  it('are the ones resolveOptions applies', async () => {
    const { resolveOptions } = await import('../../src/options.ts');
    const { fmtData } = await import('../../src/version.ts');
    const o = resolveOptions({ dataDir: '/d', targetVersion: '3.5.30' }, {}, { hostname: 'HOST' });
    const shown = (k: keyof typeof OPTIONS): string | undefined => {
      const d = (OPTIONS[k] as { default?: string }).default;
      return d && /^`([^`]+)`/.exec(d)?.[1];
    };
    expect(shown('bin-dir')).toBe(o.binDir);
    expect(shown('port')).toBe(String(o.port));
    expect(shown('peer-port')).toBe(String(o.peerPort));
    expect(shown('etcd-data-prefix')).toBe(o.dataPrefix);
    expect(shown('keep-backups')).toBe(String(o.keepBackups));
    expect(shown('step-timeout')).toBe(String(o.stepTimeoutMs / 1000));
    expect(fmtData(o.target)).toBe(`3.5.30/${shown('target-storage')}`);
    expect(shown('name')).toBe(o.name.replace('HOST', '<hostname>'));
    expect(shown('backup-dir')).toBe(o.backupDir.replace('/d', '<data-dir>'));
  });
});
