/**
 * RpcAdmission on a real grpc-js server and client, with the server's state in the test's hands:
 * every RPC of the table, of each kind, is refused with `UNAVAILABLE` / `WAL_SHUTTING_DOWN` while
 * the server stops, before its handler runs; streams count against their RPC's limit and give
 * their place back when they end; on a follower, the RPCs that would write are refused with
 * `FAILED_PRECONDITION` / `WAL_NOT_LEADER` naming the leader, and the others are served.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Server, ServerCredentials, status, type ClientDuplexStream, type ClientReadableStream, type ClientWritableStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { Wal } from '../../../src/engine/wal.js';
import { AppendStreamRequest, type AppendStreamResponse } from '../../../src/gen/wald/v1/append.js';
import type { ReportFollowerRequest } from '../../../src/gen/wald/v1/replication.js';
import type { GetSnapshotResponse } from '../../../src/gen/wald/v1/snapshot.js';
import type { TailWalResponse } from '../../../src/gen/wald/v1/tail.js';
import type { AppendStreamSession } from '../../../src/server/append-stream.js';
import { FollowerRegistry } from '../../../src/server/followers/follower-registry.js';
import { ReplicaAcks } from '../../../src/server/followers/replica-acks.js';
import type { ReportFollowerSession } from '../../../src/server/followers/report-follower-session.js';
import type { SnapshotSendStream } from '../../../src/server/snapshot-send-stream.js';
import { ReplicationState } from '../../../src/server/replication-state.js';
import { RpcAdmission } from '../../../src/server/rpc/rpc-admission.js';
import type { RpcContext } from '../../../src/server/rpc/rpc-context.js';
import { resolveServerOptions, type ServerOptions } from '../../../src/server/server-options.js';
import { PointInTimeReplays } from '../../../src/state/point-in-time-replays.js';
import { Compactor } from '../../../src/state/compactor.js';
import { StateKeeper } from '../../../src/state/state-keeper.js';
import { STATE_OPTIONS } from '../../../src/state/state-options.js';
import { StreamRegistry } from '../../../src/server/stream-registry.js';
import { ServerEvents } from '../../../src/server/metrics/server-events.js';
import { TailQueueBudget } from '../../../src/server/tail-queue-budget.js';
import type { TailStream } from '../../../src/server/tail-stream.js';
import { walServiceDefinition } from '../../../src/server/wal-service-definition.js';
import { createWalService, WAL_SERVICE_RPCS } from '../../../src/server/wal-service.js';
import { rpcErrorOf, WalTestClient } from '../../integration/support/harness.js';
import { MemDisk } from '../../support/mem-disk.js';

const silent = pino({ level: 'silent' });

type StreamingKey = {
  [Key in keyof typeof WAL_SERVICE_RPCS]: (typeof WAL_SERVICE_RPCS)[Key]['kind'] extends 'unary' ? never : Key;
}[keyof typeof WAL_SERVICE_RPCS];

/** A WalService served through RpcAdmission over a log on a MemDisk, with a switch for `isStopping`. */
interface Fixture {
  readonly wal: Wal;
  /** A full snapshot taken at the start, for the RPCs that name one. */
  readonly snapshotId: string;
  readonly context: RpcContext;
  readonly client: WalTestClient;
  /** Sets what the admission's `isStopping` answers from now on. */
  setStopping(isStopping: boolean): void;
  close(): Promise<void>;
}

