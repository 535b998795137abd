/**
 * The offline commands on a terminal: each run under `script` (util-linux), which gives the child a
 * pseudo-terminal for stdin, stdout and stderr. `wald repair` asks before it cuts and an answer
 * other than yes changes nothing; `wald verify` draws its progress bar there (and never without
 * a terminal: see cli-offline.test.ts, whose runs have pipes and print no bar).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cleanEnv, WALD_MAIN } from '../support/cli-process.js';
import { segmentName, writeTestLog } from '../support/offline-log.js';
import { makeTempDir } from '../support/temp-dir.js';

/** Runs `wald ARGS...` on a pseudo-terminal, typing `input`; resolves its exit code and everything the terminal showed. */
async function runOnTerminal(args: readonly string[], input: string): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, WALD_MAIN, ...args].map((part) => `'${part.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: cleanEnv() });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

describe('the offline commands on a terminal', () => {
  it('wald repair asks before cutting: no leaves the log as it was, yes cuts it', async () => {
    const temp = makeTempDir('wald-cli-terminal-');
    try {
      const log = await writeTestLog(join(temp.dir, 'data'), 40);
      const offset = String(log.bases[1]!);
      const before = readdirSync(log.dir).sort();
      const no = await runOnTerminal(['repair', '--data-dir', log.dir, '--truncate-at', offset], 'n\n');
      assert.equal(no.code, 1, no.output);
      assert.match(no.output, /Cut\? \[y\/N\]/);
      assert.match(no.output, /repair cancelled: nothing was changed/);
      assert.deepEqual(readdirSync(log.dir).sort(), before);

      const yes = await runOnTerminal(['repair', '--data-dir', log.dir, '--truncate-at', offset], 'y\n');
      assert.equal(yes.code, 0, yes.output);
      assert.match(yes.output, /repaired: the log ends before offset/);
      assert.ok(!readdirSync(log.dir).includes(segmentName(log.bases[1]!)));
      assert.ok(readdirSync(log.dir).some((name) => name.startsWith('repair-')));
    } finally {
      temp.remove();
    }
  });

  it('wald verify draws a progress bar of the bytes it reads, then the report', async () => {
    const temp = makeTempDir('wald-cli-terminal-');
    try {
      const log = await writeTestLog(join(temp.dir, 'data'), 40);
      const run = await runOnTerminal(['verify', '--data-dir', log.dir], '');
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /verify \[[=-]+\] 100% \| \d+\/\d+ bytes/);
      assert.match(run.output, /ok: no faults/);
      const json = await runOnTerminal(['verify', '--data-dir', log.dir, '--json'], '');
      assert.equal(json.code, 0, json.output);
      assert.doesNotMatch(json.output, /verify \[/, 'no bar with --json');
    } finally {
      temp.remove();
    }
  });
});
