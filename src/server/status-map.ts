import { status as Status } from '@grpc/grpc-js';
import type { ErrorCode } from '../errors.js';

/**
 * The gRPC status of each stable error code: the one table the service uses to turn a
 * `WalError` into a status. Declared with `satisfies Record<ErrorCode, Status>` so that adding a
 * code to `ERROR_CODES` without mapping it here does not compile.
 *
 * The choices follow the gRPC status code guide: `UNAVAILABLE` only where retrying the same call
 * can succeed and nothing was applied; `FAILED_PRECONDITION` where the system must change first;
 * `ABORTED` for the lost race of a conditional append; `OUT_OF_RANGE` for offsets past either end;
 * `NOT_FOUND` for a key the key-value view does not hold; `UNAUTHENTICATED` for a call without a
 * known token, `PERMISSION_DENIED` for a token whose role is too small; `DEADLINE_EXCEEDED` for an
 * append written but not replicated to `min_replicas` followers in time.
 */
export const STATUS_BY_CODE = {
  WAL_LOCKED: Status.FAILED_PRECONDITION,
  WAL_CORRUPTION: Status.DATA_LOSS,
  WAL_CLOSED: Status.UNAVAILABLE,
  WAL_READ_ONLY: Status.FAILED_PRECONDITION,
  WAL_NO_SPACE: Status.RESOURCE_EXHAUSTED,
  WAL_IO_ERROR: Status.UNAVAILABLE,
  WAL_OFFSET_OUT_OF_RANGE: Status.OUT_OF_RANGE,
  WAL_OFFSET_COMPACTED: Status.OUT_OF_RANGE,
  WAL_RECORD_TOO_LARGE: Status.INVALID_ARGUMENT,
  WAL_BATCH_TOO_LARGE: Status.INVALID_ARGUMENT,
  WAL_INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  WAL_OFFSET_MISMATCH: Status.ABORTED,
  WAL_SEQUENCE_STALE: Status.FAILED_PRECONDITION,
  WAL_TOO_MANY_STREAMS: Status.RESOURCE_EXHAUSTED,
  WAL_SHUTTING_DOWN: Status.UNAVAILABLE,
  WAL_KEY_NOT_FOUND: Status.NOT_FOUND,
  WAL_STATE_FULL: Status.RESOURCE_EXHAUSTED,
  WAL_STATE_LOST: Status.DATA_LOSS,
  WAL_FLUSH_ALL_DISABLED: Status.FAILED_PRECONDITION,
  WAL_SNAPSHOT_NO_BASE: Status.FAILED_PRECONDITION,
  WAL_SNAPSHOT_NOT_FOUND: Status.NOT_FOUND,
  WAL_UNAUTHENTICATED: Status.UNAUTHENTICATED,
  WAL_PERMISSION_DENIED: Status.PERMISSION_DENIED,
  WAL_NOT_COVERED: Status.FAILED_PRECONDITION,
  WAL_POINT_IN_TIME_UNAVAILABLE: Status.OUT_OF_RANGE,
  WAL_TOO_MANY_BUILDS: Status.RESOURCE_EXHAUSTED,
  WAL_NOT_LEADER: Status.FAILED_PRECONDITION,
  WAL_EPOCH_MISMATCH: Status.FAILED_PRECONDITION,
  WAL_FRAME_REJECTED: Status.FAILED_PRECONDITION,
  WAL_TXN_STATE: Status.FAILED_PRECONDITION,
  WAL_REPLICAS_TIMEOUT: Status.DEADLINE_EXCEEDED,
  WAL_MESSAGE_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  WAL_INTERNAL: Status.INTERNAL,
} as const satisfies Record<ErrorCode, Status>;
