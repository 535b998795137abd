import { EventEmitter } from 'node:events';
import { status as Status, type ClientReadableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../client/backoff.js';
import { decodeSegmentHeader } from '../codec/segment-header.js';
import { isServiceError, rpcErrorInfoOf } from '../client/rpc-error-info.js';
import type { Wal } from '../engine/wal.js';
import { isWalError, WalError } from '../errors.js';
import { ReplicationRole } from '../gen/wald/v1/stats.js';
import type { TailWalResponse } from '../gen/wald/v1/tail.js';
import type { ReplicationState } from '../server/replication-state.js';
import { sleep } from './abortable-sleep.js';
import { FollowerReporter, type FollowerIdentity } from './follower-reporter.js';
import type { LeaderChannel } from './leader-channel.js';
import { checkRawFrames } from './raw-frame-check.js';

/**
 * Messages whose frames are handed to `appendFrames` but not yet durable, at most: enough for the
 * group commit to batch several messages per fsync during a catch-up, few enough to bound what the
 * follower holds (this many messages of `maxBatchBytes`, besides grpc-js's read-ahead).
 */
const MAX_APPENDS_IN_FLIGHT = 8;

/** How a follower paces itself. */
export interface FollowerSettings {
  /** Frame bytes asked for per TailWal message (`replication.max_batch_bytes`). */
  readonly maxBatchBytes: number;
  /** First wait before a reconnect, ms; doubles per failure in a row up to {@link maxBackoffMs}, with jitter. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Draws the jitter; injectable for tests. */
  readonly random?: (() => number) | undefined;
}

/**
 * Why {@link Follower.run} returned: it was stopped (shutdown or promotion), or the log needs work
 * that only a closed log allows (the follower node does it, then follows again): truncating what
 * the leader's history does not hold, or installing the leader's snapshot because the leader no
 * longer holds the records the follower needs next.
 */
export type FollowOutcome =
  | { readonly kind: 'stopped' }
  | { readonly kind: 'truncate'; readonly offset: number; readonly leaderEpoch: number }
  | { readonly kind: 'install'; readonly snapshotId: string; readonly snapshotOffset: number; readonly leaderFirstOffset: number };

/** Events of a {@link Follower}. */
export interface FollowerEvents {
  /** A TailWal stream to the leader is open and delivered its first message. */
  connected: [];
  /** The stream failed or ended; the follower waits `delayMs`, then reconnects. */
  disconnected: [error: unknown, delayMs: number];
  /** Frames were appended and are durable: the follower's next offset now. */
  appended: [nextOffset: number, recordCount: number];
  /** A heartbeat from the leader: where its log is. */
  heartbeat: [leaderHighWatermark: number | undefined, nextOffset: number];
}

/** What the follower knows of its progress, for logs and stats. */
export interface FollowerProgress {
  readonly isConnected: boolean;
  /** The leader's high watermark in its last message; undefined before one, or while its log is empty. */
  readonly leaderHighWatermark: number | undefined;
  /** The leader's current epoch, from its last message. */
  readonly leaderEpoch: number;
  /** Records the follower lacks, by the leader's last message. */
  readonly lagRecords: number;
  /** Frames and records appended since the follower started. */
  readonly framesAppended: number;
  readonly recordsAppended: number;
  /** Reconnections after a failure. */
  readonly reconnects: number;
}

/**
 * The follow loop of one open log: connect to the leader, check for divergence (GetEpochEnd of the
 * log's newest epoch: whatever the log holds beyond its end on the leader must go), then tail the
 * leader in frames mode from the log's own next offset, check each message's frames
 * ({@link checkRawFrames}) and append them as they are (`Wal.appendFrames`: CRC, continuity and
 * epoch order checked again, durable under the log's sync policy before it resolves), and report
 * the durable next offset (ReportFollower). After any failure of the connection or the leader it
 * waits (exponential backoff with jitter) and starts over from the log's next offset, so the log
 * has neither a gap nor a duplicate.
 *
 * Flow control end to end: the loop reads the next message only while fewer than
 * {@link MAX_APPENDS_IN_FLIGHT} messages await their fsync, so the follower holds at most that many
 * messages of `maxBatchBytes` plus grpc-js's read-ahead (one frame larger than `maxBatchBytes`
 * comes alone), and HTTP/2 flow control stops the leader meanwhile.
 *
 * A frame refused (`WAL_FRAME_REJECTED`: a bad checksum, a gap, an overlap, a header that
 * disagrees with its fields) or a log that cannot be written ends the loop with that error: a
 * follower never writes what it could not check, and does not retry what would fail the same.
 * The one refusal it gets past is a segment key compaction rewrote (reason `compacted`): it
 * installs the leader's newest snapshot instead.
 */
export class Follower extends EventEmitter<FollowerEvents> {
  private readonly abort = new AbortController();
  private readonly reporter: FollowerReporter;
  private call: ClientReadableStream<TailWalResponse> | undefined;
  private failures = 0;
  private isConnected = false;
  private leaderHighWatermark: number | undefined;
  private leaderEpoch = 0;
  private framesAppended = 0;
  private recordsAppended = 0;
  private reconnects = 0;
  private hasWarnedEpochEnd = false;
  private running: Promise<FollowOutcome> | undefined;

  constructor(
    private readonly wal: Wal,
    private readonly channel: LeaderChannel,
    private readonly replication: ReplicationState,
    private readonly identity: FollowerIdentity,
    private readonly settings: FollowerSettings,
    private readonly logger: Logger,
  ) {
    super();
    this.reporter = new FollowerReporter(channel, identity, logger);
  }

  /** Where the follower is. */
  progress(): FollowerProgress {
    const hw = this.leaderHighWatermark;
    return {
      isConnected: this.isConnected,
      leaderHighWatermark: hw,
      leaderEpoch: this.leaderEpoch,
      lagRecords: hw === undefined ? 0 : Math.max(0, hw + 1 - this.wal.nextOffset),
      framesAppended: this.framesAppended,
      recordsAppended: this.recordsAppended,
      reconnects: this.reconnects,
    };
  }

  /**
   * Follows until stopped or until the log needs offline work (see {@link FollowOutcome}); once
   * {@link stop} was called the outcome is `stopped`, whatever the loop had found.
   * Rejects with the error that stopped it for good (`WAL_FRAME_REJECTED`, the log's write errors).
   */
  run(): Promise<FollowOutcome> {
    this.running ??= this.loop().finally(() => this.reporter.close());
    return this.running;
  }

  /** Stops following; resolves once no frame will be appended any more. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.call?.cancel();
    await this.running?.catch(() => undefined);
  }

  private get isStopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async loop(): Promise<FollowOutcome> {
    while (!this.isStopped) {
      let failure: unknown;
      try {
        const outcome = await this.connectOnce();
        // Stopped (a promotion) while it found work to do: the log is the new leader's now, and
        // must not be truncated or replaced.
        if (outcome !== undefined) return this.isStopped ? { kind: 'stopped' } : outcome;
        failure = new Error('the leader ended the tail');
      } catch (error) {
        if (this.isStopped) break;
        if (isWalError(error)) throw error;
        failure = error;
      } finally {
        this.isConnected = false;
        this.replication.noteLeaderLost();
      }
      if (this.isStopped) break;
      const delayMs = backoffDelayMs(this.failures++, this.settings.initialBackoffMs, this.settings.maxBackoffMs, this.settings.random);
      this.reconnects++;
      this.emit('disconnected', failure, delayMs);
      this.logger.warn({ err: failure, leader: this.channel.address, retryInMs: delayMs, nextOffset: this.wal.nextOffset }, 'replication: lost the leader; reconnecting');
      await sleep(delayMs, this.abort.signal);
    }
    return { kind: 'stopped' };
  }

  /**
   * One connection: the divergence check, then the tail until it fails. Resolves with an outcome
   * when the log needs offline work, undefined when the stream ended; rejects with the stream's
   * failure (retried) or a local `WalError` (not retried).
   */
  private async connectOnce(): Promise<FollowOutcome | undefined> {
    const truncateAt = await this.divergence();
    if (truncateAt !== undefined) return truncateAt;
    const from = this.wal.nextOffset;
    const call = this.channel.tailFrames(from, this.settings.maxBatchBytes, this.identity.followerId);
    this.call = call;
    if (this.isStopped) call.cancel();
    const inFlight: Promise<void>[] = [];
    let appendFailure: unknown;
    try {
      for await (const message of call as AsyncIterable<TailWalResponse>) {
        if (!this.isConnected) {
          this.isConnected = true;
          this.failures = 0;
          this.emit('connected');
          this.logger.info({ leader: this.channel.address, fromOffset: from }, 'replication: following');
        }
        const appended = this.take(message);
        if (appended !== undefined) {
          // A refused or failed append ends the stream at once (no later message can continue the
          // log), and is what the connection fails with.
          appended.catch((error: unknown) => {
            appendFailure ??= error;
            call.cancel();
          });
          inFlight.push(appended);
          if (inFlight.length >= MAX_APPENDS_IN_FLIGHT) await inFlight.shift();
        }
        if (this.isStopped) break;
      }
      await Promise.all(inFlight.splice(0));
      if (appendFailure !== undefined) return await this.compactedSegmentOutcome(appendFailure);
      return undefined;
    } catch (error) {
      if (appendFailure !== undefined) return await this.compactedSegmentOutcome(appendFailure);
      if (isWalError(error, 'WAL_FRAME_REJECTED')) return await this.compactedSegmentOutcome(error);
      const install = this.installOutcome(error);
      if (install !== undefined) return install;
      throw error;
    } finally {
      // Whatever happens, the loop ends only once no append it started is still running.
      await Promise.allSettled(inFlight);
      this.call = undefined;
      call.cancel();
    }
  }

  /**
   * Takes one message: a heartbeat is reported at once; frames are checked and handed to
   * `appendFrames`, whose promise (settled once they are durable) is returned. The checks and the
   * queueing are synchronous, so messages are appended in order even while earlier ones still
   * wait for their fsync (group commit batches them).
   *
   * @throws WalError `WAL_FRAME_REJECTED` from {@link checkRawFrames} or `appendFrames`'s checks.
   */
  private take(message: TailWalResponse): Promise<void> | undefined {
    const epoch = Number(message.epoch);
    this.leaderEpoch = epoch;
    this.replication.noteLeaderEpoch(epoch);
    this.leaderHighWatermark = message.highWatermark === undefined ? undefined : Number(message.highWatermark);
    this.replication.noteLeaderHighWatermark(this.leaderHighWatermark, this.wal.highWatermark, Date.now());
    if (message.frames.length === 0) {
      this.emit('heartbeat', this.leaderHighWatermark, this.wal.nextOffset);
      this.reporter.report(this.wal.highWatermark + 1, this.wal.epoch);
      return undefined;
    }
    checkRawFrames(message.frames);
    const segmentHeader = startedSegmentHeader(message);
    const firstOffset = Number(message.frames[0]!.baseOffset);
    return this.wal.appendFrames(message.frames.map((raw) => raw.frame), segmentHeader === undefined ? {} : { segmentHeader }).then((appended) => {
      const records = appended.nextOffset - firstOffset;
      this.framesAppended += message.frames.length;
      this.recordsAppended += records;
      this.emit('appended', appended.nextOffset, records);
      this.replication.noteLeaderHighWatermark(this.leaderHighWatermark, this.wal.highWatermark, Date.now());
      this.reporter.report(this.wal.highWatermark + 1, this.wal.epoch);
    });
  }

  /**
   * Where the log must be cut so that it holds nothing the leader's history does not, or
   * undefined when it holds nothing beyond: GetEpochEnd of the log's newest epoch. A leader that
   * does not know GetEpochEnd (`UNIMPLEMENTED`) is tailed without the check.
   *
   * @throws WalError `WAL_EPOCH_MISMATCH` (reason `stale leader`) when the leader's epoch is older
   *   than the log's newest (see {@link checkLeaderNotStale}): nothing is cut.
   */
  private async divergence(): Promise<FollowOutcome | undefined> {
    await this.checkLeaderNotStale();
    // An empty log has nothing to cut, unless it began an epoch of its own (promoted before it
    // wrote, or after a snapshot install): that one may be an epoch the leader never had.
    if (this.wal.nextOffset === this.wal.firstOffset && this.wal.epoch === 0) return undefined;
    let end;
    try {
      end = await this.channel.getEpochEnd(this.wal.epoch);
    } catch (error) {
      if (isServiceError(error) && error.code === Status.UNIMPLEMENTED) {
        if (!this.hasWarnedEpochEnd) this.logger.warn({ leader: this.channel.address }, 'the leader does not implement GetEpochEnd: tailing without the divergence check');
        this.hasWarnedEpochEnd = true;
        return undefined;
      }
      throw error;
    }
    const leaderEpoch = Number(end.epoch);
    let endOffset = Number(end.endOffset);
    // A leader without this log's newest epoch answers the greatest epoch it has below it, and
    // where that epoch ends on the leader. Here that epoch may end sooner: this log started a
    // newer epoch of its own there (it was promoted while it lagged), and its records from there
    // on are not the leader's, although the leader's older epoch runs past them. The cut is the
    // earlier of the two ends (Kafka's KIP-279).
    if (leaderEpoch < this.wal.epoch) endOffset = Math.min(endOffset, this.wal.epochEnd(leaderEpoch).endOffset);
    // An epoch of this log's own that the leader never had is cut even when no record follows its
    // start: the leader's frames from there on are of an older epoch, which the log refuses. (A
    // node promoted and made a follower again before it wrote; a crash inside an earlier cut,
    // after the segments and before the epoch history.) A cut at the log's end cuts only that.
    if (endOffset > this.wal.nextOffset || (endOffset === this.wal.nextOffset && leaderEpoch >= this.wal.epoch)) return undefined;
    return { kind: 'truncate', offset: endOffset, leaderEpoch };
  }

  /**
   * Refuses a leader whose epoch is older than this log's newest: this log was promoted (or
   * followed a newer leader) after that leader was replaced, so the leader is stale, and what this
   * log wrote in its newer epoch was acknowledged to its clients. Following would cut those records
   * (the stale leader's GetEpochEnd answers its own next offset for an epoch it never had) and copy
   * the stale leader's instead. As Kafka's fenced leader epoch, the follower does neither: it stops
   * for good (`wald serve` exits naming both epochs), and the operator either drops `follow` (the
   * node leads, as it was promoted to) or points it at the current leader.
   *
   * An upstream that is itself a follower (a chain) is not judged stale: its log enters a new epoch
   * only when it copies that epoch's first frame, so it may lag behind this log's epoch for a while
   * (after a divergence cut, on an idle leader). This follower then waits and retries, with its
   * backoff, without cutting anything, until the upstream has caught up with the epoch.
   *
   * @throws WalError `WAL_EPOCH_MISMATCH` (details `reason` `stale leader`, `epoch`, `leaderEpoch`, `leader`).
   * @throws Error (retried) when the upstream is a follower still in an older epoch.
   */
  private async checkLeaderNotStale(): Promise<void> {
    const epoch = this.wal.epoch;
    if (epoch === 0) return;
    const stats = await this.channel.getStats();
    const leaderEpoch = Number(stats.epoch);
    if (leaderEpoch >= epoch) return;
    if (stats.role === ReplicationRole.REPLICATION_ROLE_FOLLOWER) {
      throw new Error(
        `the upstream ${this.channel.address} is a follower in epoch ${leaderEpoch}, behind this log's epoch ${epoch}: waiting for it to copy the newer epoch`,
      );
    }
    throw new WalError(
      'WAL_EPOCH_MISMATCH',
      `this log is in epoch ${epoch}, newer than epoch ${leaderEpoch} of the leader it is configured to follow (${this.channel.address}): ` +
        'it was promoted, or followed a newer leader, after that leader was replaced. It will not cut its own records to follow a stale ' +
        'leader: start it without follow to lead, or follow the current leader',
      { reason: 'stale leader', epoch, leaderEpoch, leader: this.channel.address },
    );
  }

  /**
   * The install of the leader's newest snapshot when `error` refused frames that key compaction
   * made uncopyable: a segment it rewrote (`WAL_FRAME_REJECTED` reason `compacted`: its frames
   * skip offsets), or records it dropped at the follower's next offset (reason `gap`: the leader's
   * next frame lies beyond it), and that snapshot lies beyond the follower's next offset (a
   * compaction snapshots before it rewrites). Anything else, or a leader with no such snapshot (or
   * none it will tell), rethrows `error`: it stops the follower.
   */
  private async compactedSegmentOutcome(error: unknown): Promise<FollowOutcome> {
    if (!isWalError(error, 'WAL_FRAME_REJECTED')) throw error;
    const reason = error.details['reason'];
    if (reason !== 'compacted' && reason !== 'gap') throw error;
    const stats = await this.channel.getStats().catch(() => undefined);
    const snapshotOffset = stats?.lastSnapshotOffset === undefined ? undefined : Number(stats.lastSnapshotOffset);
    if (stats === undefined || stats.lastSnapshotId === '' || snapshotOffset === undefined || snapshotOffset <= this.wal.nextOffset) throw error;
    this.logger.warn(
      { leader: this.channel.address, nextOffset: this.wal.nextOffset, reason, snapshotId: stats.lastSnapshotId },
      'replication: key compaction on the leader left frames this follower cannot copy; installing its snapshot',
    );
    return { kind: 'install', snapshotId: stats.lastSnapshotId, snapshotOffset, leaderFirstOffset: Number(stats.firstOffset) };
  }

  /** The snapshot to install when `error` is the leader's `WAL_OFFSET_COMPACTED` naming one. */
  private installOutcome(error: unknown): FollowOutcome | undefined {
    if (!isServiceError(error) || error.code !== Status.OUT_OF_RANGE) return undefined;
    const info = rpcErrorInfoOf(error);
    if (info.reason !== 'WAL_OFFSET_COMPACTED') return undefined;
    const snapshotId = info.metadata['snapshotId'];
    const snapshotOffset = Number(info.metadata['snapshotOffset']);
    const leaderFirstOffset = Number(info.metadata['firstOffset']);
    if (snapshotId === undefined || !Number.isSafeInteger(snapshotOffset)) {
      this.logger.error({ leader: this.channel.address, nextOffset: this.wal.nextOffset, firstOffset: leaderFirstOffset }, 'replication: the leader compacted past this follower and names no snapshot to install; retrying');
      return undefined;
    }
    return { kind: 'install', snapshotId, snapshotOffset, leaderFirstOffset };
  }
}

/**
 * The message's segment header when its first frame starts that segment (the leader began a new
 * segment there) or the segment was rewritten by key compaction, else undefined: a header that starts below the first frame (a stream that opened
 * inside a segment, after a snapshot install) only tells the leader's frame seed, and the follower
 * keeps its own segment there.
 */
function startedSegmentHeader(message: TailWalResponse): Buffer | undefined {
  if (message.segmentHeader.length === 0) return undefined;
  const decoded = decodeSegmentHeader(message.segmentHeader);
  if (!decoded.ok) return undefined;
  // A segment key compaction rewrote may begin with a gap: its header goes on, for appendFrames to
  // refuse it as `compacted` (the follower installs a snapshot then).
  const isCompacted = decoded.header.compactedNextOffset !== undefined;
  if (!isCompacted && decoded.header.baseOffset !== Number(message.frames[0]!.baseOffset)) return undefined;
  return Buffer.from(message.segmentHeader);
}
