/**
 * The Python package `wald` (clients/python/) against a real `wald serve` child, with Debian's
 * python3-grpcio and the stubs checked in by `npm run gen`: append, read, get, stats, a WalError
 * with its ErrorInfo reason, and a tail that resumes across a SIGKILL and restart of the server on
 * the same data directory and port without gap or duplicate (clients/python/tests/smoke.py).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { WalClient } from '../../src/client/wal-client.js';
import { ChildOutput, parseLog, spawnWald } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Debian's interpreter: a pyenv `python3` earlier on PATH does not see Debian's grpc modules. */
const PYTHON = '/usr/bin/python3';
const PACKAGE_DIR = join(REPO_ROOT, 'clients/python');
const SMOKE = join(PACKAGE_DIR, 'tests/smoke.py');
/** Records the Python tail must see: three before the restart, three after. */
const TAIL_TOTAL = 6;

interface ServeChild {
  readonly address: string;
  kill(): Promise<void>;
}

/** Starts `wald serve` on `127.0.0.1:port` over `dataDir`; resolves once it listens. */
async function startServe(dataDir: string, port: number): Promise<ServeChild> {
  const child = spawnWald(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--sync-policy', 'always']);
  const output = new ChildOutput(child);
  child.stdin.end();
  const address = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))?.address;
  assert.equal(typeof address, 'string');
  return {
    address: address as string,
    async kill() {
      child.kill('SIGKILL');
      await output.exited;
    },
  };
}

function phase(name: string): (line: string) => boolean {
  return (line) => line.startsWith('{') && (JSON.parse(line) as { phase?: string }).phase === name;
}

describe('the Python package wald', { timeout: 120_000 }, () => {
  test('appends, reads, gets, raises WalError with the reason, and tails across a server restart', async () => {
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing (apt-get install -y python3-grpcio)`);
    const temp = makeTempDir('wald-pyclient-');
    const dataDir = join(temp.dir, 'data');
    let server = await startServe(dataDir, 0);
    const port = Number(server.address.slice(server.address.lastIndexOf(':') + 1));
    const python = spawn(PYTHON, [SMOKE, server.address, String(TAIL_TOTAL)], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONPATH: PACKAGE_DIR, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const output = new ChildOutput(python);
    python.stdin.end();
    try {
      const calls = JSON.parse(await output.waitForLine(phase('calls'))) as Record<string, unknown>;
      assert.deepEqual((calls['append'] as Record<string, unknown>)['first_offset'], 0);
      assert.deepEqual((calls['append'] as Record<string, unknown>)['last_offset'], 2);
      assert.deepEqual(calls['stale'], { code: 'ABORTED', reason: 'WAL_OFFSET_MISMATCH', domain: 'wald.dev', metadata: { expectedOffset: '0', nextOffset: '3' } });
      assert.deepEqual(calls['read'], {
        records: [
          { offset: 0, key: 'user-1', value: 'v1', headers: {}, type: 'RECORD_TYPE_PUT' },
          { offset: 1, key: null, value: 'second', headers: { lang: 'py' }, type: 'RECORD_TYPE_PUT' },
          { offset: 2, key: 'user-1', value: 'v1b', headers: {}, type: 'RECORD_TYPE_PUT' },
        ],
        next_offset: 3,
        high_watermark: 2,
      });
      assert.deepEqual(calls['get'], { value: 'v1b', offset: 2 });
      assert.equal(calls['get_missing'], null);
      assert.deepEqual(calls['stats'], { entry_count: 3, latest_offset: 2, high_watermark: 2, next_offset: 3, write_state: 'WRITE_STATE_WRITABLE' });

      await output.waitForLine(phase('tailing'));
      await server.kill();
      server = await startServe(dataDir, port);
      const node = new WalClient(server.address);
      try {
        for (let i = 0; i < 3; i++) await node.append([{ value: Buffer.from(`after-${i}`) }]);
      } finally {
        await node.close();
      }

      const tail = JSON.parse(await output.waitForLine(phase('tail'))) as { offsets: number[]; values: string[] };
      assert.deepEqual(tail.offsets, [0, 1, 2, 3, 4, 5], 'no gap, no duplicate across the restart');
      assert.deepEqual(tail.values, ['v1', 'second', 'v1b', 'after-0', 'after-1', 'after-2']);
      const run = await output.exited;
      assert.equal(run.code, 0, run.stderr);
    } finally {
      if (python.exitCode === null && python.signalCode === null) python.kill('SIGKILL');
      await server.kill();
      temp.remove();
    }
  });
});