async function startFixture(options: ServerOptions = {}, replication = new ReplicationState()): Promise<Fixture> {
  const storage = new MemDisk().mount();
  const { wal } = await Wal.open({ dir: '/data', storage, preallocate: false });
  const { keeper: state } = await StateKeeper.open({ wal, storage });
  const resolved = resolveServerOptions({ allowFlushAll: true, ...options });
  const compactor = new Compactor({ wal, state, storage, options: STATE_OPTIONS.defaults.compaction });
  const followers = new FollowerRegistry(wal, { maxFollowers: resolved.replication.maxFollowers, followerExpiryMs: resolved.replication.followerExpiryMs });
  const context: RpcContext = {
    wal,
    state,
    compactor,
    pointInTime: new PointInTimeReplays({ wal, storage, snapshotDir: state.snapshotDir, maxStateBytes: state.maxStateBytes, txnMaxEnded: STATE_OPTIONS.defaults.txnMaxEnded, maxBuilds: 2, exclusive: (run) => compactor.exclusive(run) }),
    options: resolved,
    logger: silent,
    tails: new StreamRegistry<TailStream>('TailWal', resolved.maxTailStreams, 'max_tail_streams'),
    tailQueueBudget: new TailQueueBudget(resolved.maxTotalTailQueueBytes),
    appendStreams: new StreamRegistry<AppendStreamSession>('AppendStream', resolved.maxAppendStreams, 'max_append_streams'),
    snapshotStreams: new StreamRegistry<SnapshotSendStream>('GetSnapshot', resolved.maxSnapshotStreams, 'max_snapshot_streams'),
    metrics: undefined,
    events: new ServerEvents(silent, undefined),
    followers,
    replicaAcks: new ReplicaAcks(followers, resolved.maxMinReplicas, resolved.replication.minReplicasTimeoutMs),
    followerReports: new StreamRegistry<ReportFollowerSession>('ReportFollower', resolved.replication.maxFollowers, 'replication.max_followers'),
    replication,
  };
  // Several MiB: a paused client holds a GetSnapshot stream open (flow control) for the limit test.
  for (let i = 0; i < 4; i++) {
    await wal.append(Array.from({ length: 1000 }, (_, j) => ({ key: Buffer.from(`big-${i}-${j}`), value: Buffer.alloc(1024, j) })));
  }
  const snapshotId = (await state.createSnapshot()).id;
  let isStopping = false;
  const server = new Server();
  server.addService(walServiceDefinition, createWalService(new RpcAdmission(context, { isStopping: () => isStopping })));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  const client = new WalTestClient(`127.0.0.1:${port}`);
  return {
    wal,
    snapshotId,
    context,
    client,
    setStopping(value) {
      isStopping = value;
    },
    async close() {
      client.close();
      await Promise.all([
        context.tails.shutdownAll(),
        context.appendStreams.shutdownAll(),
        context.snapshotStreams.shutdownAll(),
        context.followerReports.shutdownAll(),
      ]);
      server.forceShutdown();
      await state.close();
      await wal.close();
    },
  };
}

/** A streaming call and the outcome of its first response: resolves on it, rejects with the call's error. */
interface OpenStream {
  readonly call:
    | ClientReadableStream<TailWalResponse>
    | ClientReadableStream<GetSnapshotResponse>
    | ClientDuplexStream<AppendStreamRequest, AppendStreamResponse>
    | ClientWritableStream<ReportFollowerRequest>;
  readonly firstResponse: Promise<void>;
}

function firstResponseOf(call: OpenStream['call']): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    call.once('data', () => resolve());
    // Also the listener for the CANCELLED that follows a cancel, once the first response is in.
    call.on('error', reject);
  });
}

/** Follower ids handed out so far: each ReportFollower call of the tests reports under a new one. */
let followersOpened = 0;

/**
 * Opens a call of each streaming RPC; `tailWal` needs a record in the log to answer at once. A
 * client stream (ReportFollower) sends its one response only at the end: its "first response" is
 * the server admitting it (its registry's `open`), or the refusal its callback gets.
 */
const OPEN_STREAM: Readonly<Record<StreamingKey, (client: WalTestClient, snapshotId: string, context: RpcContext) => OpenStream>> = {
  reportFollower: (client, _snapshotId, context) => {
    let call: ClientWritableStream<ReportFollowerRequest>;
    const firstResponse = new Promise<void>((resolve, reject) => {
      context.followerReports.once('open', () => resolve());
      call = client.raw.reportFollower((error) => {
        if (error !== null) reject(error);
      });
    });
    call!.write({ followerId: `follower-${++followersOpened}`, durableNextOffset: 0n, address: '', epoch: 0n });
    return { call: call!, firstResponse };
  },
  tailWal: (client) => {
    const call = client.tail({ start: { $case: 'fromOffset', value: 0n } });
    return { call, firstResponse: firstResponseOf(call) };
  },
  appendStream: (client) => {
    const call = client.appendStream();
    const firstResponse = firstResponseOf(call);
    call.write(AppendStreamRequest.fromPartial({ requestId: 1n, append: { records: [{ value: Buffer.from('s') }] } }));
    return { call, firstResponse };
  },
  getSnapshot: (client, snapshotId) => {
    const call = client.raw.getSnapshot({ snapshotId });
    const firstResponse = firstResponseOf(call);
    // Reads no more: the stream stays open, held by flow control, until cancelled.
    call.once('data', () => call.pause());
    return { call, firstResponse };
  },
};

