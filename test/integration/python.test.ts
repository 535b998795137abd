import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { startServer } from './support/harness.js';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Debian's interpreter: a pyenv `python3` earlier on PATH does not see Debian's grpc modules. */
const PYTHON = '/usr/bin/python3';
const CLIENT = join(REPO_ROOT, 'test/integration/python/wald_client.py');

/** What wald_client.py prints. */
interface PythonReport {
  append: { first: number; last: number; timestamp: number };
  read: { offset: number; key: string | null; value: string; headers: Record<string, string>; type: string }[];
  read_next_offset: number;
  read_high_watermark: number | null;
  huge_offset: { status: string; info: { code: number; reason: string; domain: string; metadata: Record<string, string> } | null } | null;
  stats: { entry_count: number; write_state: string };
  tail: string[];
}

/**
 * Fails (never skips) when the Debian packages are missing: CI installs them (`.ci/run`), and a
 * polyglot check that silently does not run checks nothing.
 */
async function requirePythonGrpc(): Promise<void> {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: apt-get install -y python3-grpcio python3-grpc-tools`);
  try {
    await run(PYTHON, ['-c', 'import grpc, grpc_tools.protoc']);
  } catch (error) {
    assert.fail(`python3-grpcio / python3-grpc-tools are not installed (apt-get install -y python3-grpcio python3-grpc-tools): ${String(error)}`);
  }
}

/** Generates the Python stubs for wald's protos (and the google.rpc ones) into `out`. */
async function generatePythonStubs(out: string): Promise<void> {
  const { stdout: include } = await run(PYTHON, ['-c', 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))']);
  const protos = readdirSync(join(REPO_ROOT, 'proto/wald/v1'))
    .filter((name) => name.endsWith('.proto'))
    .map((name) => `wald/v1/${name}`);
  await run(
    PYTHON,
    [
      '-m',
      'grpc_tools.protoc',
      '-Iproto',
      '-Iproto-vendor',
      `-I${include.trim()}`,
      `--python_out=${out}`,
      `--grpc_python_out=${out}`,
      ...protos,
      'google/rpc/status.proto',
      'google/rpc/error_details.proto',
    ],
    { cwd: REPO_ROOT },
  );
}

describe('Python client', { timeout: 120_000 }, () => {
  test('a client generated from proto/ by grpc_tools appends, reads, gets ErrorInfo and tails', async () => {
    await requirePythonGrpc();
    const out = mkdtempSync(join(tmpdir(), 'wald-py-'));
    const h = await startServer();
    try {
      await generatePythonStubs(out);
      const { stdout } = await run(PYTHON, [CLIENT, out, h.address], { timeout: 60_000 });
      const report = JSON.parse(stdout) as PythonReport;

      assert.equal(report.append.first, 0);
      assert.equal(report.append.last, 1);
      assert.deepEqual(report.read, [
        { offset: 0, key: 'py-key', value: 'from python', headers: { lang: 'py' }, type: 'RECORD_TYPE_PUT' },
        { offset: 1, key: null, value: 'second', headers: {}, type: 'RECORD_TYPE_PUT' },
      ]);
      assert.equal(report.read_next_offset, 2);
      assert.equal(report.read_high_watermark, 1);
      assert.equal(report.huge_offset?.status, 'INVALID_ARGUMENT');
      assert.equal(report.huge_offset?.info?.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(report.huge_offset?.info?.domain, 'wald.dev');
      assert.equal(report.huge_offset?.info?.metadata['field'], 'from_offset');
      assert.equal(report.stats.entry_count, 2);
      assert.equal(report.stats.write_state, 'WRITE_STATE_WRITABLE');
      assert.deepEqual(report.tail, ['from python', 'second', 'live']);

      const read = await h.client.read({ fromOffset: 2n });
      assert.deepEqual(read.records.map((r) => r.value.toString()), ['live'], 'the live append reached the log');
    } finally {
      await h.close();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
