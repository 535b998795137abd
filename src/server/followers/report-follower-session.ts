import { Buffer } from 'node:buffer';
import type { sendUnaryData, ServerReadableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WalError } from '../../errors.js';
import type { ReportFollowerRequest, ReportFollowerResponse } from '../../gen/wald/v1/replication.js';
import { invalidArgument, safeIntegerField } from '../request-fields.js';
import { toRpcFailure, toServiceError } from '../rpc-failure.js';
import type { RegisteredStream } from '../stream-registry.js';
import type { FollowerRegistry } from './follower-registry.js';

/** Longest `follower_id` and `address`, in UTF-8 bytes (replication.proto). */
export const MAX_FOLLOWER_ID_BYTES = 256;

/** Counters of one ReportFollower stream, logged when it closes. */
export interface ReportFollowerCounters {
  readonly followerId: string | undefined;
  readonly reports: number;
  readonly durableNextOffset: number | undefined;
}

/**
 * One ReportFollower call: a follower's acknowledgements, each handed to the {@link
 * FollowerRegistry} as it arrives (so the appends waiting for it wake at once). The follower id is
 * fixed by the first message; every message must repeat it. The call ends with an empty response
 * when the follower half-closes, with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`) when the server stops,
 * or with the refusal of a bad message (the follower stays listed, as disconnected).
 */
export class ReportFollowerSession implements RegisteredStream {
  private followerId: string | undefined;
  private reports = 0;
  private durableNextOffset: number | undefined;
  private hasEnded = false;
  private finished: Promise<void> | undefined;
  private resolveFinished: (() => void) | undefined;

  constructor(
    private readonly call: ServerReadableStream<ReportFollowerRequest, ReportFollowerResponse>,
    private readonly respond: sendUnaryData<ReportFollowerResponse>,
    private readonly registry: FollowerRegistry,
    private readonly logger: Logger,
  ) {}

  /** A snapshot of the session's counters. */
  counters(): ReportFollowerCounters {
    return { followerId: this.followerId, reports: this.reports, durableNextOffset: this.durableNextOffset };
  }

  /** Starts reading the call; resolves when it is over. Never rejects. */
  run(): Promise<void> {
    if (this.finished === undefined) {
      this.finished = new Promise<void>((resolve) => {
        this.resolveFinished = resolve;
      });
      this.call.on('data', (request: ReportFollowerRequest) => this.accept(request));
      this.call.on('end', () => this.finish(undefined));
      this.call.on('cancelled', () => this.finish(undefined, true));
      this.call.on('error', () => this.finish(undefined, true));
    }
    return this.finished;
  }

  /** Ends the call with `UNAVAILABLE` (`WAL_SHUTTING_DOWN`): the follower reconnects to the next server. */
  async shutdown(): Promise<void> {
    this.finish(new WalError('WAL_SHUTTING_DOWN', 'the server is shutting down', {}));
    await this.finished;
  }

  private accept(request: ReportFollowerRequest): void {
    if (this.hasEnded) return;
    try {
      const followerId = checkedText(request.followerId, 'follower_id', true);
      const address = checkedText(request.address, 'address', false);
      const durableNextOffset = safeIntegerField(request.durableNextOffset, 'durable_next_offset');
      const epoch = safeIntegerField(request.epoch, 'epoch');
      if (this.followerId === undefined) {
        this.registry.reportOpened(followerId, this.call.getPeer(), durableNextOffset);
        this.followerId = followerId;
      } else if (followerId !== this.followerId) {
        throw invalidArgument('follower_id', `changed within the stream, from ${JSON.stringify(this.followerId)}`, { value: followerId });
      }
      this.registry.report(followerId, { durableNextOffset, address, epoch });
      this.reports++;
      this.durableNextOffset = durableNextOffset;
    } catch (error) {
      this.finish(error);
    }
  }

  /** Ends the call once: the empty response, or `error` as its status (none when the client is gone). */
  private finish(error: unknown, isGone = false): void {
    if (this.hasEnded) return;
    this.hasEnded = true;
    if (this.followerId !== undefined) this.registry.reportClosed(this.followerId, isGone ? 'report stream cancelled' : error === undefined ? 'report stream ended' : `report stream failed: ${error instanceof WalError ? error.code : String(error)}`);
    if (!isGone) {
      if (error === undefined) this.respond(null, {});
      else this.respond(toServiceError(toRpcFailure(error, this.logger, { rpc: 'ReportFollower' })));
    }
    this.resolveFinished?.();
  }
}

/** `value` checked as a follower id or address: at most {@link MAX_FOLLOWER_ID_BYTES} bytes, and not empty when `isRequired`. */
function checkedText(value: string, field: string, isRequired: boolean): string {
  if (isRequired && value === '') throw invalidArgument(field, 'is required in every message');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_FOLLOWER_ID_BYTES) {
    throw invalidArgument(field, `${bytes} bytes; at most ${MAX_FOLLOWER_ID_BYTES}`, { limit: MAX_FOLLOWER_ID_BYTES });
  }
  return value;
}
