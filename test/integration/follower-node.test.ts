/**
 * FollowerNode in this process, against a leader server (in this process, or a `wald serve`
 * child): a promotion that comes while the follow loop asks the leader for its epoch end keeps the
 * log as it is (no truncation of the new epoch); a GetSnapshot that fails on the leader's side
 * during an install is retried (the follower does not stop); stop() resolves only once no server
 * of the node is open any more; a log promoted while it lagged is cut where its own epoch began,
 * although the leader's older epoch runs past that point; a failure between moving the snapshots
 * above a cut aside and the cut leaves nothing of the divergent state behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { credentials, InterceptingCall, Metadata, status, type Interceptor } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { WalClient } from '../../src/client/wal-client.js';
import { Wal } from '../../src/engine/wal.js';
import { isWalError } from '../../src/errors.js';
import { NodeStorage } from '../../src/storage/node-storage.js';
import { WaldServer } from '../../src/server/wald-server.js';
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

function startNode(dir: string, leader: string, logger: Logger, interceptors: Interceptor[] = [], storage?: NodeStorage): Promise<FollowerNode> {
  const defaults = FOLLOWER_OPTIONS.defaults;
  return FollowerNode.start({
    walOptions: { dir, preallocate: false, ...(storage === undefined ? {} : { storage }) },
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

/** Waits, at most 20 s in steps of 20 ms, until `isDone()`; fails naming `what` otherwise. */
async function waitFor(isDone: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !isDone(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(isDone(), `timed out waiting for ${what}`);
}

/** The values of `count` records of `wal` from `from`. */
async function valuesOf(wal: Wal, from: number, count: number): Promise<string[]> {
  return (await wal.read(from, { limit: count })).map((record) => record.value.toString());
}

/** The leader begins epoch 1 and writes 50 records; a follower on `dir` copies them and stops. */
async function copyFirstRecords(leader: Awaited<ReturnType<typeof startServer>>, dir: string): Promise<void> {
  await leader.server.wal.beginEpoch(1);
  await leader.server.wal.append(values(50, 'a'));
  const node = await startNode(dir, leader.address, hookedLogger(() => undefined));
  try {
    await waitFor(() => node.server.wal.highWatermark === 49, 'the follower to copy 50 records');
  } finally {
    await node.stop();
  }
}

/** Node's storage, but the first rename of a snapshot file (`.snap`) fails, as a crash there would stop the step. */
class FailFirstMoveAside extends NodeStorage {
  failed = false;
  override rename(from: string, to: string): void {
    if (!this.failed && from.endsWith('.snap')) {
      this.failed = true;
      throw Object.assign(new Error('EIO: injected failure moving a snapshot aside (test)'), { code: 'EIO' });
    }
    super.rename(from, to);
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

  test('a log promoted while it lagged is cut where its own epoch began, though the leader\'s older epoch runs past it', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let node: FollowerNode | undefined;
    try {
      await copyFirstRecords(leader, dir);
      // The follower is promoted while the leader is cut off (epoch 2 from 50) and writes 30 records
      // of its own; the leader meanwhile wrote 30 more in epoch 1, and is then promoted to epoch 3.
      const { wal: promoted } = await Wal.open({ dir, preallocate: false });
      await promoted.beginEpoch(2);
      await promoted.append(values(30, 'own'));
      await promoted.close();
      await leader.server.wal.append(values(30, 'b'));
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(10, 'c'));
      // GetEpochEnd(2) on the leader answers epoch 1, ending at 80: past the follower's own epoch 2.
      const messages: string[] = [];
      node = await startNode(dir, leader.address, hookedLogger((msg) => messages.push(msg)));
      await waitFor(() => node!.activeFollower !== undefined && node!.server.wal.highWatermark === 89, 'the follower to reach the leader\'s end');
      assert.deepEqual(await valuesOf(node.server.wal, 50, 40), await valuesOf(leader.server.wal, 50, 40), 'the records from 50 on are the leader\'s');
      assert.deepEqual((await node.server.wal.hashRange(0, 90)).sha256, (await leader.server.wal.hashRange(0, 90)).sha256, 'HashRange agrees');
      assert.ok(messages.includes('replication: truncated records the leader does not hold (kept in the side file)'), 'the own records were cut');
      assert.deepEqual(node.server.wal.epochHistory(), leader.server.wal.epochHistory(), 'the leader\'s epoch history');
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failure between moving the snapshots above a cut aside and the cut leaves none of the divergent state', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    const key = Buffer.from('x');
    let node: FollowerNode | undefined;
    try {
      await copyFirstRecords(leader, dir);
      // The follower leads for a while (epoch 2): it writes x and snapshots its state at 60.
      const { server: own } = await WaldServer.open({ dir, preallocate: false }, { listen: '127.0.0.1:0' }, hookedLogger(() => undefined));
      await own.wal.beginEpoch(2);
      await own.state.append([{ key, value: Buffer.from('divergent') }]);
      await own.state.append(values(9, 'own'));
      await own.state.createSnapshot();
      await own.stop();
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(20, 'b'));
      // The first start stops at the move of that snapshot aside (as a crash there would).
      const failing = new FailFirstMoveAside();
      node = await startNode(dir, leader.address, hookedLogger(() => undefined), [], failing);
      const stopped = await node.failed.then(() => undefined, (error: unknown) => error);
      assert.ok(failing.failed && stopped instanceof Error, `the first start stopped at the injected failure: ${String(stopped)}`);
      await node.stop();
      node = undefined;
      // Started again, it finds the divergence again, cuts it, and converges.
      for (let start = 0; start < 2; start++) {
        node = await startNode(dir, leader.address, hookedLogger(() => undefined));
        await waitFor(() => node!.activeFollower !== undefined && node!.server.wal.highWatermark === 69, 'the follower to reach the leader\'s end');
        assert.equal(await node.server.state.get(key), undefined, `start ${start + 2}: the divergent key is gone`);
        assert.deepEqual(await valuesOf(node.server.wal, 50, 20), await valuesOf(leader.server.wal, 50, 20), 'the leader\'s records from 50 on');
        await node.stop();
        node = undefined;
      }
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a node promoted and made a follower again before it wrote cuts the epoch it began, and converges', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let node: FollowerNode | undefined;
    try {
      await copyFirstRecords(leader, dir);
      // Promoted (epoch 2 from 50) but no record written: the same state as a crash inside a cut
      // after its segments and before its epoch history.
      const { wal: promoted } = await Wal.open({ dir, preallocate: false });
      await promoted.beginEpoch(2);
      await promoted.close();
      await leader.server.wal.append(values(30, 'b'));
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(10, 'c'));
      // The leader's frames at 50 are of epoch 1, older than the log's 2: the log must drop epoch 2 first.
      node = await startNode(dir, leader.address, hookedLogger(() => undefined));
      let failure: unknown;
      node.failed.catch((error: unknown) => (failure = error));
      await waitFor(() => node!.server?.wal.highWatermark === 89, 'the follower to reach the leader\'s end');
      assert.deepEqual(await valuesOf(node.server.wal, 50, 40), await valuesOf(leader.server.wal, 50, 40), 'the leader\'s records from 50 on');
      assert.deepEqual(node.server.wal.epochHistory(), leader.server.wal.epochHistory(), 'the leader\'s epoch history');
      assert.equal(failure, undefined, 'the node did not stop on an error');
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a divergence cut below what the log compacted away is refused before anything changes', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let node: FollowerNode | undefined;
    try {
      await copyFirstRecords(leader, dir);
      // The follower leads in epoch 2 and compacts its log past 50, where its history left the leader's.
      const walOptions = { dir, preallocate: false, segmentSizeBytes: 4096 };
      const serverOptions = { listen: '127.0.0.1:0', state: { compaction: { retentionMs: 0 } } };
      const { server: own } = await WaldServer.open(walOptions, serverOptions, hookedLogger(() => undefined));
      await own.wal.beginEpoch(2);
      for (let i = 0; i < 60; i++) await own.state.append([{ key: Buffer.from(`k${i % 5}`), value: Buffer.from(`own-${i}`.padEnd(100, '.')) }]);
      await own.compactor.compact();
      const firstOffset = own.wal.firstOffset;
      assert.ok(firstOffset > 50, `compacted past 50: first offset ${firstOffset}`);
      await own.stop();
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(20, 'b'));
      node = await startNode(dir, leader.address, hookedLogger(() => undefined));
      const stopped = await node.failed.then(() => undefined, (error: unknown) => error);
      assert.ok(isWalError(stopped, 'WAL_OFFSET_COMPACTED'), `the node stopped refusing the cut: ${String(stopped)}`);
      assert.equal(stopped.details['truncateAt'], 50);
      await node.stop();
      node = undefined;
      // Nothing was changed: the directory opens as it was, its key-value view whole.
      assert.deepEqual(readdirSync(join(dir, 'snapshots')).filter((name) => name.endsWith('.set-aside')), [], 'no snapshot set aside');
      const { server: reopened } = await WaldServer.open(walOptions, serverOptions, hookedLogger(() => undefined));
      try {
        assert.equal(reopened.wal.firstOffset, firstOffset);
        assert.equal((await reopened.state.get(Buffer.from('k4')))?.value.toString().trimEnd().replace(/\.+$/, ''), 'own-59');
      } finally {
        await reopened.stop();
      }
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('a divergence cut that only a point snapshot would stand under is refused too: point snapshots never rebuild the view', async () => {
    const leader = await startServer({ wal: { segmentSizeBytes: 4096 } });
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let node: FollowerNode | undefined;
    try {
      // 50 keyed records one per frame, in 4 KiB segments the follower copies as they are.
      await leader.server.wal.beginEpoch(1);
      for (let i = 0; i < 50; i++) await leader.server.state.append([{ key: Buffer.from(`k${i % 5}`), value: Buffer.from(`a-${i}`.padEnd(100, '.')) }]);
      node = await startNode(dir, leader.address, hookedLogger(() => undefined));
      await waitFor(() => node!.server?.wal.highWatermark === 49, 'the follower to copy 50 records');
      await node.stop();
      node = undefined;
      // The follower leads in epoch 2: a point snapshot at 50, 60 records, a full snapshot at 110,
      // and its first segment deleted (first offset between 0 and 50).
      const walOptions = { dir, preallocate: false, segmentSizeBytes: 4096 };
      const serverOptions = { listen: '127.0.0.1:0' };
      const { server: own } = await WaldServer.open(walOptions, serverOptions, hookedLogger(() => undefined));
      await own.wal.beginEpoch(2);
      assert.equal((await own.state.snapshotKey(Buffer.from('k1')))?.walOffset, 50);
      for (let i = 0; i < 60; i++) await own.state.append([{ key: Buffer.from(`k${i % 5}`), value: Buffer.from(`own-${i}`.padEnd(100, '.')) }]);
      await own.state.createSnapshot();
      await own.compactor.deleteSegmentsBefore(45);
      const firstOffset = own.wal.firstOffset;
      assert.ok(firstOffset > 0 && firstOffset <= 50, `first offset ${firstOffset}`);
      await own.stop();
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(20, 'b'));
      node = await startNode(dir, leader.address, hookedLogger(() => undefined));
      const stopped = await node.failed.then(() => undefined, (error: unknown) => error);
      assert.ok(isWalError(stopped, 'WAL_OFFSET_COMPACTED'), `the node stopped refusing the cut: ${String(stopped)}`);
      await node.stop();
      node = undefined;
      assert.deepEqual(readdirSync(join(dir, 'snapshots')).filter((name) => name.endsWith('.set-aside')), [], 'no snapshot set aside');
      const { server: reopened } = await WaldServer.open(walOptions, serverOptions, hookedLogger(() => undefined));
      await reopened.stop();
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an empty log that began an epoch of its own and follows again drops that epoch and converges', async () => {
    const leader = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'wald-follower-node-'));
    let node: FollowerNode | undefined;
    try {
      await leader.server.wal.beginEpoch(1);
      await leader.server.wal.append(values(50, 'a'));
      // Promoted while empty: its history is epoch 2 from 0, the leader's epoch 1 frames there older.
      const { wal: promoted } = await Wal.open({ dir, preallocate: false });
      await promoted.beginEpoch(2);
      await promoted.close();
      await leader.server.wal.beginEpoch(3);
      await leader.server.wal.append(values(10, 'c'));
      let failure: unknown;
      node = await startNode(dir, leader.address, hookedLogger(() => undefined));
      node.failed.catch((error: unknown) => (failure = error));
      await waitFor(() => failure !== undefined || node!.server?.wal.highWatermark === 59, 'the follower to reach the leader\'s end');
      assert.equal(failure, undefined, 'the node did not stop on an error');
      assert.deepEqual(node.server.wal.epochHistory(), leader.server.wal.epochHistory());
    } finally {
      await node?.stop();
      await leader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
