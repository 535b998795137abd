/**
 * `wald serve` as a child process: it logs where it listens, serves, and exits 0 on SIGTERM and
 * SIGINT after a graceful stop; configuration from flags, environment and a YAML file.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { Wal } from '../../src/engine/wal.js';
import { ChildOutput, cleanEnv, parseLog, runWald, spawnWald, type LogLine } from '../support/cli-process.js';
import { makeTempDir } from '../support/temp-dir.js';

const isListening = (line: string): boolean => parseLog(line)?.msg === 'wald listening';

/** Starts `wald serve` on 127.0.0.1:0 in a temp dir; resolves once it logged its address. */
async function startServe(dataDir: string, extraArgs: readonly string[] = [], env: NodeJS.ProcessEnv = cleanEnv()) {
  const child = spawnWald(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--segment-size-bytes', '1048576', ...extraArgs], { env });
  const output = new ChildOutput(child);
  child.stdin.end();
  const listening = parseLog(await output.waitForLine(isListening));
  const address = listening?.address;
  assert.equal(typeof address, 'string');
  return { child, output, address: address as string };
}

describe('wald serve', () => {
  it('logs where it listens and the recovery report, serves, and exits 0 on SIGTERM', async () => {
    const temp = makeTempDir('wald-serve-');
    try {
      const { child, output, address } = await startServe(join(temp.dir, 'data'));
      assert.match(address, /^127\.0\.0\.1:[1-9]\d*$/);
      const recovered = output.lines.map(parseLog).find((line) => line?.msg === 'log recovered');
      assert.equal((recovered?.recovery as LogLine | undefined)?.records, 0);
      const stateRecovery = recovered?.stateRecovery as LogLine | undefined;
      assert.equal(stateRecovery?.snapshotDir, join(temp.dir, 'data', 'snapshots'));
      assert.equal(stateRecovery?.replayedFrom, 0);
      const append = await runWald(['append', '--server', address, 'hello']);
      assert.equal(append.code, 0, append.stderr);
      child.kill('SIGTERM');
      const run = await output.exited;
      assert.equal(run.code, 0, run.stderr);
      const messages = output.lines.map((line) => parseLog(line)?.msg);
      assert.ok(messages.includes('stop signal received'));
      assert.equal(messages.at(-1), 'wald stopped');
    } finally {
      temp.remove();
    }
  });

  it('exits 0 on SIGINT and recovers what it acknowledged on the next start, the key-value view too', async () => {
    const temp = makeTempDir('wald-serve-');
    try {
      const dataDir = join(temp.dir, 'data');
      const first = await startServe(dataDir);
      assert.equal((await runWald(['append', '--server', first.address, '--key', 'k', 'a', 'b'])).code, 0);
      assert.equal((await runWald(['flush-all', '--server', first.address])).code, 1, 'refused by default');
      first.child.kill('SIGINT');
      assert.equal((await first.output.exited).code, 0);
      const second = await startServe(dataDir, [], cleanEnv({ WALD_ALLOW_FLUSH_ALL: 'true' }));
      const recovered = second.output.lines.map(parseLog).find((line) => line?.msg === 'log recovered');
      assert.equal((recovered?.recovery as LogLine | undefined)?.records, 2);
      assert.equal((recovered?.stateRecovery as LogLine | undefined)?.recordsReplayed, 2);
      assert.equal((recovered?.stateRecovery as LogLine | undefined)?.keyCount, 1);
      const flushed = await runWald(['flush-all', '--server', second.address]);
      assert.equal(flushed.code, 0, flushed.stderr);
      assert.match(flushed.stdout, /^removed 1 key /);
      second.child.kill('SIGTERM');
      assert.equal((await second.output.exited).code, 0);
    } finally {
      temp.remove();
    }
  });

  it('exits 1 when the data directory is locked by another process', async () => {
    const temp = makeTempDir('wald-serve-');
    const dir = join(temp.dir, 'data');
    const { wal } = await Wal.open({ dir, segmentSizeBytes: 1024 * 1024 });
    try {
      const run = await runWald(['serve', '--listen', '127.0.0.1:0', '--data-dir', dir]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot open the log/);
      assert.ok(run.stdout.split('\n').some((line) => parseLog(line)?.msg === 'cannot open the log'));
    } finally {
      await wal.close();
      temp.remove();
    }
  });

  it('exits 1 when the address is taken', async () => {
    const temp = makeTempDir('wald-serve-');
    const blocker = createServer();
    try {
      blocker.listen(0, '127.0.0.1');
      await once(blocker, 'listening');
      const { port } = blocker.address() as AddressInfo;
      const run = await runWald(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(temp.dir, 'data'), '--segment-size-bytes', '1048576']);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      blocker.close();
      temp.remove();
    }
  });
});

