import type { AppendLimits } from '../engine/types.js';
import { WAL_DEFAULTS } from '../engine/wal-options.js';

/** Options of {@link WaldServer}. Every field is optional; see {@link SERVER_DEFAULTS}. */
export interface ServerOptions {
  /** `host:port` to listen on; port 0 picks a free port (returned by `start()`). */
  readonly listen?: string | undefined;
  /** Largest request message the transport accepts (`grpc.max_receive_message_length`), bytes. */
  readonly maxReceiveMessageBytes?: number | undefined;
  /** Largest response message the transport sends (`grpc.max_send_message_length`), bytes. */
  readonly maxSendMessageBytes?: number | undefined;
  /** Most record bytes in one Read response or TailWal message (the cap of `max_bytes`). */
  readonly maxResponseBytes?: number | undefined;
  /** Most records in one TailWal message (the cap of `max_records`). */
  readonly maxTailBatchRecords?: number | undefined;
  /** Period of TailWal heartbeats (empty batches) while no record arrives, ms. */
  readonly tailHeartbeatIntervalMs?: number | undefined;
  /** Most TailWal streams open at once; more get `RESOURCE_EXHAUSTED` (`WAL_TOO_MANY_STREAMS`). */
  readonly maxTailStreams?: number | undefined;
  /** Most message bytes written to a TailWal stream but not yet taken by the transport. */
  readonly maxTailQueueBytes?: number | undefined;
  /**
   * Most message bytes all TailWal streams together hold, written or being read but not yet taken
   * by the transport; a tail that would go over waits (it stops reading the log), it never fails.
   */
  readonly maxTotalTailQueueBytes?: number | undefined;
  /** Most AppendStream streams open at once; more get `RESOURCE_EXHAUSTED`. */
  readonly maxAppendStreams?: number | undefined;
  /** Most unanswered appends read ahead on one AppendStream before the server stops reading. */
  readonly maxInFlightAppends?: number | undefined;
  /**
   * HTTP/2 receive window the server grants each connection and each stream, bytes: how much a
   * client may send before the server has read it (grpc-js's own default is 64 KiB).
   */
  readonly receiveWindowBytes?: number | undefined;
  /** Server-initiated HTTP/2 PING period (`grpc.keepalive_time_ms`), ms. */
  readonly keepaliveTimeMs?: number | undefined;
  /** How long to wait for a PING answer before dropping the connection, ms. */
  readonly keepaliveTimeoutMs?: number | undefined;
  /** How long `stop()` waits for calls to finish before cancelling them, ms. */
  readonly shutdownGraceMs?: number | undefined;
  /**
   * Size limits of the log (the engine enforces them; pass the values the `Wal` was opened with).
   * The server needs them only to check that its message size limits can carry a full batch and a
   * maximal record. Default: the engine's defaults.
   */
  readonly appendLimits?: Partial<AppendLimits> | undefined;
}

/** {@link ServerOptions} with every default filled in. */
export type ResolvedServerOptions = Required<Omit<ServerOptions, 'appendLimits'>> & {
  readonly appendLimits: AppendLimits;
};

const MiB = 1024 * 1024;

/** Defaults of the server; each is a named limit with its unit in the key. */
export const SERVER_DEFAULTS = Object.freeze({
  /** Loopback only: exposing the log is an explicit choice. */
  listen: '127.0.0.1:7070',
  /** A full 4 MiB batch plus its protobuf framing (a few bytes per record and header). */
  maxReceiveMessageBytes: 5 * MiB,
  /** A full response plus framing, or one maximal record, with room to spare. */
  maxSendMessageBytes: 8 * MiB,
  /** 3 MiB keeps a full response under the 4 MiB that gRPC clients accept by default. */
  maxResponseBytes: 3 * MiB,
  /** 1000 records per tail message: amortises the ~15 us per-message cost of grpc-js. */
  maxTailBatchRecords: 1000,
  /** 5 s: a follower notices a dead stream within a few seconds. */
  tailHeartbeatIntervalMs: 5000,
  /** 1024 tails: each holds at most maxTailQueueBytes + one message of memory. */
  maxTailStreams: 1024,
  /** 8 MiB per tail: bounds the memory a stuck consumer can pin. */
  maxTailQueueBytes: 8 * MiB,
  /**
   * 256 MiB for all tails: without it 1024 stuck consumers could pin 8 GiB. 32 tails stuck at
   * their own cap spend it all; healthy tails then wait until those are cancelled or read.
   */
  maxTotalTailQueueBytes: 256 * MiB,
  /** 1024 append streams, as tails. */
  maxAppendStreams: 1024,
  /** 1024 pipelined appends per stream: enough to fill a group commit, bounded in memory. */
  maxInFlightAppends: 1024,
  /**
   * 1 MiB: a pipelining client keeps sending while the server syncs (AppendStream +30% here with
   * 1 MiB, +40% with 4 MiB, against 64 KiB; docs/benchmarks.md). Unread bytes per stream are
   * bounded by it.
   */
  receiveWindowBytes: 1 * MiB,
  /** 30 s: detects dead followers on idle tails without flooding links. */
  keepaliveTimeMs: 30_000,
  /** 10 s to answer a PING. */
  keepaliveTimeoutMs: 10_000,
  /** 5 s for calls to finish at shutdown. */
  shutdownGraceMs: 5000,
});