/** One call of each RPC of the table (a new RPC does not compile until it has one), resolving when it succeeds. */
const CALL: Readonly<Record<keyof typeof WAL_SERVICE_RPCS, (client: WalTestClient, snapshotId: string, context: RpcContext) => Promise<void>>> = {
  reportFollower: (client, snapshotId, context) => streamCall(OPEN_STREAM.reportFollower(client, snapshotId, context)),
  append: async (client) => {
    await client.append({ records: [{ value: Buffer.from('a') }] });
  },
  read: async (client) => {
    await client.read({ fromOffset: 0n });
  },
  getStats: async (client) => {
    await client.getStats();
  },
  sync: async (client) => {
    await client.sync();
  },
  get: async (client) => {
    await client.append({ records: [{ key: Buffer.from('k'), value: Buffer.from('v') }] });
    await client.get({ key: Buffer.from('k') });
  },
  listKeys: async (client) => {
    await client.listKeys({});
  },
  flushAll: async (client) => {
    await client.flushAll();
  },
  tailWal: (client, snapshotId, context) => streamCall(OPEN_STREAM.tailWal(client, snapshotId, context)),
  appendStream: (client, snapshotId, context) => streamCall(OPEN_STREAM.appendStream(client, snapshotId, context)),
  snapshotKey: async (client) => {
    await client.append({ records: [{ key: Buffer.from('k'), value: Buffer.from('v') }] });
    await unary((done) => client.raw.snapshotKey({ key: Buffer.from('k') }, done));
  },
  createSnapshot: (client) => unary((done) => client.raw.createSnapshot({ compress: false, incremental: false }, done)),
  listSnapshots: (client) => unary((done) => client.raw.listSnapshots({ pageSize: 0, pageToken: '' }, done)),
  verifySnapshot: (client, snapshotId) => unary((done) => client.raw.verifySnapshot({ snapshotId }, done)),
  getSnapshot: (client, snapshotId, context) => streamCall(OPEN_STREAM.getSnapshot(client, snapshotId, context)),
  compact: async (client) => {
    await client.compact({ dryRun: true });
  },
  hashRange: (client) => unary((done) => client.raw.hashRange({ fromOffset: 0n }, done)),
  deleteSegmentsBefore: async (client) => {
    await client.deleteSegmentsBefore({ offset: 0n });
  },
  stateAt: (client) => unary((done) => client.raw.stateAt({ at: undefined, keys: [Buffer.from('k')], list: undefined, createSnapshot: false, compress: false }, done)),
  prepare: (client) => unary((done) => client.raw.prepare({ txnId: randomBytes(8), writes: [], sync: false }, done)),
  commit: async (client) => {
    const txnId = randomBytes(8);
    await unary((done) => client.raw.prepare({ txnId, writes: [], sync: false }, done));
    await unary((done) => client.raw.commit({ txnId, sync: false }, done));
  },
  abort: async (client) => {
    const txnId = randomBytes(8);
    await unary((done) => client.raw.prepare({ txnId, writes: [], sync: false }, done));
    await unary((done) => client.raw.abort({ txnId, reason: 'test', sync: false }, done));
  },
  listTransactions: (client) => unary((done) => client.raw.listTransactions({ pageSize: 0, pageToken: '' }, done)),
  getEpochEnd: (client) => unary((done) => client.raw.getEpochEnd({ epoch: 0n }, done)),
  // Each call starts a new epoch: on a follower it also promotes it (the last RPC of the table).
  promote: (client) => unary((done) => client.raw.promote({}, done)),
};

