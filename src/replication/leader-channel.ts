import { Metadata, type ChannelCredentials, type ClientOptions, type ClientReadableStream, type ClientWritableStream, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { ReportFollowerRequest, ReportFollowerResponse, type GetEpochEndResponse } from '../gen/wald/v1/replication.js';
import type { GetSnapshotResponse } from '../gen/wald/v1/snapshot.js';
import type { GetStatsResponse } from '../gen/wald/v1/stats.js';
import type { TailWalResponse } from '../gen/wald/v1/tail.js';
import { WalServiceClient, WalServiceService } from '../gen/wald/v1/wal_service.js';
import { decodeTailFramesResponse } from '../wire/tail-frames-response-decoder.js';

/** How a follower reaches its leader. */
export interface LeaderChannelOptions {
  /** The leader's address, HOST:PORT. */
  readonly address: string;
  /** Plaintext, or TLS (mutual when the follower presents a certificate). */
  readonly credentials: ChannelCredentials;
  /** Sends the bearer token with every call, when the leader asks for one. */
  readonly interceptors?: readonly Interceptor[] | undefined;
  /** The name the leader's certificate must carry, when it is not the host of `address`. */
  readonly tlsServerName?: string | undefined;
  /** Period of HTTP/2 pings, ms (`replication.keepalive_time_ms`). */
  readonly keepaliveTimeMs: number;
  /** How long a ping may go unanswered before the connection is dropped, ms. */
  readonly keepaliveTimeoutMs: number;
  /** Largest message the follower accepts: a frames message plus its fields (one frame may exceed the asked bytes). */
  readonly maxReceiveMessageBytes: number;
  /**
   * The HTTP/2 receive window the follower announces (per stream and connection), bytes: what the
   * leader may have in flight to it before it reads. grpc-js's default (64 KiB) caps a catch-up at
   * one window per round trip of two busy event loops.
   */
  readonly flowControlWindowBytes: number;
}

/** Deadline of the follower's unary calls (GetEpochEnd, GetStats), ms: a leader that cannot answer within it is retried. */
const UNARY_DEADLINE_MS = 10_000;

/** The full path of ReportFollower, served by the leader (i10-lead's side of the protocol). */
const REPORT_FOLLOWER_PATH = '/wald.v1.WalService/ReportFollower';

/**
 * The follower's one gRPC channel to its leader: the calls of the replication protocol, over a
 * channel whose keepalive pings detect a dead leader within `keepaliveTimeMs +
 * keepaliveTimeoutMs` (pings go out while no call is open too, so a leader that vanished between
 * two tails is noticed as well).
 */
export class LeaderChannel {
  private readonly client: WalServiceClient;

  constructor(readonly options: LeaderChannelOptions) {
    const clientOptions: ClientOptions = {
      'grpc.keepalive_time_ms': options.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
      'grpc-node.flow_control_window': options.flowControlWindowBytes,
      // The follower paces its own reconnects (backoff with jitter); grpc-js's would stack on them.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...(options.tlsServerName === undefined ? {} : { 'grpc.ssl_target_name_override': options.tlsServerName }),
      ...(options.interceptors === undefined ? {} : { interceptors: [...options.interceptors] }),
    };
    this.client = new WalServiceClient(options.address, options.credentials, clientOptions);
  }

  /** The leader's address. */
  get address(): string {
    return this.options.address;
  }

  /** GetEpochEnd: where `epoch` ends in the leader's log. */
  getEpochEnd(epoch: number): Promise<GetEpochEndResponse> {
    return new Promise((resolve, reject) => {
      this.client.getEpochEnd({ epoch: BigInt(epoch) }, new Metadata(), { deadline: Date.now() + UNARY_DEADLINE_MS }, (error, response) =>
        error === null ? resolve(response) : reject(error),
      );
    });
  }

  /** GetStats of the leader (its epoch history, for a follower bootstrapping from its snapshot). */
  getStats(): Promise<GetStatsResponse> {
    return new Promise((resolve, reject) => {
      this.client.getStats({}, new Metadata(), { deadline: Date.now() + UNARY_DEADLINE_MS }, (error, response) => (error === null ? resolve(response) : reject(error)));
    });
  }

  /**
   * A frames-mode TailWal from `fromOffset`, at most `maxBytes` of frames per message. Messages are
   * decoded by `decodeTailFramesResponse`: the frames and segment header are views into the
   * received message, not copies.
   */
  tailFrames(fromOffset: number, maxBytes: number, followerId: string): ClientReadableStream<TailWalResponse> {
    const definition = WalServiceService.tailWal;
    const request = { start: { $case: 'fromOffset' as const, value: BigInt(fromOffset) }, maxRecords: 0, maxBytes, frames: true, followerId };
    return this.client.makeServerStreamRequest(definition.path, definition.requestSerialize, decodeTailFramesResponse, request, new Metadata(), {});
  }

  /** GetSnapshot: the file of snapshot `snapshotId`, its info first, then its bytes. */
  getSnapshot(snapshotId: string): ClientReadableStream<GetSnapshotResponse> {
    return this.client.getSnapshot({ snapshotId });
  }

  /**
   * Opens a ReportFollower stream. `done` is called once with the call's outcome (an error, or
   * null when the leader ended it with OK).
   */
  reportFollower(done: (error: ServiceError | null) => void): ClientWritableStream<ReportFollowerRequest> {
    return this.client.makeClientStreamRequest(
      REPORT_FOLLOWER_PATH,
      (request: ReportFollowerRequest) => Buffer.from(ReportFollowerRequest.encode(request).finish()),
      (bytes: Buffer) => ReportFollowerResponse.decode(bytes),
      new Metadata(),
      {},
      (error: ServiceError | null) => done(error),
    );
  }

  /** Closes the channel (open calls are cancelled). */
  close(): void {
    this.client.close();
  }
}
