/**
 * HashRange and `wald verify --against` across two real servers: a second log made from the
 * first's frames copied frame by frame (readFrames -> appendFrames, as a follower copies them)
 * agrees with it; one whose copy has a different frame in the middle is named at that frame's
 * offset (bisection), with exit code 1, and a range that leaves the frame out agrees.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createEmptyLog } from '../../src/engine/empty-log.js';
import type { Wal } from '../../src/engine/wal.js';
import type { HashRangeResponse } from '../../src/gen/wald/v1/replication.js';
import { WaldServer } from '../../src/server/wald-server.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { runWald } from '../support/cli-process.js';
import { handFrame } from '../support/frame-copy.js';
import { makeTempDir } from '../support/temp-dir.js';
import { startServer, WalTestClient, type Harness } from './support/harness.js';

/** A second server over an empty log that takes the frames of `leader` (same frame seed). */
async function startCopy(leader: Wal): Promise<{ server: WaldServer; address: string; client: WalTestClient; close(): Promise<void> }> {
  const temp = makeTempDir('wald-copy-');
  createEmptyLog({ dir: temp.dir, storage: new NodeStorage(), baseOffset: 0, frameSeed: leader.frameSeed });
  const { server } = await WaldServer.open({ dir: temp.dir, preallocate: false }, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  const port = await server.start();
  const address = `127.0.0.1:${port}`;
  const client = new WalTestClient(address);
  return {
    server,
    address,
    client,
    async close() {
      client.close();
      await server.stop();
      temp.remove();
    },
  };
}

/** Copies `from`'s frames into `to`, one frame per run, until `to` reaches `untilOffset` (default: all of them). Bounded by the frames. */
async function copyFramesUntil(from: Wal, to: Wal, untilOffset = from.highWatermark + 1): Promise<void> {
  for (let runs = 0; to.nextOffset < untilOffset && runs <= untilOffset; runs++) {
    // One byte: every frame comes alone, so the copy stops exactly at a frame boundary.
    const run = await from.readFrames(to.nextOffset, 1);
    await to.appendFrames(
      run.frames.map((frame) => frame.bytes),
      { segmentHeader: run.segmentHeader },
    );
  }
}

function hashRange(client: WalTestClient, fromOffset: number, toOffset?: number): Promise<HashRangeResponse> {
  return new Promise((resolve, reject) => {
    client.raw.hashRange({ fromOffset: BigInt(fromOffset), toOffset: toOffset === undefined ? undefined : BigInt(toOffset) }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** 20 appends of 3 records each: frames at offsets 0, 3, ..., 57. */
async function fill(h: Harness): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await h.client.append({ records: [0, 1, 2].map((j) => ({ value: Buffer.from(`record ${i * 3 + j}`) })) });
  }
}

describe('HashRange and wald verify --against', { timeout: 120_000 }, () => {
  test('two logs holding the same frames agree, range by range', async () => {
    const leader = await startServer();
    const copy = await startCopy(leader.server.wal);
    try {
      await fill(leader);
      await copyFramesUntil(leader.server.wal, copy.server.wal);
      const [a, b] = await Promise.all([hashRange(leader.client, 0), hashRange(copy.client, 0)]);
      assert.deepEqual(Buffer.from(a.sha256), Buffer.from(b.sha256));
      assert.deepEqual([a.frameCount, a.recordCount, a.toOffset], [20n, 60n, 60n]);

      const run = await runWald(['verify', '--server', leader.address, '--against', copy.address, '--step', '7', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(report['ok'], true);
      assert.deepEqual([report['from_offset'], report['to_offset'], report['ranges_compared'], report['record_count']], [0, 60, 9, 60]);
      assert.equal(report['first_difference'], null);
    } finally {
      await copy.close();
      await leader.close();
    }
  });

  test('a copy with one different frame is named at that frame\'s offset, exit 1; a range without it agrees', async () => {
    const leader = await startServer();
    const copy = await startCopy(leader.server.wal);
    try {
      await fill(leader);
      await copyFramesUntil(leader.server.wal, copy.server.wal, 30);
      // Same offsets, record count and epoch, other bytes: then the rest of the leader's frames.
      await copy.server.wal.appendFrames([handFrame(30, 3, leader.server.wal.epoch, leader.server.wal.frameSeed)]);
      await copyFramesUntil(leader.server.wal, copy.server.wal);
      assert.equal(copy.server.wal.nextOffset, 60);

      const run = await runWald(['verify', '--server', leader.address, '--against', copy.address, '--step', '25', '--json']);
      assert.equal(run.code, 1, run.stderr);
      const report = JSON.parse(run.stdout) as { ok: boolean; ranges_compared: number; first_difference: { offset: number; server: Record<string, unknown>; against: Record<string, unknown> } };
      assert.equal(report.ok, false);
      assert.equal(report.first_difference.offset, 30, 'bisection narrows range 25..49 down to the frame at 30');
      assert.equal(report.ranges_compared, 2, 'the comparison stops at the first range that differs');
      assert.equal(report.first_difference.server['record_count'], 3);
      assert.notEqual(report.first_difference.server['sha256'], report.first_difference.against['sha256']);
      assert.match(run.stderr, /differ from offset 30/);

      const text = await runWald(['verify', '--server', leader.address, '--against', copy.address]);
      assert.equal(text.code, 1);
      assert.match(text.stdout, /first difference at offset 30\n/);

      const after = await runWald(['verify', '--server', leader.address, '--against', copy.address, '--from', '33', '--step', '10']);
      assert.equal(after.code, 0, after.stdout + after.stderr);
      assert.match(after.stdout, /offsets\s+33 to 59\n/);
      assert.match(after.stdout, /ok: the logs agree\n/);
    } finally {
      await copy.close();
      await leader.close();
    }
  });

  test('the offline wald verify still needs --data-dir, and refuses it with --against', async () => {
    const missing = await runWald(['verify']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--data-dir is required/);
    const both = await runWald(['verify', '--data-dir', '/nonexistent', '--against', '127.0.0.1:1']);
    assert.equal(both.code, 2);
  });
});
