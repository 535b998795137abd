/**
 * FollowerNode in this process, against a leader server in this process: a promotion that comes
 * while the follow loop asks the leader for its epoch end keeps the log as it is (no truncation of
 * the new epoch); stop() resolves only once no server of the node is open any more.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials, InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { Wal } from '../../src/engine/wal.js';
import { FollowerNode } from '../../src/replication/follower-node.js';
import { FOLLOWER_OPTIONS } from '../../src/replication/follower-options.js';
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
});
