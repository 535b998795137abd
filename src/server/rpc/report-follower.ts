import type { sendUnaryData, ServerReadableStream } from '@grpc/grpc-js';
import { ReportFollowerSession } from '../followers/report-follower-session.js';
import type { ReportFollowerRequest, ReportFollowerResponse } from '../../gen/wald/v1/replication.js';
import type { RpcContext } from './rpc-context.js';

/** The ReportFollower RPC: the {@link ReportFollowerSession} that feeds one follower's reports to the registry. */
export function reportFollower(
  call: ServerReadableStream<ReportFollowerRequest, ReportFollowerResponse>,
  respond: sendUnaryData<ReportFollowerResponse>,
  context: RpcContext,
): ReportFollowerSession {
  return new ReportFollowerSession(call, respond, context.followers, context.logger);
}
