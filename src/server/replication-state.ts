import { EventEmitter } from 'node:events';
import type { Wal } from '../engine/wal.js';
import { invalidArgument, WalError } from '../errors.js';

/** The greatest epoch a frame header can hold: its u32 field plus 16 high bits (docs/format.md). */
export const MAX_EPOCH = 2 ** 48 - 1;

/**
 * A request's uint64 epoch field as a number.
 *
 * @throws WalError `WAL_INVALID_ARGUMENT` (field `epoch`) above {@link MAX_EPOCH}.
 */
export function epochField(value: bigint, field = 'epoch'): number {
  if (value < 0n || value > BigInt(MAX_EPOCH)) {
    throw invalidArgument(field, `must be at most ${MAX_EPOCH}, got ${value}`, { value: value.toString(), limit: MAX_EPOCH });
  }
  return Number(value);
}

/** What a server does in replication: accept appends (`leader`) or copy another's log (`follower`). */
export type ReplicationRoleName = 'leader' | 'follower';

/** Events of a {@link ReplicationState}. */
export interface ReplicationStateEvents {
  /** The server became the leader (a follower was promoted): it takes writes from now on. */
  promoted: [];
  /**
   * A promotion failed after it had stopped following (`Wal.beginEpoch` threw: a read-only or
   * failing disk): the server neither follows nor leads, and its owner must stop it.
   */
  promotionFailed: [error: unknown];
}

/**
 * The server's replication role, shared by every call: whether it is a follower (and of which
 * leader), what the admission refuses on a follower (`WAL_NOT_LEADER`), and the hook that stops
 * following when the server is promoted.
 *
 * The server layer cannot import the follower (src/replication sits above it), so the follower
 * hands its stop in as {@link FollowingControl}; a leader has none.
 */
export class ReplicationState extends EventEmitter<ReplicationStateEvents> {
  private following: FollowingControl | undefined;
  private seenEpoch = 0;
  private leaderHighWatermark: number | undefined;
  /** When the follower last held every record its leader had reported durable, ms (at first: when this state was made). */
  private caughtUpAtMs = Date.now();
  /** True from the follower's first message of a stream to the stream's end. */
  private isLeaderConnected = false;
  private promotion: Promise<unknown> = Promise.resolve();

  /** A leader's state when `following` is undefined, else a follower's of `following.leaderAddress`. */
  constructor(following?: FollowingControl) {
    super();
    this.following = following;
  }

  /** `leader` or `follower`, now. */
  get role(): ReplicationRoleName {
    return this.following === undefined ? 'leader' : 'follower';
  }

  /** On a follower, the address (HOST:PORT) of its leader; undefined on a leader. */
  get leaderAddress(): string | undefined {
    return this.following?.leaderAddress;
  }

  /** The greatest epoch the follower has heard of from its leader (0 when none); promotion goes above it. */
  get greatestSeenEpoch(): number {
    return this.seenEpoch;
  }

  /**
   * Notes the high watermark the leader reported in its last message (undefined: its log holds no
   * durable record) against this log's own (`localHighWatermark`, durable), at `nowMs`: the
   * follower's lag ({@link lagOf}) counts from the last time it held the leader's. A message also
   * means the follower is connected, until {@link noteLeaderLost}.
   */
  noteLeaderHighWatermark(highWatermark: number | undefined, localHighWatermark: number, nowMs: number): void {
    this.leaderHighWatermark = highWatermark;
    this.isLeaderConnected = true;
    if (highWatermark === undefined || localHighWatermark >= highWatermark) this.caughtUpAtMs = nowMs;
  }

  /** Notes that the follower's stream from its leader ended (a failure, a dead leader): it no longer knows it keeps up. */
  noteLeaderLost(): void {
    this.isLeaderConnected = false;
  }

  /**
   * How far this follower is behind its leader, with this log's high watermark
   * `localHighWatermark` now: the records it lacks by the leader's last message, and ms since it
   * last held every record the leader had reported durable (0 while connected and holding them;
   * while disconnected it grows from the last time it did, or from when this state was made).
   * Zeros on a leader.
   */
  lagOf(localHighWatermark: number, nowMs: number): { readonly leaderHighWatermark: number | undefined; readonly lagRecords: number; readonly lagMs: number } {
    if (this.role === 'leader') return { leaderHighWatermark: undefined, lagRecords: 0, lagMs: 0 };
    const leaderHighWatermark = this.leaderHighWatermark;
    const lagRecords = leaderHighWatermark === undefined ? 0 : Math.max(0, leaderHighWatermark - localHighWatermark);
    const isCaughtUp = this.isLeaderConnected && lagRecords === 0;
    return { leaderHighWatermark, lagRecords, lagMs: isCaughtUp ? 0 : Math.max(0, nowMs - this.caughtUpAtMs) };
  }

