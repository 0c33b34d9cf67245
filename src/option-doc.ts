// The option table of docs/configuration.md, made from the option table (scripts/readme-options.ts writes it).
import { OPTIONS, type OptionSpec } from './option-table.ts';

export const BEGIN = '<!-- options:begin (generated from src/option-table.ts by scripts/readme-options.ts) -->';
export const END = '<!-- options:end -->';

const code = (s: string): string => `\`${s}\``;
/** Markdown table cells cannot hold a bare `|`. */
const cell = (s: string): string => s.replace(/\|/g, '\\|');
/** Plain text: `<name>` would read as an HTML tag. */
const text = (s: string): string => cell(s).replace(/</g, '\\<');

export function optionsMarkdown(table: Readonly<Record<string, OptionSpec>> = OPTIONS): string {
  const rows = Object.entries(table).map(([k, o]) => {
    const flag = k === 'help' ? `${code('--help')}, ${code('-h')}` : code(`--${k}`);
    return `| ${flag} | ${o.env ? code(o.env) : ''} | ${cell(o.default ?? '')} | ${text(o.describe)} |`;
  });
  return ['| flag | env | default | what |', '|---|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by the table; undefined when a marker is missing. */
export function withOptionsTable(readme: string, table = optionsMarkdown()): string | undefined {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b === -1 || e < b) return undefined;
  return `${readme.slice(0, b + BEGIN.length)}\n${table}\n${readme.slice(e)}`;
}