/** Runs a unary call of the raw client; resolves on success. */
function unary(start: (done: (error: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((error) => (error === null ? resolve() : reject(error))));
}

async function streamCall(stream: OpenStream): Promise<void> {
  await stream.firstResponse;
  stream.call.cancel();
}

describe('RpcAdmission', { timeout: 60_000 }, () => {
  test('while the server stops, every RPC of the table is refused with UNAVAILABLE WAL_SHUTTING_DOWN before its handler runs', async () => {
    const f = await startFixture();
    try {
      await f.wal.append([{ value: Buffer.from('first') }]);
      for (const [key, call] of Object.entries(CALL)) {
        await assert.doesNotReject(call(f.client, f.snapshotId, f.context), `${key} succeeds while the server runs`);
      }
      let streamsOpened = 0;
      f.context.tails.on('open', () => streamsOpened++);
      f.context.appendStreams.on('open', () => streamsOpened++);
      f.context.snapshotStreams.on('open', () => streamsOpened++);
      f.context.followerReports.on('open', () => streamsOpened++);
      const nextOffset = f.wal.nextOffset;

      f.setStopping(true);
      for (const [key, call] of Object.entries(CALL)) {
        const failure = await call(f.client, f.snapshotId, f.context).then(
          () => assert.fail(`${key} succeeded while the server stops`),
          (error: unknown) => rpcErrorOf(error),
        );
        assert.equal(failure.code, status.UNAVAILABLE, key);
        assert.equal(failure.reason, 'WAL_SHUTTING_DOWN', key);
        assert.equal(failure.domain, 'wald.dev', key);
      }
      assert.equal(f.wal.nextOffset, nextOffset, 'neither Append, AppendStream nor FlushAll wrote anything');
      assert.equal(streamsOpened, 0, 'no stream was registered');
    } finally {
      await f.close();
    }
  });

  test('on a follower, the RPCs marked refuse get FAILED_PRECONDITION WAL_NOT_LEADER naming the leader, and nothing is written; the others are served', async () => {
    const leader = '192.0.2.7:7070';
    const f = await startFixture({}, new ReplicationState({ leaderAddress: leader, stop: async () => {} }));
    try {
      await f.wal.append([{ key: Buffer.from('k'), value: Buffer.from('first') }]);
      const refused: string[] = [];
      for (const [key, call] of Object.entries(CALL) as [keyof typeof CALL, (typeof CALL)[keyof typeof CALL]][]) {
        const nextOffset = f.wal.nextOffset;
        const outcome = await call(f.client, f.snapshotId, f.context).then(
          () => undefined,
          (error: unknown) => rpcErrorOf(error),
        );
        if (WAL_SERVICE_RPCS[key].onFollower === 'serve') {
          // Get and SnapshotKey append their key first: on a follower that append is refused.
          if (key === 'get') {
            assert.equal(outcome?.reason, 'WAL_NOT_LEADER', 'the append before the Get');
            await assert.doesNotReject(f.client.get({ key: Buffer.from('k') }), 'Get is served');
          } else {
            assert.equal(outcome, undefined, `${key} is served on a follower: ${String(outcome?.message)}`);
          }
          continue;
        }
        assert.ok(outcome !== undefined, `${key} was served on a follower`);
        if (outcome.reason !== 'WAL_NOT_LEADER') assert.fail(`${key}: ${outcome.reason} ${outcome.message}`);
        assert.equal(outcome.code, status.FAILED_PRECONDITION, key);
        assert.equal(outcome.metadata['leader'], leader, key);
        assert.equal(f.wal.nextOffset, nextOffset, `${key} wrote nothing`);
        refused.push(WAL_SERVICE_RPCS[key].name);
      }
      assert.deepEqual(refused.sort(), ['Abort', 'Append', 'AppendStream', 'Commit', 'Compact', 'CreateSnapshot', 'DeleteSegmentsBefore', 'FlushAll', 'Prepare', 'SnapshotKey']);
    } finally {
      await f.close();
    }
  });

  for (const key of Object.keys(OPEN_STREAM) as StreamingKey[]) {
    test(`a ${WAL_SERVICE_RPCS[key].name} stream over its limit gets RESOURCE_EXHAUSTED WAL_TOO_MANY_STREAMS; an ended stream gives its place back`, async () => {
      const f = await startFixture({ maxTailStreams: 1, maxAppendStreams: 1, maxSnapshotStreams: 1, replication: { maxFollowers: 1 } });
      try {
        await f.wal.append([{ value: Buffer.from('first') }]);
        const registry = WAL_SERVICE_RPCS[key].streams(f.context);
        const open = (client: WalTestClient): OpenStream => OPEN_STREAM[key](client, f.snapshotId, f.context);
        const first = open(f.client);
        await first.firstResponse;
        assert.equal(registry.size, 1);

        const refused = await open(f.client).firstResponse.then(
          () => assert.fail('a second stream was admitted'),
          (error: unknown) => rpcErrorOf(error),
        );
        assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
        assert.equal(refused.reason, 'WAL_TOO_MANY_STREAMS');
        assert.equal(refused.metadata['limit'], '1');
        assert.equal(refused.metadata['configKey'], registry.configKey);
        assert.match(refused.metadata['configKey'] ?? '', /^(max_(tail|append|snapshot)_streams|replication\.max_followers)$/);

        const closed = once(registry, 'close');
        first.call.cancel();
        await closed;
        assert.equal(registry.size, 0, 'the ended stream is forgotten');
        await assert.doesNotReject(streamCall(open(f.client)), 'a new stream takes its place');
      } finally {
        await f.close();
      }
    });
  }
});
