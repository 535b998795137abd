/**
 * A representative part of the engine's and server's test suites, run once more on memory storage
 * (`WALD_TEST_STORAGE=memory`, test/support/test-storage.ts): each file in its own `node --test`
 * child, as `npm test` runs it, so that the same assertions hold on `MemoryStorage`. The files
 * chosen cover appends, reads, tails, reopening the log (within one MemoryStorage), the key-value
 * view across restarts, compaction and the Node client; the integration harness also fails a test
 * whose server wrote anything under its data directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { TEST_STORAGE_ENV } from '../support/test-storage.js';

/** The compiled test files run again, relative to dist/test/. */
const FILES = [
  'unit/engine/wal.test.js',
  'integration/append-read.test.js',
  'integration/tail-wal.test.js',
  'integration/state.test.js',
  'integration/compaction.test.js',
  'integration/snapshots.test.js',
  'integration/wal-client.test.js',
];

/** Longest a file may run before its child is killed: a bound for a hung server, far above the minute they take. */
const FILE_TIMEOUT_MS = 5 * 60 * 1000;

/** Runs one test file under memory storage; resolves with its exit code and TAP output. */
async function runOnMemory(file: string): Promise<{ code: number | null; output: string }> {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url));
  // Without NODE_TEST_CONTEXT the child is a test runner of its own, not a subtest of this one.
  const { NODE_TEST_CONTEXT: _parentContext, ...env } = process.env;
  const child = spawn(process.execPath, ['--test', '--test-reporter=tap', path], {
    env: { ...env, [TEST_STORAGE_ENV]: 'memory' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: FILE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output: Buffer.concat(chunks).toString('utf8') };
}

describe('test files run again on memory storage', () => {
  for (const file of FILES) {
    test(file, async () => {
      const { code, output } = await runOnMemory(file);
      const passed = Number(/^# pass (\d+)$/m.exec(output)?.[1] ?? 0);
      assert.equal(code, 0, `${file} failed on memory storage:\n${output.slice(-6000)}`);
      assert.ok(passed > 0, `${file} ran no test:\n${output.slice(-2000)}`);
      assert.match(output, /^# fail 0$/m);
    });
  }
});
