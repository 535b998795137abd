/**
 * FollowerNode in this process, against a leader server (in this process, or a `wald serve`
 * child): a promotion that comes while the follow loop asks the leader for its epoch end keeps the
 * log as it is (no truncation of the new epoch); a GetSnapshot that fails on the leader's side
 * during an install is retried (the follower does not stop); stop() resolves only once no server
 * of the node is open any more.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials, InterceptingCall, Metadata, status, type Interceptor } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { WalClient } from '../../src/client/wal-client.js';
import { Wal } from '../../src/engine/wal.js';
import { FollowerNode } from '../../src/replication/follower-node.js';
import { FOLLOWER_OPTIONS } from '../../src/replication/follower-options.js';
import { runWald } from '../support/cli-process.js';
import type { GetStatsResponse } from '../../src/gen/wald/v1/stats.js';
import { rawClient, startServe, unary, type ServeChild } from '../support/wald-serve-child.js';
import { startServer, values } from './support/harness.js';

/** A logger that shows nothing and calls `onLog` with each line's message. */
function hookedLogger(onLog: (msg: string) => void): Logger {
  return pino({
    level: 'info',
    hooks: {
      logMethod(args, method) {
        const msg = args.find((arg): arg is string => typeof arg === 'string');
        if (msg !== undefined) onLog(msg);
        method.apply(this, args);
      },
    },
  }, { write: () => undefined });
}

function startNode(dir: string, leader: string, logger: Logger, interceptors: Interceptor[] = []): Promise<FollowerNode> {
  const defaults = FOLLOWER_OPTIONS.defaults;
  return FollowerNode.start({
    walOptions: { dir, preallocate: false },
    serverOptions: { listen: '127.0.0.1:0', shutdownGraceMs: 200 },
    follower: { ...defaults, follow: leader, followerId: 'f', replication: { ...defaults.replication, initialBackoffMs: 10, maxBackoffMs: 50 } },
    credentials: credentials.createInsecure(),
    interceptors,
    logger,
  });
}

/** A log of `count` one-record batches in epoch 0, closed. */
async function writeLog(dir: string, count: number): Promise<void> {
  const { wal } = await Wal.open({ dir, preallocate: false });
  for (let i = 0; i < count; i++) await wal.append([{ value: Buffer.from(`own-${i}`) }]);
  await wal.close();
}

/** Where a closed log ends: its next offset and epoch. */
async function endOf(dir: string): Promise<{ nextOffset: number; epoch: number }> {
  const { wal } = await Wal.open({ dir, preallocate: false });
  try {
    return { nextOffset: wal.nextOffset, epoch: wal.epoch };
  } finally {
    await wal.close();
  }
}