  /** Notes an epoch the leader reported (a heartbeat's `epoch`), so that a promotion goes above it. */
  noteLeaderEpoch(epoch: number): void {
    if (epoch > this.seenEpoch) this.seenEpoch = epoch;
  }

  /**
   * Refuses a call that would write to the log on a follower.
   *
   * @throws WalError `WAL_NOT_LEADER` (details `leader`, `rpc`) when the server follows a leader.
   */
  assertLeader(rpc: string): void {
    const leader = this.following?.leaderAddress;
    if (leader !== undefined) {
      throw new WalError('WAL_NOT_LEADER', `this server is a follower of ${leader}: send ${rpc} to the leader`, { leader, rpc });
    }
  }

  /**
   * Makes the server the leader of a new epoch: `requested`, or one more than the greatest epoch
   * seen (the log's, or its leader's). A follower stops following first, so that nothing else
   * appends to the log; the epoch is durable (`Wal.beginEpoch`) before the server takes writes
   * (`promoted`). Promotions run one at a time. A follower whose epoch cannot be begun once it
   * stopped following emits `promotionFailed` (its owner stops the server: see FollowerNode).
   * Before a follower takes writes, `view.caughtUp` (the key-value view applying everything the log
   * holds) settles: the transaction rules judge a COMMIT or ABORT against the view's table, which
   * must not miss an outcome the leader's frames just brought (a COMMIT accepted over an ABORT
   * still unapplied would be acknowledged and never take effect). A view that already failed
   * (`view.check` throws) refuses the promotion before anything changes: the follower goes on
   * following.
   *
   * @throws WalError `WAL_EPOCH_MISMATCH` (details `epoch`, `currentEpoch`) when `requested` is not
   *   greater than the greatest epoch seen (nothing changes then: the follower goes on following);
   *   the errors of `FollowingControl.stop` (nothing changes then either); the errors of
   *   `Wal.beginEpoch`.
   */
  promote(wal: Wal, requested: number | undefined, view: PromotedView = NO_VIEW): Promise<{ readonly epoch: number; readonly startOffset: number }> {
    const run = this.promotion.then(async () => {
      // Above every epoch this log ever had too: one a repair or a cut removed may be in a
      // follower's copy, whose records must never pass for the new epoch's.
      const current = Math.max(wal.epoch, this.seenEpoch, wal.epochFloor);
      const epoch = requested ?? current + 1;
      if (epoch <= current || epoch > MAX_EPOCH) {
        throw new WalError('WAL_EPOCH_MISMATCH', `cannot lead in epoch ${epoch}: it must be greater than ${current}, the greatest seen`, { epoch, currentEpoch: current });
      }
      if (this.following !== undefined) view.check();
      await this.following?.stop();
      let started;
      try {
        started = await wal.beginEpoch(epoch);
      } catch (error) {
        if (this.following !== undefined) this.emit('promotionFailed', error);
        throw error;
      }
      if (this.following !== undefined) {
        try {
          await view.caughtUp();
        } catch (error) {
          this.emit('promotionFailed', error);
          throw error;
        }
        this.following = undefined;
        this.emit('promoted');
      }
      return started;
    });
    this.promotion = run.catch(() => undefined);
    return run;
  }
}

/** What a promotion needs of the key-value view over the log (`StateKeeper`). */
export interface PromotedView {
  /** Throws the view's failure when it has stopped (the promotion is refused before anything changes). */
  check(): void;
  /** Resolves once the view has applied everything the log holds. */
  caughtUp(): Promise<void>;
}

const NO_VIEW: PromotedView = { check: () => undefined, caughtUp: async () => undefined };

/** How a follower lets the server stop it: its leader's address and the stop of its follow loop. */
export interface FollowingControl {
  /** The leader's address (HOST:PORT), named in `WAL_NOT_LEADER` and GetStats. */
  readonly leaderAddress: string;
  /**
   * Stops the follow loop for good; resolves once no frame will be appended any more. Throws when
   * the follower cannot be stopped now (the promotion is refused, the follower goes on).
   */
  stop(): Promise<void>;
}
