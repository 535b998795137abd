import type { RpcContext } from './rpc-context.js';
import { SnapshotSendStream, type SnapshotCall } from '../snapshot-send-stream.js';

/** The GetSnapshot RPC: the {@link SnapshotSendStream} that serves one call. */
export function getSnapshot(call: SnapshotCall, context: RpcContext): SnapshotSendStream {
  return new SnapshotSendStream(call, context.state, context.logger);
}
