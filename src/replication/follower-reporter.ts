import { status as Status, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ReportFollowerRequest } from '../gen/wald/v1/replication.js';
import type { LeaderChannel } from './leader-channel.js';

/** Who the follower is, in every report. */
export interface FollowerIdentity {
  readonly followerId: string;
  /** The address the follower serves on (HOST:PORT), for the leader's listings; may be empty. */
  readonly address: string;
}

/**
 * The follower's ReportFollower stream: what it holds durably, sent after each append that moved
 * its high watermark (at most one message in flight: a newer report replaces one the transport has
 * not taken yet) and with each heartbeat. The stream is opened on the first report and again
 * after it fails; a leader that does not implement ReportFollower (`UNIMPLEMENTED`, an older
 * wald) is logged once and never asked again on this connection: replication works without it,
 * only the leader's follower listing and `min_replicas` need it.
 */
export class FollowerReporter {
  private call: ClientWritableStream<ReportFollowerRequest> | undefined;
  private isUnimplemented = false;
  private hasLoggedFailure = false;
  private pending: ReportFollowerRequest | undefined;
  private isWriting = false;

  constructor(
    private readonly channel: LeaderChannel,
    private readonly identity: FollowerIdentity,
    private readonly logger: Logger,
  ) {}

  /** Reports `durableNextOffset` in `epoch`. Never throws: reporting is best effort. */
  report(durableNextOffset: number, epoch: number): void {
    if (this.isUnimplemented) return;
    this.pending = { followerId: this.identity.followerId, address: this.identity.address, durableNextOffset: BigInt(durableNextOffset), epoch: BigInt(epoch) };
    this.flush();
  }

  private flush(): void {
    if (this.isWriting || this.pending === undefined || this.isUnimplemented) return;
    const call = (this.call ??= this.open());
    const message = this.pending;
    this.pending = undefined;
    this.isWriting = true;
    call.write(message, () => {
      this.isWriting = false;
      this.flush();
    });
  }

  private open(): ClientWritableStream<ReportFollowerRequest> {
    const call = this.channel.reportFollower((error) => this.ended(call, error));
    // The outcome comes through the callback; without a listener an 'error' event would throw.
    call.on('error', () => {});
    return call;
  }

  private ended(call: ClientWritableStream<ReportFollowerRequest>, error: ServiceError | null): void {
    if (this.call === call) {
      this.call = undefined;
      this.isWriting = false;
    }
    if (error === null || error.code === Status.CANCELLED) return;
    if (error.code === Status.UNIMPLEMENTED) {
      this.isUnimplemented = true;
      this.logger.warn({ leader: this.channel.address }, 'the leader does not implement ReportFollower: it will not list this follower or count it for min_replicas');
      return;
    }
    if (!this.hasLoggedFailure) {
      this.hasLoggedFailure = true;
      this.logger.warn({ err: error, leader: this.channel.address }, 'ReportFollower failed; the next report opens it again');
    }
  }

  /** Ends the stream (the follower disconnects or stops). */
  close(): void {
    const call = this.call;
    this.call = undefined;
    this.pending = undefined;
    call?.end();
  }
}