/** Protobuf framing allowed per response on top of its record bytes. */
const RESPONSE_FRAMING_BYTES = 256 * 1024;

function positiveInteger(value: number | undefined, fallback: number, key: string): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved <= 0) {
    throw new RangeError(`server option ${key} must be a positive integer, got ${String(value)}`);
  }
  return resolved;
}

/** HTTP/2 windows run from the protocol's 65,535 bytes to 2^31 - 1. */
function windowSize(value: number | undefined): number {
  const resolved = positiveInteger(value, SERVER_DEFAULTS.receiveWindowBytes, 'receiveWindowBytes');
  if (resolved < 65_535 || resolved > 2 ** 31 - 1) {
    throw new RangeError(`server option receiveWindowBytes must be between 65535 and ${2 ** 31 - 1}, got ${resolved}`);
  }
  return resolved;
}

/**
 * Fills in the defaults of `options` and checks them.
 *
 * @throws RangeError naming the option when a value is not a positive integer, or when
 *   `maxSendMessageBytes` cannot carry a full response or a maximal record.
 */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  const limits = options.appendLimits ?? {};
  const appendLimits: AppendLimits = {
    maxRecordBytes: positiveInteger(limits.maxRecordBytes, WAL_DEFAULTS.maxRecordBytes, 'appendLimits.maxRecordBytes'),
    maxBatchBytes: positiveInteger(limits.maxBatchBytes, WAL_DEFAULTS.maxBatchBytes, 'appendLimits.maxBatchBytes'),
    maxBatchRecords: positiveInteger(limits.maxBatchRecords, WAL_DEFAULTS.maxBatchRecords, 'appendLimits.maxBatchRecords'),
  };
  const resolved: ResolvedServerOptions = {
    listen: options.listen ?? SERVER_DEFAULTS.listen,
    maxReceiveMessageBytes: positiveInteger(options.maxReceiveMessageBytes, SERVER_DEFAULTS.maxReceiveMessageBytes, 'maxReceiveMessageBytes'),
    maxSendMessageBytes: positiveInteger(options.maxSendMessageBytes, SERVER_DEFAULTS.maxSendMessageBytes, 'maxSendMessageBytes'),
    maxResponseBytes: positiveInteger(options.maxResponseBytes, SERVER_DEFAULTS.maxResponseBytes, 'maxResponseBytes'),
    maxTailBatchRecords: positiveInteger(options.maxTailBatchRecords, SERVER_DEFAULTS.maxTailBatchRecords, 'maxTailBatchRecords'),
    tailHeartbeatIntervalMs: positiveInteger(options.tailHeartbeatIntervalMs, SERVER_DEFAULTS.tailHeartbeatIntervalMs, 'tailHeartbeatIntervalMs'),
    maxTailStreams: positiveInteger(options.maxTailStreams, SERVER_DEFAULTS.maxTailStreams, 'maxTailStreams'),
    maxTailQueueBytes: positiveInteger(options.maxTailQueueBytes, SERVER_DEFAULTS.maxTailQueueBytes, 'maxTailQueueBytes'),
    maxTotalTailQueueBytes: positiveInteger(options.maxTotalTailQueueBytes, SERVER_DEFAULTS.maxTotalTailQueueBytes, 'maxTotalTailQueueBytes'),
    maxAppendStreams: positiveInteger(options.maxAppendStreams, SERVER_DEFAULTS.maxAppendStreams, 'maxAppendStreams'),
    maxInFlightAppends: positiveInteger(options.maxInFlightAppends, SERVER_DEFAULTS.maxInFlightAppends, 'maxInFlightAppends'),
    receiveWindowBytes: windowSize(options.receiveWindowBytes),
    keepaliveTimeMs: positiveInteger(options.keepaliveTimeMs, SERVER_DEFAULTS.keepaliveTimeMs, 'keepaliveTimeMs'),
    keepaliveTimeoutMs: positiveInteger(options.keepaliveTimeoutMs, SERVER_DEFAULTS.keepaliveTimeoutMs, 'keepaliveTimeoutMs'),
    shutdownGraceMs: positiveInteger(options.shutdownGraceMs, SERVER_DEFAULTS.shutdownGraceMs, 'shutdownGraceMs'),
    appendLimits,
  };
  const largestResponse = Math.max(resolved.maxResponseBytes, appendLimits.maxRecordBytes) + RESPONSE_FRAMING_BYTES;
  if (resolved.maxSendMessageBytes < largestResponse) {
    throw new RangeError(
      `server option maxSendMessageBytes (${resolved.maxSendMessageBytes}) must be at least ${largestResponse}: ` +
        'max(maxResponseBytes, maxRecordBytes) + 256 KiB of framing',
    );
  }
  const largestRequest = appendLimits.maxBatchBytes + RESPONSE_FRAMING_BYTES;
  if (resolved.maxReceiveMessageBytes < largestRequest) {
    throw new RangeError(
      `server option maxReceiveMessageBytes (${resolved.maxReceiveMessageBytes}) must be at least ${largestRequest}: ` +
        'appendLimits.maxBatchBytes + 256 KiB of framing',
    );
  }
  return resolved;
}
