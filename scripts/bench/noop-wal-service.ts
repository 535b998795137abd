/**
 * The baseline of the service benchmark: `wald.v1.WalService` with handlers that answer at once
 * and touch no log, served by the same grpc-js version from the same generated service definition,
 * so that a row's ratio isolates what wald adds to the transport.
 */
import { status, type ServerDuplexStream, type ServerErrorResponse, type ServerWritableStream } from '@grpc/grpc-js';
import type { AppendRequest, AppendStreamRequest, AppendStreamResponse } from '../../src/gen/wald/v1/append.js';
import { RecordType, type Record as RecordMessage } from '../../src/gen/wald/v1/record.js';
import { ReplicationRole, WriteState } from '../../src/gen/wald/v1/stats.js';
import { StorageKind } from '../../src/gen/wald/v1/storage.js';
import type { TailWalRequest, TailWalResponse } from '../../src/gen/wald/v1/tail.js';
import type { WalRecord } from '../../src/engine/types.js';
import { encodeTailWalResponse } from '../../src/wire/tail-response-encoder.js';
import type { WalServiceServer } from '../../src/gen/wald/v1/wal_service.js';
import { RECORD_BYTES } from './fs-baselines.js';

/** Records per TailWal message when the request leaves `max_records` at 0: wald's default cap. */
const DEFAULT_TAIL_BATCH_RECORDS = 1000;
/** Most messages one catch-up tail of the no-op sends; then it ends the stream (OK). */
const MAX_FLOOD_MESSAGES = 10_000_000;

type TailCall = ServerWritableStream<TailWalRequest, TailWalResponse | Buffer>;

/** What the no-op answers to the RPCs the service benchmark does not measure (snapshots). */
function unimplemented(): ServerErrorResponse {
  return Object.assign(new Error('not part of the no-op baseline'), { code: status.UNIMPLEMENTED });
}

/** An acknowledgement with fixed offsets: the no-op assigns nothing. */
const APPENDED = Object.freeze({ firstOffset: 0n, lastOffset: 0n, timestamp: 0n, duplicate: false });

/** The records of an append as a tail would carry them (offset and timestamp left at 0). */
function toRelayed(request: AppendRequest | undefined): RecordMessage[] {
  return (request?.records ?? []).map((record) => ({
    key: record.key,
    value: record.value,
    headers: record.headers,
    type: RecordType.RECORD_TYPE_PUT,
    offset: 0n,
    timestamp: 0n,
  }));
}

/**
 * Makes the no-op handlers:
 *
 * - `Append` answers at once; its records are also written, as they came, to every open tail that
 *   started with `from_end` (the relay that the append-to-subscriber latency is compared with;
 *   the benchmark sends one append at a time, so the relay ignores flow control).
 * - `AppendStream` answers each message at once, in order, and ends when the client does (the
 *   benchmark bounds the messages in flight, so answers are not held back for `'drain'`).
 * - `TailWal` with `from_end` sends one empty message (as wald does when caught up) and then relays
 *   appends; with any other start it sends batches of `max_records` (0: 1000) prebuilt 100-byte
 *   records as fast as flow control allows (it stops on `write() === false` until `'drain'`),
 *   until the client cancels: the catch-up ceiling of the transport.
 * - `Read`, `GetStats` and `Sync` answer empty messages (optional fields such as the high
 *   watermark unset).
 */
