import { EventEmitter } from 'node:events';
import type { Wal } from '../../engine/wal.js';
import { WalError } from '../../errors.js';
import type { RetentionLease } from '../../state/retention-lease.js';
import { followerLagBytes } from './follower-lag.js';
import { ReplicaWaiters } from './replica-waiters.js';

/**
 * What the registry reads of the log: its ends, its segments (lag in bytes), its records'
 * timestamps (lag in ms), and its epoch history (which reported offsets hold its own records).
 */
export type FollowerLog = Pick<Wal, 'nextOffset' | 'firstOffset' | 'highWatermark' | 'listSegments' | 'read' | 'epoch' | 'epochEnd'>;

/** What a follower reports (one ReportFollower message). */
export interface FollowerReport {
  /** Every record below it is on the follower's disk. */
  readonly durableNextOffset: number;
  /** The address it serves on; empty: not given. */
  readonly address: string;
  /** The newest epoch of its log. */
  readonly epoch: number;
}

/** What the leader knows of one follower, with its lag computed now. */
export interface FollowerView {
  readonly followerId: string;
  /** The reported address, else the peer address of its last connection. */
  readonly address: string;
  readonly durableNextOffset: number;
  readonly epoch: number;
  /** The leader's next offset minus the follower's durable next offset (0 when ahead). */
  readonly lagRecords: number;
  /** Bytes of frames between the two, estimated from the segments' extents. */
  readonly lagBytes: number;
  /** The leader's time now minus the timestamp of the first record the follower lacks; 0 when it lacks none. */
  readonly lagMs: number;
  /** When its current connection (first of its report streams and frames tails) opened, ms; its last one's when none is open. */
  readonly connectedSinceMs: number;
  /** True while it has a frames-mode TailWal open. */
  readonly isConnected: boolean;
  /** When it last reported, ms; 0 when it never did. */
  readonly lastReportMs: number;
}

/** Events of a {@link FollowerRegistry}, for observers (logs, tests). */
export interface FollowerRegistryEvents {
  /** A report was taken in: the appends it completes are woken already. */
  report: [followerId: string, durableNextOffset: number];
  /** Its first stream or tail opened (none was open): from `peer`, asking for the log from `fromOffset`. */
  connected: [followerId: string, peer: string, fromOffset: number];
  /** Its last stream or tail closed, for `why`, after `connectedMs` connected. */
  disconnected: [followerId: string, why: string, connectedMs: number];
}

/** The limits of a {@link FollowerRegistry}. */
export interface FollowerRegistryOptions {
  /** Most followers tracked (`replication.max_followers`). */
  readonly maxFollowers: number;
  /** A follower with nothing open for longer is forgotten (`replication.follower_expiry_ms`). */
  readonly followerExpiryMs: number;
  /** The log's clock, ms (record timestamps come from it too, so lag in ms compares like with like). */
  readonly clock?: (() => number) | undefined;
}

interface FollowerEntry {
  readonly followerId: string;
  reportedAddress: string;
  peer: string;
  durableNextOffset: number;
  epoch: number;
  /** What `min_replicas` counts it for: its durable next offset as far as its epoch agrees with the log's (see `heldNextOffset`). */
  heldNextOffset: number;
  lastReportMs: number;
  connectedSinceMs: number;
  /** ReportFollower streams open under this id. */
  reportStreams: number;
  /** Frames-mode tails open under this id. */
  tails: number;
  /** When the last stream or tail closed (or it last reported), ms: what expiry counts from. */
  lastSeenMs: number;
  /** The timestamp of the record at `durableNextOffset`, once read: records never change. */
  lagTimestamp: { readonly offset: number; readonly timestampMs: number } | undefined;
}

/**
 * The leader's followers, by follower id: what each reported last (ReportFollower), whether it
 * tails (frames-mode TailWal), its lag, and the appends waiting for `min_replicas` of them. The
 * registry is bounded: at most `maxFollowers` entries; one with no stream or tail open for
 * `followerExpiryMs` is forgotten, and a new follower beyond the cap takes the place of the one
 * disconnected longest. The follower process is not needed to feed it: any client speaking
 * ReportFollower does.
 *
 * Each connected follower's durable next offset is also its retention lease ({@link leases}),
 * which compaction honours within its caps.
 */
export class FollowerRegistry extends EventEmitter<FollowerRegistryEvents> {
  private readonly entries = new Map<string, FollowerEntry>();
  private readonly waiters = new ReplicaWaiters();
  private readonly clock: () => number;

  constructor(
    private readonly log: FollowerLog,
    private readonly options: FollowerRegistryOptions,
  ) {
    super();
    this.clock = options.clock ?? Date.now;
  }

  /** Followers tracked now (after forgetting the expired). */
  get size(): number {
    this.expire();
    return this.entries.size;
  }

  /** Appends waiting for followers now. */
  get waitingAppends(): number {
    return this.waiters.size;
  }