describe('FollowerNode', { timeout: 120_000 }, () => {
  test('a promotion while the loop waits for GetEpochEnd leaves the promoted log whole (no truncation)', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    try {
      // The leader holds 100 records of epoch 0, then epoch 1; the follower 120 of epoch 0: it diverges at 100.
      await leader.server.wal.append(values(100));
      await leader.server.wal.beginEpoch(1);
      await leader.server.wal.append(values(10));
      await writeLog(dir, 120);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let asked!: () => void;
      const isAsked = new Promise<void>((resolve) => (asked = resolve));
      const holdEpochEnd: Interceptor = (options, nextCall) => {
        if (!options.method_definition.path.endsWith('/GetEpochEnd')) return new InterceptingCall(nextCall(options));
        return new InterceptingCall(nextCall(options), {
          sendMessage(message, next) {
            asked();
            void released.then(() => next(message));
          },
        });
      };
      const node = await startNode(dir, leader.address, hookedLogger(() => undefined), [holdEpochEnd]);
      try {
        await isAsked;
        const { replication, wal } = node.server;
        const promoting = replication.promote(wal, undefined);
        // The promotion has stopped the loop (it waits for it) before the leader answers.
        await new Promise((resolve) => setImmediate(resolve));
        release();
        assert.deepEqual(await promoting, { epoch: 1, startOffset: 120 });
        assert.equal(replication.role, 'leader');
      } finally {
        await node.stop();
      }
      assert.deepEqual(await endOf(dir), { nextOffset: 120, epoch: 1 }, 'the promoted log keeps its records and its new epoch');
    } finally {
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stop() resolves only once the server the node was opening is stopped', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    try {
      await leader.server.wal.append(values(100));
      await leader.server.wal.beginEpoch(1);
      await writeLog(dir, 120);
      let node: FollowerNode | undefined;
      let listened = 0;
      let stopCalled!: (stopped: Promise<void>) => void;
      const stopping = new Promise<Promise<void>>((resolve) => (stopCalled = resolve));
      // The second server (after the truncation) logs that it listens before the node takes it as
      // its own: stop() comes in between.
      const logger = hookedLogger((msg) => {
        if (msg === 'wald listening' && ++listened === 2) stopCalled(node!.stop());
      });
      node = await startNode(dir, leader.address, logger);
      await (await stopping);
      // No server of the node holds the log any more: it opens here.
      assert.deepEqual(await endOf(dir), { nextOffset: 100, epoch: 0 }, 'truncated at the leader\'s end of epoch 0');
    } finally {
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a GetSnapshot that fails on the leader\'s side during an install is retried; the follower installs and follows', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let leader: ServeChild | undefined;
    let node: FollowerNode | undefined;
    try {
      leader = await startServe(join(temp, 'leader'), ['--segment-size-bytes', String(64 * 1024), '--compaction-retention-ms', '0']);
      const client = new WalClient(leader.address);
      try {
        for (let i = 0; i < 1000; i += 50) {
          await client.append(Array.from({ length: 50 }, (_, j) => ({ key: Buffer.from(`k${(i + j) % 13}`), value: Buffer.alloc(200, i + j) })));
        }
        const compacted = await runWald(['compact', '--server', leader.address, '--json']);
        assert.equal(compacted.code, 0, compacted.stderr);
        await client.append([{ value: Buffer.from('after') }]);
      } finally {
        await client.close();
      }
      const raw = rawClient(leader.address);
      const leaderStats = await unary<GetStatsResponse>((callback) => raw.getStats({}, callback)).finally(() => raw.close());
      const leaderNext = Number(leaderStats.nextOffset);
      assert.ok(Number(leaderStats.firstOffset) > 0, 'the leader compacted its log start away');
      let getSnapshots = 0;
      // The first GetSnapshot fails as when the leader goes away during the install.
      const failFirstGetSnapshot: Interceptor = (options, nextCall) => {
        if (!options.method_definition.path.endsWith('/GetSnapshot') || ++getSnapshots > 1) return new InterceptingCall(nextCall(options));
        return new InterceptingCall(nextCall(options), {
          start(_metadata, listener) {
            setImmediate(() => listener.onReceiveStatus({ code: status.UNAVAILABLE, details: 'the leader went away (test)', metadata: new Metadata() }));
          },
          sendMessage() {},
          halfClose() {},
        });
      };
      const messages: string[] = [];
      node = await startNode(join(temp, 'follower'), leader.address, hookedLogger((msg) => messages.push(msg)), [failFirstGetSnapshot]);
      let failure: unknown;
      node.failed.catch((error: unknown) => (failure = error));
      // Bounded: 60 s in steps of 50 ms.
      for (let i = 0; i < 1200 && failure === undefined && !(node.activeFollower !== undefined && node.server.wal.nextOffset === leaderNext); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(failure, undefined, `the follower stopped: ${String(failure)}`);
      assert.equal(node.server.wal.nextOffset, leaderNext, 'installed the snapshot and tailed to the leader\'s end');
      assert.ok(getSnapshots >= 2, 'GetSnapshot was asked again');
      assert.ok(messages.includes('replication: an offline step failed on the leader\'s side; following again'));
      assert.ok(messages.includes('replication: the leader compacted past this follower: installed its snapshot'));
    } finally {
      await node?.stop();
      await leader?.kill().catch(() => undefined);
      rmSync(temp, { recursive: true, force: true });
    }
  });
});
