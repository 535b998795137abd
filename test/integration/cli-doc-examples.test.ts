/**
 * The example scripts of docs/cli.md, run as they stand (bash and jq, with `wald` on the PATH)
 * against a real server on 127.0.0.1: the docs stay true, and scripts written for rstmdb-cli's
 * JSON keep working with `wald`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WaldServer } from '../../src/server/wald-server.js';
import { cleanEnv, WALD_MAIN } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

const CLI_DOC = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url));

/** The body of the ```sh block of docs/cli.md whose first line is `# example: NAME`. */
function docExample(name: string): string {
  const blocks = readFileSync(CLI_DOC, 'utf8').split('```sh\n').slice(1).map((rest) => rest.slice(0, rest.indexOf('```')));
  const found = blocks.filter((block) => block.startsWith(`# example: ${name}\n`));
  assert.equal(found.length, 1, `docs/cli.md has exactly one example named ${name}`);
  return found[0]!;
}

/** Runs `script` with bash in `cwd`, `wald` on the PATH talking to `server`; resolves its exit code and output. */
async function runScript(script: string, cwd: string, server: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  writeFileSync(join(cwd, 'wald'), `#!/bin/sh\nexec "${process.execPath}" "${WALD_MAIN}" "$@"\n`);
  chmodSync(join(cwd, 'wald'), 0o755);
  const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    env: cleanEnv({ ...env, PATH: `${cwd}:${process.env.PATH ?? ''}`, WALD_SERVER: server }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr };
}

describe('docs/cli.md scripts', () => {
  it('the backup loop copies every record in order, and a second run goes on where the first stopped', async () => {
    const temp = makeTempDir('wald-doc-examples-');
    const { server } = await WaldServer.open({ dir: join(temp.dir, 'data') }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
    try {
      const address = `127.0.0.1:${await server.start()}`;
      const wal = server.wal;
      const value = (i: number): Buffer => Buffer.from(`record-${i}`);
      for (let i = 0; i < 2500; i += 100) {
        await wal.append(Array.from({ length: 100 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % 7}`), value: value(i + j) })));
      }
      const script = docExample('backup-loop');

      const first = await runScript(script, temp.dir, address);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(readFileSync(join(temp.dir, 'backup.offset'), 'utf8').trim(), '2500');

      await wal.append([{ value: value(2500) }, { value: value(2501) }]);
      const second = await runScript(script, temp.dir, address);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(readFileSync(join(temp.dir, 'backup.offset'), 'utf8').trim(), '2502');

      const lines = readFileSync(join(temp.dir, 'backup.jsonl'), 'utf8').trimEnd().split('\n');
      const records = lines.map((line) => JSON.parse(line) as { offset: number; value: string });
      assert.deepEqual(
        records.map((r) => [r.offset, r.value]),
        Array.from({ length: 2502 }, (_, i) => [i, `record-${i}`]),
      );
    } finally {
      await server.stop();
      temp.remove();
    }
  });

  it('the growth monitor compacts a log past its limit, logging the figures, and leaves a log below it alone', async () => {
    const temp = makeTempDir('wald-doc-examples-');
    const { server } = await WaldServer.open(
      { dir: join(temp.dir, 'data'), preallocate: false, segmentSizeBytes: 8192 },
      { listen: '127.0.0.1:0', state: { compaction: { retentionMs: 0 } } },
      pino({ level: 'silent' }),
    );
    try {
      const address = `127.0.0.1:${await server.start()}`;
      for (let i = 0; i < 300; i += 10) {
        await server.wal.append(Array.from({ length: 10 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % 7}`), value: Buffer.alloc(200, 'v') })));
      }
      const sizeBefore = server.wal.stats().bytesOnDisk;
      const script = docExample('growth-monitor');

      const below = await runScript(script, temp.dir, address, { LIMIT_BYTES: String(sizeBefore) });
      assert.equal(below.code, 0, below.stderr);
      assert.equal(server.wal.firstOffset, 0, 'not past the limit: no compaction');

      const past = await runScript(script, temp.dir, address, { LIMIT_BYTES: String(sizeBefore - 1) });
      assert.equal(past.code, 0, past.stderr);
      const lines = readFileSync(join(temp.dir, 'compactions.jsonl'), 'utf8').trimEnd().split('\n');
      assert.equal(lines.length, 1);
      const figures = JSON.parse(lines[0]!) as { snapshot_id: string; segments_deleted: number; bytes_reclaimed: number; first_offset: number };
      assert.ok(figures.segments_deleted > 0 && figures.bytes_reclaimed > 0);
      assert.equal(figures.first_offset, server.wal.firstOffset);
      assert.ok(server.wal.stats().bytesOnDisk < sizeBefore);
    } finally {
      await server.stop();
      temp.remove();
    }
  });
});