  /**
   * A ReportFollower stream of `followerId` opened (at its first message), from `peer`.
   *
   * @throws WalError `WAL_TOO_MANY_STREAMS` (kind `followers`) when `maxFollowers` followers are
   *   tracked, all with a stream or tail open.
   */
  reportOpened(followerId: string, peer: string, fromOffset?: number): void {
    const entry = this.admit(followerId, peer, true)!;
    this.opened(entry, fromOffset);
    entry.reportStreams++;
  }

  /** A ReportFollower stream of `followerId` ended, for `why` (logged when it was its last). */
  reportClosed(followerId: string, why = 'report stream ended'): void {
    const entry = this.entries.get(followerId);
    if (entry === undefined) return;
    entry.reportStreams = Math.max(0, entry.reportStreams - 1);
    this.closed(entry, why);
  }

  /**
   * `followerId` reported what it holds (after {@link reportOpened}). Wakes the appends its new
   * durable next offset completes. A lower offset than before is taken as it is (the follower cut
   * a divergent suffix): the truth, not a regression to refuse.
   */
  report(followerId: string, report: FollowerReport): void {
    const entry = this.entries.get(followerId);
    if (entry === undefined) return;
    const before = entry.heldNextOffset;
    entry.durableNextOffset = report.durableNextOffset;
    entry.epoch = report.epoch;
    entry.heldNextOffset = this.heldNextOffset(report);
    if (report.address !== '') entry.reportedAddress = report.address;
    entry.lastReportMs = this.clock();
    entry.lastSeenMs = entry.lastReportMs;
    this.waiters.moved(before, entry.heldNextOffset);
    this.emit('report', followerId, report.durableNextOffset);
  }

  /**
   * A frames-mode TailWal naming `followerId` opened, from `peer`: the follower counts as
   * connected until {@link tailClosed}. Returns false when the registry is full of connected
   * followers (the tail is served anyway, only not listed).
   */
  tailOpened(followerId: string, peer: string, fromOffset?: number): boolean {
    const entry = this.admit(followerId, peer, false);
    if (entry === undefined) return false;
    this.opened(entry, fromOffset);
    entry.tails++;
    return true;
  }

  /** A frames-mode TailWal of `followerId` ended, for `why` (logged when it was its last). */
  tailClosed(followerId: string, why = 'tail ended'): void {
    const entry = this.entries.get(followerId);
    if (entry === undefined) return;
    entry.tails = Math.max(0, entry.tails - 1);
    this.closed(entry, why);
  }

  /** Before a stream or tail of `entry` counts: its first one makes it connected (`connected`). */
  private opened(entry: FollowerEntry, fromOffset: number | undefined): void {
    if (entry.reportStreams + entry.tails > 0) return;
    entry.connectedSinceMs = this.clock();
    this.emit('connected', entry.followerId, entry.peer, fromOffset ?? entry.durableNextOffset);
  }

  /** After a stream or tail of `entry` stopped counting: its last one makes it disconnected (`disconnected`). */
  private closed(entry: FollowerEntry, why: string): void {
    entry.lastSeenMs = this.clock();
    if (entry.reportStreams + entry.tails > 0) return;
    this.emit('disconnected', entry.followerId, why, entry.lastSeenMs - entry.connectedSinceMs);
  }