describe('wald serve --print-config', () => {
  it('prints the resolved configuration as YAML: flags over environment over file', async () => {
    const temp = makeTempDir('wald-config-');
    try {
      const file = join(temp.dir, 'wald.yaml');
      writeFileSync(file, 'data_dir: /from/file\nsync_policy: none\nmax_tail_streams: 9\n');
      const env = cleanEnv({ WALD_CONFIG: file, WALD_SYNC_POLICY: 'interval', WALD_LISTEN: '127.0.0.1:9000' });
      const run = await runWald(['serve', '--print-config', '--listen', '0.0.0.0:7071'], { env });
      assert.equal(run.code, 0, run.stderr);
      const printed = parseYaml(run.stdout) as LogLine;
      assert.equal(printed.listen, '0.0.0.0:7071');
      assert.equal(printed.sync_policy, 'interval');
      assert.equal(printed.data_dir, '/from/file');
      assert.equal(printed.max_tail_streams, 9);
      assert.equal(printed.segment_size_bytes, 64 * 1024 * 1024);
    } finally {
      temp.remove();
    }
  });

  it('prints JSON with --print-config json and reads --config over WALD_CONFIG', async () => {
    const temp = makeTempDir('wald-config-');
    try {
      const fromFlag = join(temp.dir, 'flag.yaml');
      const fromEnv = join(temp.dir, 'env.yaml');
      writeFileSync(fromFlag, 'log_level: debug\n');
      writeFileSync(fromEnv, 'log_level: error\n');
      const run = await runWald(['serve', '--config', fromFlag, '--print-config', 'json'], { env: cleanEnv({ WALD_CONFIG: fromEnv }) });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse(run.stdout) as LogLine).log_level, 'debug');
    } finally {
      temp.remove();
    }
  });

  it('exits 2 naming the key for a bad value, an unknown file key, or a missing file', async () => {
    const temp = makeTempDir('wald-config-');
    try {
      const badFlag = await runWald(['serve', '--print-config', '--sync-interval-ms', 'soon']);
      assert.equal(badFlag.code, 2);
      assert.match(badFlag.stderr, /invalid sync_interval_ms \(from flag --sync-interval-ms\): "soon" is not a positive integer/);
      const badEnv = await runWald(['serve', '--print-config'], { env: cleanEnv({ WALD_PREALLOCATE: 'maybe' }) });
      assert.equal(badEnv.code, 2);
      assert.match(badEnv.stderr, /invalid preallocate \(from env WALD_PREALLOCATE\)/);
      writeFileSync(join(temp.dir, 'bad-value.yaml'), 'max_tail_streams: many\n');
      const badFileValue = await runWald(['serve', '--config', join(temp.dir, 'bad-value.yaml'), '--print-config']);
      assert.equal(badFileValue.code, 2);
      assert.match(badFileValue.stderr, /invalid max_tail_streams \(from .*bad-value\.yaml key max_tail_streams\): "many" is not a positive integer/);
      const crossKey = await runWald(['serve', '--print-config', '--max-batch-bytes', '8388608']);
      assert.equal(crossKey.code, 2);
      assert.match(crossKey.stderr, /invalid max_receive_message_bytes \(from default\): 5242880 is not at least max_batch_bytes/);
      const file = join(temp.dir, 'wald.yaml');
      writeFileSync(file, 'dataDir: /x\n');
      const badKey = await runWald(['serve', '--config', file, '--print-config']);
      assert.equal(badKey.code, 2);
      assert.match(badKey.stderr, /unknown key dataDir .*did you mean data_dir/);
      const missing = await runWald(['serve', '--config', join(temp.dir, 'absent.yaml'), '--print-config']);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read config file/);
      assert.equal((await runWald(['serve', '--sync-policy', 'sometimes'])).code, 2);
      // The key's old name is gone: commander refuses the flag.
      assert.equal((await runWald(['serve', '--sync', 'none', '--print-config'])).code, 2);
    } finally {
      temp.remove();
    }
  });
});
