import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { FrameRun } from '../engine/frame-reader.js';
import type { Wal } from '../engine/wal.js';
import type { TailWalRequest, TailWalResponse } from '../gen/wald/v1/tail.js';
import { encodeTailFramesResponse, type FramesResponsePosition } from '../wire/tail-frames-response-encoder.js';
import { invalidArgument, safeIntegerField } from './request-fields.js';
import type { TailQueueBudget } from './tail-queue-budget.js';
import { shuttingDown, TailStream, type TailSettings } from './tail-stream.js';
import { MAX_FOLLOWER_ID_BYTES } from './followers/report-follower-session.js';

/**
 * Bytes a frames-mode response holds besides its frames, at most: its offsets, epoch and timestamp
 * (a few varints) and a 64-byte segment header.
 */
const FRAME_RESPONSE_FIXED_BYTES = 128;

/**
 * The reservation before a read adds 1/16 of `maxBytes` for the RawFrame fields around each frame
 * (tags, lengths, offset, count, epoch, CRC: about 30 bytes), which covers frames of 512 bytes and
 * more on average; a message of smaller frames is sent under a reservation of its exact size.
 */
const FRAME_FIELDS_SHARE = 16;

/**
 * One TailWal call in frames mode (`frames: true`, what a follower asks for): the leader's frames
 * as its segments store them, copied without decoding (`Wal.readFrames`), with the header of their
 * segment at the start of the stream and whenever a new segment begins, and heartbeats that carry
 * the high watermark, the first retained offset, the epoch and the high watermark's timestamp (the
 * first heartbeat of a stream that has sent no frame also carries the header of the segment the
 * next frame goes to: a follower installing a snapshot at the leader's head takes the seed from it).
 *
 * It is a {@link TailStream} with another reading loop, so the bounds are the same: before each
 * read it reserves a full message of the server-wide {@link TailQueueBudget} (`maxBytes` of frames
 * plus the response's fields; one frame larger than `maxBytes` comes alone, under a reservation of
 * its own size), writes only while the call has room (`write()` returned true and fewer than
 * `maxQueueBytes` await the transport), and otherwise waits for `drain`. A follower that stops
 * reading therefore holds at most `maxQueueBytes` plus one message of the leader's memory.
 *
 * The start must be `from_offset` at a frame boundary (a follower's next offset always is): else
 * `INVALID_ARGUMENT` (field `from_offset`); below the first retained offset the stream ends with
 * `OUT_OF_RANGE` `WAL_OFFSET_COMPACTED` naming the snapshot to install, as a record tail does.
 */
export class FrameTailStream extends TailStream {
  private nextOffset = 0;
  /** True until the first message with frames is written. */
  private isFirstMessage = true;
  /** The header the next heartbeat carries (once): see the stream's first heartbeat in {@link follow}. */
  private heartbeatSegmentHeader: Buffer | undefined;
  private lastTimestamp: number | undefined;
  private framesSent = 0;

  constructor(
    call: ServerWritableStream<TailWalRequest, TailWalResponse | Buffer>,
    wal: Wal,
    settings: TailSettings,
    budget: TailQueueBudget,
    logger: Logger,
    explainFailure?: (error: unknown) => unknown,
  ) {
    super(call, wal, settings, budget, logger, explainFailure);
  }

  /** The follower id the tail was opened with (`TailWalRequest.follower_id`); empty when none was given. */
  get followerId(): string {
    return this.call.request.followerId;
  }

  /** True when the request names a follower id the leader tracks: not empty, and within {@link MAX_FOLLOWER_ID_BYTES} (a longer one fails the call). */
  get namesFollower(): boolean {
    const id = this.call.request.followerId;
    return id !== '' && Buffer.byteLength(id, 'utf8') <= MAX_FOLLOWER_ID_BYTES;
  }

  /** The offset the follower asked for (`from_offset`), for the leader's log; undefined when not given. */
  get fromOffset(): number | undefined {
    const start = this.call.request.start;
    return start?.$case === 'fromOffset' ? Number(start.value) : undefined;
  }

  /** The client's address, for the leader's follower listing. */
  get peer(): string {
    return this.call.getPeer();
  }

  override counters(): ReturnType<TailStream['counters']> & { readonly framesSent: number } {
    return { ...super.counters(), framesSent: this.framesSent };
  }

