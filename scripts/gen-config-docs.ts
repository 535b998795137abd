/**
 * `npm run gen:docs`: writes the key table of docs/configuration.md from the declarations of the
 * engine's, the server's and `wald serve`'s options (src/config/config-table.ts). With `--check`
 * it writes nothing and exits 1 when the page is out of date; the unit test
 * test/unit/config/config-table.test.ts makes the same check in every test run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderKeyTable, withKeyTable } from '../src/config/config-table.js';
import { SERVE_CONFIG } from '../src/config/serve-config.js';

/** docs/configuration.md, from dist/scripts/. */
const PAGE = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

const page = readFileSync(PAGE, 'utf8');
const updated = withKeyTable(page, renderKeyTable(SERVE_CONFIG));
if (process.argv.includes('--check')) {
  if (updated !== page) {
    console.error('docs/configuration.md is out of date with the option declarations: run npm run gen:docs');
    process.exit(1);
  }
} else if (updated !== page) {
  writeFileSync(PAGE, updated);
  console.log('docs/configuration.md: key table rewritten');
}
