import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderKeyTable, withKeyTable } from '../../../src/config/config-table.js';
import { SERVE_CONFIG } from '../../../src/config/serve-config.js';

const PAGE = new URL('../../../../docs/configuration.md', import.meta.url);

describe('the key table of docs/configuration.md', () => {
  it('is the table rendered from the declarations (npm run gen:docs rewrites it)', () => {
    const page = readFileSync(PAGE, 'utf8');
    assert.equal(page, withKeyTable(page, renderKeyTable(SERVE_CONFIG)), 'docs/configuration.md is out of date: run npm run gen:docs');
  });

  it('has one row per key with its flag, variable, default and doc line', () => {
    const rows = renderKeyTable(SERVE_CONFIG).split('\n').slice(2);
    assert.equal(rows.length, SERVE_CONFIG.keys.length);
    SERVE_CONFIG.keys.forEach((key, i) => {
      const row = rows[i]!;
      assert.ok(row.startsWith(`| \`${key.name}\` | \`${key.flag}\``), row);
      assert.ok(row.includes(`| \`${key.env}\` |`), `${key.name}: ${key.env} missing`);
      const { default: written } = key.option.spec;
      assert.ok(row.includes(written === undefined ? '| none |' : `| \`${String(written)}\``), `${key.name}: default missing`);
      assert.ok(row.toLowerCase().includes(key.option.spec.doc.replaceAll('|', '\\|').toLowerCase()), `${key.name}: doc missing`);
    });
  });

  it('states the bounds and the rules across keys where they apply', () => {
    const rows = new Map(renderKeyTable(SERVE_CONFIG).split('\n').map((row) => [/^\| `([^`]+)`/.exec(row)?.[1], row]));
    assert.match(rows.get('segment_size_bytes')!, /`67108864` \(64 MiB\).*Must be an integer from 4096 to 2147483648\./);
    assert.match(rows.get('max_receive_message_bytes')!, /Must be at least `max_batch_bytes` \+ 256 KiB of framing\./);
    assert.match(rows.get('sync_policy')!, /\| `always` \\\| `interval` \\\| `none` \|/);
    assert.match(rows.get('preallocate')!, /`--preallocate`, `--no-preallocate`/);
  });

  it('refuses a page without the markers', () => {
    assert.throws(() => withKeyTable('# no table here\n', 'x'), /has no/);
  });
});
