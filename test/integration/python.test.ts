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
/** Debian's protoc (package protobuf-compiler, 3.21 on Debian 12): proto3 `optional` needs 3.15 or later. */
const PROTOC = '/usr/bin/protoc';
/** The gRPC stub generator for Python (package protobuf-compiler-grpc). */
const GRPC_PYTHON_PLUGIN = '/usr/bin/grpc_python_plugin';
/**
 * Where Debian keeps the well-known types (package libprotobuf-dev): google/rpc/status.proto
 * imports google/protobuf/any.proto.
 */
const WELL_KNOWN_TYPES = '/usr/include';
const APT_PACKAGES = 'python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev';
const CLIENT = join(REPO_ROOT, 'test/integration/python/wald_client.py');

/** What wald_client.py prints. */
interface PythonReport {
  append: { first: number; last: number; timestamp: number };
  read: { offset: number; key: string | null; value: string; headers: Record<string, string>; type: string }[];
  read_next_offset: number;
  read_high_watermark: number | null;
  empty_high_watermark: number | null;
  stale_condition: { status: string; reason: string | null } | null;
  huge_offset: { status: string; info: { code: number; reason: string; domain: string; metadata: Record<string, string> } | null } | null;
  stats: { entry_count: number; write_state: string; latest_offset: number | null; high_watermark: number | null };
  tail: string[];
}

/**
 * Fails (never skips) when the Debian packages are missing: CI installs them (`.ci/run`), and a
 * polyglot check that silently does not run checks nothing.
 */
async function requirePythonToolchain(): Promise<void> {
  const install = `apt-get install -y ${APT_PACKAGES}`;
  for (const [path, what] of [
    [PYTHON, 'Debian\'s python3'],
    [PROTOC, 'protoc (protobuf-compiler)'],
    [GRPC_PYTHON_PLUGIN, 'grpc_python_plugin (protobuf-compiler-grpc)'],
    [join(WELL_KNOWN_TYPES, 'google/protobuf/any.proto'), 'the well-known .proto files (libprotobuf-dev)'],
  ] as const) {
    assert.ok(existsSync(path), `${path} is missing: ${what} is not installed (${install})`);
  }
  const { stdout: version } = await run(PROTOC, ['--version']);
  const match = /(\d+)\.(\d+)/.exec(version);
  assert.ok(match !== null && (Number(match[1]) > 3 || (Number(match[1]) === 3 && Number(match[2]) >= 15)), `${PROTOC} is ${version.trim()}: proto3 optional needs protoc 3.15 or later`);
  try {
    await run(PYTHON, ['-c', 'import grpc, google.protobuf']);
  } catch (error) {
    assert.fail(`python3-grpcio (and its python3-protobuf) are not installed (${install}): ${String(error)}`);
  }
}

/**
 * Generates the Python stubs for wald's protos (and the google.rpc ones) into `out` with Debian's
 * protoc and grpc_python_plugin: the commands docs/api.md gives to Python users.
 */
async function generatePythonStubs(out: string): Promise<void> {
  const protos = readdirSync(join(REPO_ROOT, 'proto/wald/v1'))
    .filter((name) => name.endsWith('.proto'))
    .map((name) => `wald/v1/${name}`);
  await run(
    PROTOC,
    [
      '-Iproto',
      '-Iproto-vendor',
      `-I${WELL_KNOWN_TYPES}`,
      `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
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
  test('a client generated from proto/ by Debian\'s protoc appends, reads, sees field presence, gets ErrorInfo and tails', async () => {
    await requirePythonToolchain();
    const out = mkdtempSync(join(tmpdir(), 'wald-py-'));
    const h = await startServer();
    try {
      await generatePythonStubs(out);
      const { stdout } = await run(PYTHON, [CLIENT, out, h.address], { timeout: 60_000 });
      const report = JSON.parse(stdout) as PythonReport;

      assert.equal(report.empty_high_watermark, null, 'an empty log has no high watermark');
      assert.equal(report.append.first, 0);
      assert.equal(report.append.last, 2);
      assert.deepEqual(report.read, [
        { offset: 0, key: 'py-key', value: 'from python', headers: { lang: 'py' }, type: 'RECORD_TYPE_PUT' },
        { offset: 1, key: null, value: 'second', headers: {}, type: 'RECORD_TYPE_PUT' },
        { offset: 2, key: '', value: 'empty key', headers: {}, type: 'RECORD_TYPE_PUT' },
      ]);
      assert.equal(report.read_next_offset, 3);
      assert.equal(report.read_high_watermark, 2);
      assert.deepEqual(report.stale_condition, { status: 'ABORTED', reason: 'WAL_OFFSET_MISMATCH' });
      assert.equal(report.huge_offset?.status, 'INVALID_ARGUMENT');
      assert.equal(report.huge_offset?.info?.reason, 'WAL_INVALID_ARGUMENT');
      assert.equal(report.huge_offset?.info?.domain, 'wald.dev');
      assert.equal(report.huge_offset?.info?.metadata['field'], 'from_offset');
      assert.deepEqual(report.stats, { entry_count: 3, write_state: 'WRITE_STATE_WRITABLE', latest_offset: 2, high_watermark: 2 });
      assert.deepEqual(report.tail, ['from python', 'second', 'empty key', 'live']);

      const read = await h.client.read({ fromOffset: 3n });
      assert.deepEqual(read.records.map((r) => r.value.toString()), ['live'], 'the live append reached the log');
    } finally {
      await h.close();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
