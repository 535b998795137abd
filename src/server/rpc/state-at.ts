import type { StateAtLookup, StateAtRequest, StateAtResponse } from '../../gen/wald/v1/point_in_time.js';
import type { Role } from '../auth/role.js';
import { keyInfoPage } from '../../state/key-info-page.js';
import type { PointInTime, PointInTimeState } from '../../state/point-in-time.js';
import type { WrittenSnapshot } from '../../state/snapshot-writer.js';
import { invalidArgument, safeIntegerField } from '../request-fields.js';
import { snapshotInfoMessage } from '../snapshot-info-message.js';
import { LIST_KEYS_PAGE_SIZE_DEFAULT, LIST_KEYS_PAGE_SIZE_MAX } from './list-keys.js';
import type { RpcContext } from './rpc-context.js';

/** The most keys one StateAt request looks up. Part of the contract (point_in_time.proto). */
export const STATE_AT_MAX_KEYS = 1000;

/**
 * The role a StateAt request needs: `admin` when it writes a snapshot (as CreateSnapshot), `read`
 * for lookups and listings (as Get and ListKeys).
 */
export function stateAtRole(request: StateAtRequest): Role {
  return request.createSnapshot ? 'admin' : 'read';
}

/**
 * The StateAt RPC: the key-value state at an offset or instant, built apart from the live view
 * (`PointInTimeReplays`), answering lookups of keys, a page of its keys, and with
 * `create_snapshot` writing a full snapshot of it.
 *
 * Rejects with `WAL_INVALID_ARGUMENT` for more than {@link STATE_AT_MAX_KEYS} keys (field `keys`),
 * or keys whose bytes and values come to more than `max_response_bytes` (field `keys`),
 * a negative page size (field `list.page_size`), a bad page token (field `page_token`) or an offset
 * or instant above 2^53 - 1; and with the errors of `PointInTimeReplays` (`WAL_POINT_IN_TIME_UNAVAILABLE`,
 * `WAL_OFFSET_OUT_OF_RANGE`, `WAL_TOO_MANY_BUILDS`, `WAL_STATE_FULL`, the log's and the disk's).
 */
export async function stateAt(request: StateAtRequest, context: RpcContext): Promise<StateAtResponse> {
  if (request.keys.length > STATE_AT_MAX_KEYS) {
    throw invalidArgument('keys', `at most ${STATE_AT_MAX_KEYS} keys per request, got ${request.keys.length}`, { limit: STATE_AT_MAX_KEYS, count: request.keys.length });
  }
  const list = request.list;
  if (list !== undefined && list.pageSize < 0) throw invalidArgument('list.page_size', `must not be negative, got ${list.pageSize}`, { value: list.pageSize });
  const point = pointOf(request);
  const started = performance.now();
  let built: PointInTimeState;
  let written: WrittenSnapshot | undefined;
  if (request.createSnapshot) {
    // A follower's snapshots are its leader's (installed); it writes none of its own, as it refuses CreateSnapshot.
    context.replication.assertLeader('StateAt with create_snapshot');
    const result = await context.pointInTime.snapshotAt(point, { compress: request.compress });
    built = result.built;
    written = result.written;
    context.events.snapshotTaken({ id: written.id, walOffset: written.walOffset, durationMs: performance.now() - started, bytes: written.sizeBytes });
  } else {
    built = await context.pointInTime.stateAt(point);
  }
  const { state } = built;
  // The lookups go out whole, in one message: their bytes are bounded as a page's are.
  const maxBytes = context.options.maxResponseBytes;
  let lookupBytes = 0;
  const lookups: StateAtLookup[] = request.keys.map((key) => {
    const entry = state.get(key);
    lookupBytes += key.length + (entry?.value.length ?? 0);
    if (lookupBytes > maxBytes) {
      throw invalidArgument('keys', `the keys and values asked for come to more than max_response_bytes (${maxBytes}): ask for fewer keys per request`, {
        configKey: 'max_response_bytes',
        limit: maxBytes,
      });
    }
    return entry === undefined
      ? { key, found: false, value: Buffer.alloc(0), offset: 0n, timestamp: 0n }
      : { key, found: true, value: entry.value, offset: BigInt(entry.offset), timestamp: BigInt(entry.timestamp) };
  });
  const page =
    list === undefined
      ? undefined
      : keyInfoPage(state, {
          prefix: list.prefix,
          limit: list.pageSize === 0 ? LIST_KEYS_PAGE_SIZE_DEFAULT : Math.min(list.pageSize, LIST_KEYS_PAGE_SIZE_MAX),
          pageToken: list.pageToken,
          maxBytes: context.options.maxResponseBytes,
        });
  return {
    nextOffset: BigInt(built.nextOffset),
    snapshot: built.snapshot === undefined ? undefined : snapshotInfoMessage(built.snapshot, ''),
    recordsReplayed: BigInt(built.recordsReplayed),
    absentOffsets: BigInt(built.absentOffsets),
    keyCount: BigInt(state.size),
    lookups,
    keys: (page?.keys ?? []).map((info) => ({ key: info.key, offset: BigInt(info.offset), timestamp: BigInt(info.timestamp), valueSizeBytes: BigInt(info.valueSizeBytes) })),
    nextPageToken: page?.nextPageToken ?? '',
    createdSnapshot: written === undefined ? undefined : snapshotInfoMessage(written, written.checksum),
    durationMs: BigInt(Math.max(0, Math.round(performance.now() - started))),
  };
}

/** The point of a request; undefined (unset): the end of the log. */
function pointOf(request: StateAtRequest): PointInTime | undefined {
  const at = request.at;
  if (at === undefined) return undefined;
  if (at.$case === 'offset') return { offset: safeIntegerField(at.value, 'offset') };
  return { timestampMs: safeIntegerField(at.value, 'timestamp_ms') };
}
