import { EventEmitter } from 'node:events';
import { WalError } from '../errors.js';

/** What a server does in replication: accept appends (`leader`) or copy another's log (`follower`). */
export type ReplicationRoleName = 'leader' | 'follower';

/** Events of a {@link ReplicationState}. */
export interface ReplicationStateEvents {
  /** The server became the leader (a follower was promoted): it takes writes from now on. */
  promoted: [];
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
   * Stops following (on a follower; nothing on a leader), so that the caller can start the new
   * epoch on a log nothing else writes to; then {@link becomeLeader}.
   */
  async stopFollowing(): Promise<void> {
    await this.following?.stop();
  }

  /** Marks the server a leader (after its new epoch is durable); emits `promoted` when it was a follower. */
  becomeLeader(): void {
    if (this.following === undefined) return;
    this.following = undefined;
    this.emit('promoted');
  }
}

/** How a follower lets the server stop it: its leader's address and the stop of its follow loop. */
export interface FollowingControl {
  /** The leader's address (HOST:PORT), named in `WAL_NOT_LEADER` and GetStats. */
  readonly leaderAddress: string;
  /** Stops the follow loop for good; resolves once no frame will be appended any more. */
  stop(): Promise<void>;
}