  /**
   * Followers that hold this log's records up to `lastOffset` durably: whose durable next offset is
   * above it, counted only as far as their epoch agrees with this log's history (see
   * {@link heldNextOffset}).
   */
  replicasOf(lastOffset: number): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.heldNextOffset > lastOffset) count++;
    return count;
  }

  /**
   * The offset below which a follower's durable records are this log's, by its reported epoch: its
   * durable next offset, but no further than where that epoch ends in this log (`Wal.epochEnd`),
   * and 0 when this log's history does not hold that epoch (the follower's newest records were
   * written by a leader this log never followed, or by a newer leader than this one: a stale
   * leader's appends must not be acknowledged by the new leader's followers). A follower that still
   * holds an old epoch's records beyond its end here (it has not truncated its divergent suffix
   * yet) therefore counts only for what lies below that end: the records of this log's newer
   * epochs, which every waiting append is in, are not on it. A follower in this log's current
   * epoch counts for all it reported.
   */
  private heldNextOffset(report: FollowerReport): number {
    if (report.epoch === this.log.epoch) return report.durableNextOffset;
    const end = this.log.epochEnd(report.epoch);
    return end.epoch === report.epoch ? Math.min(report.durableNextOffset, end.endOffset) : 0;
  }

  /**
   * Resolves once `needed` followers hold every record up to `lastOffset`, with how many do; or,
   * when `signal` aborts first, with how many did. Woken by reports, never polling. Never rejects.
   */
  waitForReplicas(lastOffset: number, needed: number, signal: AbortSignal): Promise<number> {
    return this.waiters.wait(lastOffset, needed, this.replicasOf(lastOffset), signal);
  }

  /**
   * One retention lease per connected follower (a report stream or a frames tail open): it needs
   * the log from its durable next offset on. A follower that went away holds none, so that a
   * compaction may pass it (it installs a snapshot when it comes back), as the issue asks of
   * leases: they protect followers that are there, within their caps.
   */
  leases(): RetentionLease[] {
    this.expire();
    const connected = [...this.entries.values()].filter((entry) => entry.reportStreams + entry.tails > 0);
    return connected.map((entry) => ({ holder: entry.followerId, fromOffset: entry.durableNextOffset }));
  }

  /**
   * Every follower tracked, by id, with its lag now. Reads the timestamp of the first record each
   * lagging follower lacks (once per offset: records never change); a record no longer retained
   * counts from the first retained one.
   */
  async list(): Promise<FollowerView[]> {
    this.expire();
    const now = this.clock();
    const nextOffset = this.log.nextOffset;
    const segments = this.log.listSegments();
    const entries = [...this.entries.values()].sort((a, b) => (a.followerId < b.followerId ? -1 : a.followerId > b.followerId ? 1 : 0));
    const views: FollowerView[] = [];
    for (const entry of entries) {
      const lagRecords = Math.max(0, nextOffset - entry.durableNextOffset);
      const lagTimestamp = lagRecords === 0 ? undefined : await this.timestampAt(entry);
      views.push({
        followerId: entry.followerId,
        address: entry.reportedAddress !== '' ? entry.reportedAddress : entry.peer,
        durableNextOffset: entry.durableNextOffset,
        epoch: entry.epoch,
        lagRecords,
        lagBytes: followerLagBytes(segments, entry.durableNextOffset),
        lagMs: lagTimestamp === undefined ? 0 : Math.max(0, now - lagTimestamp),
        connectedSinceMs: entry.connectedSinceMs,
        isConnected: entry.tails > 0,
        lastReportMs: entry.lastReportMs,
      });
    }
    return views;
  }

  /** The timestamp of the first record `entry` lacks; undefined when it is not durable here yet (just appended). */
  private async timestampAt(entry: FollowerEntry): Promise<number | undefined> {
    const offset = Math.max(entry.durableNextOffset, this.log.firstOffset);
    if (entry.lagTimestamp?.offset === offset) return entry.lagTimestamp.timestampMs;
    if (offset > this.log.highWatermark) return undefined;
    try {
      const [record] = await this.log.read(offset, { limit: 1 });
      if (record === undefined) return undefined;
      entry.lagTimestamp = { offset, timestampMs: record.timestamp };
      return record.timestamp;
    } catch {
      // Compacted or closed under the read: the lag in ms is unknown this time, not an error of the listing.
      return undefined;
    }
  }

  /** The entry of `followerId`, made when new; a full registry makes room by forgetting the follower disconnected longest. */
  private admit(followerId: string, peer: string, mustTrack: boolean): FollowerEntry | undefined {
    this.expire();
    const known = this.entries.get(followerId);
    if (known !== undefined) {
      known.peer = peer;
      return known;
    }
    if (this.entries.size >= this.options.maxFollowers && !this.evictOne()) {
      if (!mustTrack) return undefined;
      const limit = this.options.maxFollowers;
      throw new WalError('WAL_TOO_MANY_STREAMS', `${limit} followers are connected already (replication.max_followers)`, {
        kind: 'followers',
        limit,
        configKey: 'replication.max_followers',
      });
    }
    const now = this.clock();
    const entry: FollowerEntry = {
      followerId,
      reportedAddress: '',
      peer,
      durableNextOffset: 0,
      epoch: 0,
      heldNextOffset: 0,
      lastReportMs: 0,
      connectedSinceMs: now,
      reportStreams: 0,
      tails: 0,
      lastSeenMs: now,
      lagTimestamp: undefined,
    };
    this.entries.set(followerId, entry);
    return entry;
  }

  /** Forgets the follower with nothing open seen least recently; false when every one has something open. */
  private evictOne(): boolean {
    let oldest: FollowerEntry | undefined;
    for (const entry of this.entries.values()) {
      if (entry.reportStreams + entry.tails > 0) continue;
      if (oldest === undefined || entry.lastSeenMs < oldest.lastSeenMs) oldest = entry;
    }
    if (oldest === undefined) return false;
    this.forget(oldest);
    return true;
  }

  /** Forgets the followers with nothing open for longer than `followerExpiryMs`. */
  private expire(): void {
    const before = this.clock() - this.options.followerExpiryMs;
    for (const entry of [...this.entries.values()]) {
      if (entry.reportStreams + entry.tails === 0 && entry.lastSeenMs < before) this.forget(entry);
    }
  }

  private forget(entry: FollowerEntry): void {
    this.entries.delete(entry.followerId);
    // Waiting appends count tracked followers only, as replicasOf does.
    this.waiters.moved(entry.heldNextOffset, 0);
  }
}
