// Writes the option table of docs/configuration.md from src/option-table.ts, between its markers.
// node scripts/readme-options.ts [--check]   (--check: exit 1, writing nothing, when it is stale)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BEGIN, END, withOptionsTable } from '../src/option-doc.ts';

const readme = path.resolve(import.meta.dirname, '../docs/configuration.md');
const before = readFileSync(readme, 'utf8');
const after = withOptionsTable(before);
if (after === undefined) {
  console.error(`readme-options: docs/configuration.md lacks the markers ${BEGIN} ... ${END}`);
  process.exit(1);
}
if (process.argv.includes('--check')) {
  if (after !== before)
    console.error(
      'readme-options: the option table of docs/configuration.md is stale: run node scripts/readme-options.ts',
    );
  process.exit(after === before ? 0 : 1);
}
if (after !== before) writeFileSync(readme, after);