  protected override async follow(): Promise<void> {
    try {
      checkFollowerId(this.call.request.followerId);
      this.nextOffset = this.frameStart();
      const { maxBytes } = this.settings;
      const reservation = maxBytes + Math.ceil(maxBytes / FRAME_FIELDS_SHARE) + FRAME_RESPONSE_FIXED_BYTES;
      let isCaughtUp = false;
      while (!this.isStopped) {
        const grant = await this.reserveBudget(reservation, this.nextOffset);
        if (grant === undefined) break;
        let run: FrameRun;
        try {
          run = await this.wal.readFrames(this.nextOffset, maxBytes);
        } catch (error) {
          this.releaseGrant(grant);
          throw error;
        }
        if (run.frames.length === 0) {
          this.releaseGrant(grant);
          if (!isCaughtUp) {
            // As a record tail: the first time it has everything, it says so at once, then waits
            // (also when it has sent no frame yet: a follower that reconnects caught up).
            isCaughtUp = true;
            // A stream that starts at the leader's next offset (a follower installing a snapshot
            // the leader took at its head, with nothing written since) learns the frame seed from
            // the header of the segment the next frame goes to, instead of waiting for a write.
            if (this.isFirstMessage) this.heartbeatSegmentHeader = await this.wal.segmentHeaderOf(this.nextOffset).catch(() => undefined);
            await this.sendHeartbeat(this.nextOffset);
            continue;
          }
          const waited = await this.orHeartbeat(this.wal.waitForHighWatermark(this.nextOffset - 1, this.abort.signal));
          if (waited === false) break;
          if (typeof waited === 'symbol') await this.sendHeartbeat(this.nextOffset);
          continue;
        }
        isCaughtUp = false;
        // The first frames of a stream carry their segment's header even inside it: a follower
        // whose log starts there (a snapshot install) takes the leader's frame seed from it.
        const header = run.segmentHeader ?? (this.isFirstMessage ? await this.wal.segmentHeaderOf(run.frames[0]!.baseOffset) : undefined);
        const response = this.encodeRun(run, header);
        const needed = response.length;
        if (needed > grant.bytes) {
          // One frame larger than maxBytes, or many frames so small that their RawFrame fields
          // outgrow the reservation: sent under a reservation of its own size, so that the budget
          // counts every byte held.
          this.releaseGrant(grant);
          const big = await this.reserveBudget(needed, this.nextOffset);
          if (big === undefined) break;
          await this.send(response, run, big);
        } else {
          grant.shrinkTo(needed);
          await this.send(response, run, grant);
        }
      }
      if (this.isShuttingDown) this.fail(shuttingDown());
    } catch (error) {
      // A failure caused by the shutdown (the log closing under a read) is reported as the shutdown.
      this.fail(this.isShuttingDown ? shuttingDown() : error);
    }
  }

  private async send(response: Buffer, run: FrameRun, grant: Parameters<TailStream['releaseGrant']>[0]): Promise<void> {
    const last = run.frames[run.frames.length - 1]!;
    this.lastTimestamp = last.timestamp;
    this.nextOffset = run.nextOffset;
    this.isFirstMessage = false;
    this.framesSent += run.frames.length;
    const records = run.nextOffset - run.frames[0]!.baseOffset;
    if (!this.enqueue(response, records, run.nextOffset, grant)) {
      await this.waitForClient();
    }
  }

  /** The stream's start: `from_offset`, required in frames mode (a boundary check is the engine's). */
  private frameStart(): number {
    const start = this.call.request.start;
    if (start?.$case !== 'fromOffset') {
      throw invalidArgument('from_offset', 'frames mode starts at a from_offset (a follower\'s next offset)');
    }
    return safeIntegerField(start.value, 'from_offset');
  }

  /**
   * One response: the run's frames (their stored bytes copied once, into the message, by
   * `encodeTailFramesResponse`), `segmentHeader` (the header of their segment, when the first one
   * starts it or the message is the stream's first), and where the log is.
   */
  private encodeRun(run: FrameRun, segmentHeader: Buffer | undefined): Buffer {
    return encodeTailFramesResponse(run.frames, segmentHeader, this.position(run.nextOffset, run.frames[run.frames.length - 1]!.timestamp));
  }

  protected override encodeHeartbeat(nextOffset: number): Buffer {
    const segmentHeader = this.heartbeatSegmentHeader;
    this.heartbeatSegmentHeader = undefined;
    return encodeTailFramesResponse([], segmentHeader, this.position(nextOffset, this.lastTimestamp));
  }

  /**
   * Where the log is: high watermark, first offset, the stream's next offset, the epoch, and the
   * high watermark's timestamp when the stream is at it (the last frame it sent holds that record).
   */
  private position(nextOffset: number, lastTimestamp: number | undefined): FramesResponsePosition {
    const highWatermark = this.wal.highWatermark;
    const isAtHighWatermark = nextOffset === highWatermark + 1 && lastTimestamp !== undefined;
    return {
      highWatermark,
      firstOffset: this.wal.firstOffset,
      nextOffset,
      epoch: this.wal.epoch,
      highWatermarkTimestamp: isAtHighWatermark ? lastTimestamp : undefined,
    };
  }
}

/** A frames tail's `follower_id`: as ReportFollower's, at most {@link MAX_FOLLOWER_ID_BYTES} bytes (empty: no follower tracked). */
function checkFollowerId(followerId: string): void {
  const bytes = Buffer.byteLength(followerId, 'utf8');
  if (bytes > MAX_FOLLOWER_ID_BYTES) throw invalidArgument('follower_id', `${bytes} bytes; at most ${MAX_FOLLOWER_ID_BYTES}`, { limit: MAX_FOLLOWER_ID_BYTES });
}