export function createNoopWalService(): WalServiceServer {
  const relays = new Set<TailCall>();
  // Handlers answer whatever the request holds: the baseline measures the transport, not validation.

  function relay(call: TailCall): void {
    relays.add(call);
    call.on('cancelled', () => relays.delete(call));
    call.write({ records: [], firstOffset: 0n, nextOffset: 0n, frames: [], segmentHeader: Buffer.alloc(0), epoch: 0n });
  }

  function flood(call: TailCall): void {
    const batchRecords = call.request.maxRecords === 0 ? DEFAULT_TAIL_BATCH_RECORDS : call.request.maxRecords;
    const value = Buffer.alloc(RECORD_BYTES, 0x61);
    const records: WalRecord[] = Array.from({ length: batchRecords }, (_, i) => ({
      key: undefined,
      value,
      headers: {},
      type: 'put',
      offset: i,
      timestamp: 0,
    }));
    let isCancelled = false;
    let messages = 0;
    let nextOffset = 0;
    call.on('cancelled', () => {
      isCancelled = true;
    });
    const pump = (): void => {
      while (!isCancelled) {
        if (++messages > MAX_FLOOD_MESSAGES) {
          call.end();
          return;
        }
        nextOffset += batchRecords;
        // Encoded per message with the server's own TailWal encoder, so both sides pay the same.
        if (!call.write(encodeTailWalResponse(records, { highWatermark: nextOffset, firstOffset: 0, nextOffset }))) {
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }

  return {
    append: (call, callback) => {
      if (relays.size > 0) {
        const response: TailWalResponse = { records: toRelayed(call.request), highWatermark: 0n, firstOffset: 0n, nextOffset: 0n, frames: [], segmentHeader: Buffer.alloc(0), epoch: 0n };
        for (const tail of relays) tail.write(response);
      }
      callback(null, APPENDED);
    },
    appendStream: (call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>) => {
      call.on('data', (request: AppendStreamRequest) => {
        call.write({ requestId: request.requestId, result: { $case: 'appended', value: APPENDED }, results: [] });
      });
      call.on('end', () => call.end());
    },
    read: (_call, callback) => callback(null, { records: [], nextOffset: 0n, firstOffset: 0n }),
    tailWal: (call) => (call.request.start?.$case === 'fromEnd' ? relay(call) : flood(call)),
    getStats: (_call, callback) =>
      callback(null, {
        entryCount: 0n,
        segmentCount: 0n,
        totalSizeBytes: 0n,
        firstOffset: 0n,
        nextOffset: 0n,
        ioStats: undefined,
        tailStreamCount: relays.size,
        tailQueueBytes: 0n,
        writeState: WriteState.WRITE_STATE_UNSPECIFIED,
        keyCount: 0n,
        stateMemoryBytes: 0n,
        snapshotCount: 0,
        lastSnapshotId: '',
        reclaimableBytes: 0n,
        role: ReplicationRole.REPLICATION_ROLE_UNSPECIFIED,
        leaderAddress: '',
        epoch: 0n,
        epochHistory: [],
        followers: [],
        inDoubtTransactionCount: 0n,
        recordCounts: undefined,
        recordCountsScannedMs: 0n,
        storage: StorageKind.STORAGE_KIND_UNSPECIFIED,
        storageMemoryBytes: 0n,
        replicationLagRecords: 0n,
        replicationLagMs: 0n,
      }),
    sync: (_call, callback) => callback(null, {}),
    get: (_call, callback) => callback(null, { value: Buffer.alloc(0), offset: 0n, timestamp: 0n }),
    listKeys: (_call, callback) => callback(null, { keys: [], nextPageToken: '' }),
    flushAll: (_call, callback) => callback(null, { keysRemoved: 0n, offset: 0n }),
    snapshotKey: (_call, callback) => callback(unimplemented()),
    createSnapshot: (_call, callback) => callback(unimplemented()),
    listSnapshots: (_call, callback) => callback(unimplemented()),
    verifySnapshot: (_call, callback) => callback(unimplemented()),
    getSnapshot: (call) => call.emit('error', unimplemented()),
    prepare: (_call, callback) => callback(unimplemented()),
    commit: (_call, callback) => callback(unimplemented()),
    abort: (_call, callback) => callback(unimplemented()),
    listTransactions: (_call, callback) => callback(unimplemented()),
    reportFollower: (_call, callback) => callback(unimplemented()),
    hashRange: (_call, callback) => callback(unimplemented()),
    compact: (_call, callback) =>
      callback(null, {
        snapshotsCreated: 0,
        segmentsDeleted: 0,
        bytesReclaimed: 0n,
        totalSnapshots: 0,
        walSegments: 1,
        snapshotId: '',
        firstOffset: 0n,
        dryRun: false,
        snapshotOffset: 0n,
        snapshotsDeleted: 0,
        durationMs: 0n,
        keyCompaction: undefined,
        recordCounts: undefined,
        leaseHeldSegments: 0,
        leaseHeldBytes: 0n,
        leaseHolders: [],
      }),
    deleteSegmentsBefore: (_call, callback) => callback(null, { segmentsDeleted: 0, bytesReclaimed: 0n, firstOffset: 0n }),
    stateAt: (_call, callback) =>
      callback(null, { nextOffset: 0n, snapshot: undefined, recordsReplayed: 0n, absentOffsets: 0n, keyCount: 0n, lookups: [], keys: [], nextPageToken: '', createdSnapshot: undefined, durationMs: 0n }),
    getEpochEnd: (call, callback) => callback(null, { epoch: call.request.epoch, endOffset: 0n }),
    promote: (_call, callback) => callback(null, { epoch: 1n, startOffset: 0n }),
  };
}
