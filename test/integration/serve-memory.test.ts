/**
 * `wald serve --storage memory` as a child process: appends, reads, tails, Get, snapshots
 * (GetSnapshot streams from memory) and compaction work through a client and the CLI, GetStats
 * and `wald stats` say `memory`, and nothing is written to disk: the data directory is never
 * created and the working directory holds afterwards exactly what it held before (the config
 * file, which is still read from disk).
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StorageKind } from '../../src/gen/wald/v1/storage.js';
import { ChildOutput, cleanEnv, parseLog, runWald, spawnWald, type LogLine } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';
import { StreamReader, startServer, values, WalTestClient } from './support/harness.js';
import { SnapshotClient } from './support/snapshot-client.js';

/** Every path under `dir`, relative, sorted. */
function treeOf(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

const record = (key: string, value: string): { key: Buffer; value: Buffer } => ({ key: Buffer.from(key), value: Buffer.from(value) });

describe('wald serve --storage memory', () => {
  it('serves appends, reads, tails, Get, snapshots and compaction from memory and writes nothing to disk', async () => {
    const temp = makeTempDir('wald-serve-memory-');
    try {
      // The config file is read from disk as always; the relative data directory would land here.
      writeFileSync(join(temp.dir, 'wald.yaml'), 'segment_size_bytes: 8192\ncompaction:\n  retention_ms: 0\n');
      const before = treeOf(temp.dir);
      const child = spawnWald(['serve', '--storage', 'memory', '--config', 'wald.yaml', '--listen', '127.0.0.1:0', '--data-dir', 'data'], { cwd: temp.dir, env: cleanEnv() });
      const output = new ChildOutput(child);
      child.stdin.end();
      try {
        const address = parseLog(await output.waitForLine((line) => parseLog(line)?.msg === 'wald listening'))?.address as string;
        const logs = output.lines.map(parseLog);
        assert.ok(
          logs.some((line) => line?.storage === 'memory' && /gone when the server exits/.test(String(line.msg))),
          'the startup log says the log lives in memory and is gone at exit',
        );
        assert.equal(logs.find((line) => line?.msg === 'log recovered')?.storage, 'memory');

        const client = new WalTestClient(address);
        const snapshots = new SnapshotClient(client.raw);
        try {
          for (let i = 0; i < 50; i++) await client.append({ records: [record(`k${i % 10}`, `v${i}`.padEnd(200, '.'))] });
          const tail = new StreamReader(client.tail({ start: { $case: 'fromOffset', value: 45n } }));
          const first = await tail.next();
          assert.equal(first.records[0]?.offset, 45n);
          assert.equal((await client.read({ fromOffset: 49n })).records[0]?.value.toString().replace(/\.+$/, ''), 'v49');
          assert.equal((await client.get({ key: Buffer.from('k3') })).value.toString().replace(/\.+$/, ''), 'v43');
          assert.equal((await runWald(['append', '--server', address, '--key', 'cli', 'from the CLI'])).code, 0);
          const got = await runWald(['get', '--server', address, 'cli']);
          assert.equal(got.code, 0, got.stderr);
          assert.match(got.stdout, /from the CLI/);

          const created = await snapshots.createSnapshot();
          const fetched = await snapshots.getSnapshot(created.snapshotId);
          assert.equal(BigInt(fetched.bytes.length), created.sizeBytes, 'GetSnapshot streamed the snapshot from memory');
          assert.equal((await snapshots.verifySnapshot(created.snapshotId)).valid, true);

          const segmentsBefore = (await client.getStats()).segmentCount;
          assert.ok(segmentsBefore > 1n);
          const compacted = await client.compact();
          assert.ok(compacted.segmentsDeleted > 0, 'compaction deleted segments in memory');
          assert.equal((await client.get({ key: Buffer.from('k3') })).value.toString().replace(/\.+$/, ''), 'v43', 'the state survives compaction');

          const stats = await client.getStats();
          assert.equal(stats.storage, StorageKind.STORAGE_KIND_MEMORY);
          assert.ok(stats.storageMemoryBytes > 0n);
          const printed = await runWald(['stats', '--server', address]);
          assert.match(printed.stdout, /storage\s+memory \(\d+ bytes held; gone when the server exits\)/);
          const json = await runWald(['stats', '--server', address, '--json']);
          assert.equal((JSON.parse(json.stdout) as LogLine).storage, 'memory');
      } finally {
        client.close();
      }
      child.kill('SIGTERM');
      const run = await output.exited;
      assert.equal(run.code, 0, run.stderr);
      } finally {
        // A failed assertion above must not leave the server running (the test would never end).
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await output.exited;
        }
      }
      assert.deepEqual(treeOf(temp.dir), before, 'nothing was written: no data directory, no file');
    } finally {
      temp.remove();
    }
  });

  it('storage: memory in the config file and WALD_STORAGE choose it too; other values are refused naming the key', async () => {
    const temp = makeTempDir('wald-serve-memory-');
    try {
      writeFileSync(join(temp.dir, 'wald.yaml'), 'storage: memory\nmax_memory_storage_bytes: 1048576\n');
      const fromFile = await runWald(['serve', '--config', join(temp.dir, 'wald.yaml'), '--print-config', 'json']);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      const printed = JSON.parse(fromFile.stdout) as LogLine;
      assert.deepEqual([printed.storage, printed.max_memory_storage_bytes], ['memory', 1048576]);
      const fromEnv = await runWald(['serve', '--print-config', 'json'], { env: cleanEnv({ WALD_STORAGE: 'memory' }) });
      assert.equal((JSON.parse(fromEnv.stdout) as LogLine).storage, 'memory');
      const refused = await runWald(['serve', '--storage', 'tape', '--print-config']);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /storage/);
    } finally {
      temp.remove();
    }
  });

  it('GetStats says disk for a server on disk', async () => {
    const h = await startServer({ wal: { storage: 'disk' } });
    try {
      await h.client.append({ records: values(1) });
      const stats = await h.client.getStats();
      assert.equal(stats.storage, StorageKind.STORAGE_KIND_DISK);
      assert.equal(stats.storageMemoryBytes, 0n);
    } finally {
      await h.close();
    }
  });
});
