import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AppendStreamRequest, AppendStreamResponse } from '../../gen/wald/v1/append.js';
import { AppendStreamSession } from '../append-stream.js';
import type { RpcContext } from './rpc-context.js';

/**
 * The AppendStream RPC: the {@link AppendStreamSession} that serves one call, reading ahead at
 * most `maxInFlightAppends` unanswered appends and taking at most `maxAppendsPerMessage` appends per message.
 */
export function appendStream(call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse | Buffer>, context: RpcContext): AppendStreamSession {
  const { options } = context;
  return new AppendStreamSession(call, context.state, options.maxInFlightAppends, options.maxAppendsPerMessage, context.logger, context.metrics, context.replicaAcks);
}
