import { hostname } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { ChannelCredentials, Interceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { decodeSegmentHeader } from '../codec/segment-header.js';
import { openStorage } from '../engine/storage-options.js';
import { parseSegmentFileName } from '../engine/segment-name.js';
import { truncateLogFrom } from '../engine/truncate-log-from.js';
import type { EpochStart } from '../codec/epoch-history-file.js';
import type { WalOptions } from '../engine/wal-options.js';
import { backoffDelayMs } from '../client/backoff.js';
import { isServiceError } from '../client/rpc-error-info.js';
import { isWalError, WalError } from '../errors.js';
import type { TailWalResponse } from '../gen/wald/v1/tail.js';
import { ReplicationState } from '../server/replication-state.js';
import type { ServerOptions } from '../server/server-options.js';
import { WaldServer } from '../server/wald-server.js';
import { listSnapshots } from '../state/snapshot-reader.js';
import { cutStrandingView, setAsideSnapshotsAbove } from '../state/snapshots-set-aside.js';
import { DEFAULT_SNAPSHOT_DIR, snapshotDirOf } from '../state/state-options.js';
import type { Storage } from '../storage/storage.js';
import { sleep } from './abortable-sleep.js';
import { Follower, type FollowOutcome } from './follower.js';
import type { FollowerOptionValues } from './follower-options.js';
import { LeaderChannel } from './leader-channel.js';
import { installLeaderSnapshot, resumeSnapshotInstall } from './snapshot-install.js';

/** Largest TailWal message a follower accepts: its own ask, or one frame up to the leader's largest batch, with room for the fields. */
export const MAX_RECEIVE_MESSAGE_BYTES = 80 * 1024 * 1024;

/**
 * The follower's HTTP/2 receive window, in messages of `replication.max_batch_bytes`: enough for
 * the leader to stream while the follower appends, bounded with the rest of what it buffers.
 */
export const FLOW_CONTROL_WINDOW_BATCHES = 4;

/** What a {@link FollowerNode} is made of. */
export interface FollowerNodeInit {
  /** The follower's log (`dir` and the engine's options). */
  readonly walOptions: WalOptions;
  /** The server's options; `listen` is bound once and kept across the restarts of the server. */
  readonly serverOptions: ServerOptions;
  /** `follow` must be set. */
  readonly follower: FollowerOptionValues;
  /** How to reach the leader: plaintext or TLS (see `replication.tls*`). */
  readonly credentials: ChannelCredentials;
  /** The bearer token interceptor, when the leader asks for a token. */
  readonly interceptors?: readonly Interceptor[] | undefined;
  readonly logger: Logger;
}

/**
 * A follower server (`wald serve --follow HOST:PORT`): a {@link WaldServer} over the follower's log,
 * read-only while it follows (its {@link ReplicationState} names the leader), and the
 * {@link Follower} loop that keeps the log a copy of the leader's.
 *
 * Work that needs the log closed is done between two servers: when the follow loop finds that the
 * log holds records beyond the leader's history (divergence) it stops the server, truncates them
 * into a side file (`truncateLogFrom`; snapshots above the cut are moved aside with them), and
 * starts a new server on the same port; when the leader has compacted past the log it does the same
 * around a snapshot install ({@link installLeaderSnapshot}). Clients of the follower see
 * `UNAVAILABLE` meanwhile and retry, as after any restart.
 *
 * An offline step that fails on the leader's side (a gRPC error: the leader went away, compacted
 * further, no longer holds the snapshot) is given up: the node waits (backoff), reopens the old
 * log and follows again, which finds the work to do anew.
 *
 * Promotion (`Promote`, `wald promote`) stops the loop and leaves the server running as a leader.
 * A frame refused, a log that cannot be written, or a promotion whose epoch cannot be begun once
 * the loop stopped stops the node: {@link failed} rejects with the error, and `wald serve` exits.
 */
export class FollowerNode {
  private current: WaldServer | undefined;
  private follower: Follower | undefined;
  private listen: string;
  private isStopping = false;
  /** True from the moment the cycle decided on offline work until the next server opens: a promotion is refused then. */
  private isOffline = false;
  /** Wakes the wait between a failed offline step and the next attempt when the node stops. */
  private readonly stopping = new AbortController();
  /** The cycle of servers and follow loops; {@link stop} resolves only once it is over. */
  private cycling: Promise<void> = Promise.resolve();
  private readonly replication: ReplicationState;
  private readonly channel: LeaderChannel;
  private readonly storage: Storage;
  private readonly logger: Logger;
  private readonly cycleDone: Promise<void>;
  private started: (() => void) | undefined;
  private startFailed: ((error: unknown) => void) | undefined;
  /** Rejects when the node stopped for good on an error (a refused frame, a failed write). */
  readonly failed: Promise<never>;
  private fail: (error: unknown) => void = () => {};

  private constructor(private readonly init: FollowerNodeInit) {
    const leader = init.follower.follow;
    if (leader === undefined) throw new RangeError('follower.follow must be set');
    this.logger = init.logger;
    // One instance for every reopen: a memory storage's files live in it.
    this.storage = openStorage(init.walOptions.storage);
    this.listen = init.serverOptions.listen ?? '127.0.0.1:7070';
    this.replication = new ReplicationState({ leaderAddress: leader, stop: () => this.stopFollowing() });
    // The follow loop was stopped for a promotion that then failed: the node neither follows nor leads.
    this.replication.on('promotionFailed', (error) => {
      this.logger.fatal({ err: error }, 'promotion failed after following stopped: this server neither follows nor leads; fix the cause and restart it');
      this.fail(new Error(`promotion failed after following stopped (the server neither follows nor leads): ${(error as Error).message}`, { cause: error }));
    });
    const r = init.follower.replication;
    this.channel = new LeaderChannel({
      address: leader,
      credentials: init.credentials,
      interceptors: init.interceptors,
      tlsServerName: r.tlsServerName,
      keepaliveTimeMs: r.keepaliveTimeMs,
      keepaliveTimeoutMs: r.keepaliveTimeoutMs,
      maxReceiveMessageBytes: MAX_RECEIVE_MESSAGE_BYTES,
      flowControlWindowBytes: FLOW_CONTROL_WINDOW_BATCHES * r.maxBatchBytes,
    });
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    // Observed by whoever awaits it; without a listener a failure here would be unhandled.
    this.failed.catch(() => undefined);
    this.cycleDone = new Promise<void>((resolve, reject) => {
      this.started = resolve;
      this.startFailed = reject;
    });
  }

  /**
   * Finishes an interrupted snapshot install, opens the follower's log and serves it, and starts
   * following; resolves once the server listens.
   *
   * @throws the errors of `WaldServer.open` and `start`.
   */
  static async start(init: FollowerNodeInit): Promise<FollowerNode> {
    const node = new FollowerNode(init);
    const resumed = await resumeSnapshotInstall(node.storage, init.walOptions.dir, node.snapshotDir);
    if (resumed !== undefined) node.logger.warn({ snapshotId: resumed }, 'replication: finished a snapshot install a crash interrupted');
    node.cycling = node.cycle();
    await node.cycleDone;
    return node;
  }

  /** The server serving the follower's log now (a new one after each truncation or install). */
  get server(): WaldServer {
    return this.current!;
  }

  /** The follower's name, as its leader lists it. */
  get followerId(): string {
    return this.init.follower.followerId ?? `${hostname()}:${resolvePath(this.init.walOptions.dir)}`;
  }

  /** The follow loop now (undefined between two servers, and once promoted). */
  get activeFollower(): Follower | undefined {
    return this.follower;
  }

  private async cycle(): Promise<void> {
    let isFirst = true;
    let offlineFailures = 0;
    try {
      while (!this.isStopping) {
        const server = await this.openServer();
        if (this.isStopping) {
          // stop() came while the server opened: it found no server to stop.
          this.current = undefined;
          await server.stop();
          return;
        }
        if (isFirst) {
          isFirst = false;
          this.started?.();
        }
        if (this.replication.role === 'leader') return;
        const follower = new Follower(
          server.wal,
          this.channel,
          this.replication,
          { followerId: this.followerId, address: this.listen },
          {
            maxBatchBytes: this.init.follower.replication.maxBatchBytes,
            initialBackoffMs: this.init.follower.replication.initialBackoffMs,
            maxBackoffMs: this.init.follower.replication.maxBackoffMs,
          },
          this.logger,
        );
        this.follower = follower;
        let outcome: FollowOutcome;
        try {
          outcome = await follower.run();
        } finally {
          this.follower = undefined;
        }
        // Stopped (a shutdown or a promotion), or promoted already: the log is the leader's now,
        // whatever the loop found, and is neither truncated nor replaced.
        if (outcome.kind === 'stopped' || this.replication.leaderAddress === undefined) return;
        this.isOffline = true;
        this.current = undefined;
        try {
          await server.stop();
          await this.offlineWork(outcome);
          offlineFailures = 0;
        } catch (error) {
          if (this.isStopping || !isLeaderSideFailure(error)) throw error;
          // The leader went away or moved on (compacted further, dropped the snapshot): the old log
          // is as it was until an install is staged, so follow again; the outcome is found anew.
          const r = this.init.follower.replication;
          const delayMs = backoffDelayMs(offlineFailures++, r.initialBackoffMs, r.maxBackoffMs);
          this.logger.warn({ err: error, leader: this.channel.address, step: outcome.kind, retryInMs: delayMs }, 'replication: an offline step failed on the leader\'s side; following again');
          await sleep(delayMs, this.stopping.signal);
        } finally {
          this.isOffline = false;
        }
      }
    } catch (error) {
      if (isFirst) {
        this.startFailed?.(error);
        return;
      }
      // stop() closed the channel under an offline step (a snapshot install waiting for the leader).
      if (this.isStopping) return;
      this.logger.fatal({ err: error, leader: this.channel.address }, 'replication stopped: this follower does not write what it cannot check; fix the cause and restart it');
      this.fail(error);
    }
  }

  private async openServer(): Promise<WaldServer> {
    const { server } = await WaldServer.open(this.init.walOptions, { ...this.init.serverOptions, listen: this.listen }, this.logger, this.replication);
    try {
      const port = await server.start();
      // Restarts bind the port the first start took (the configured one may be 0).
      this.listen = `${this.listen.slice(0, this.listen.lastIndexOf(':'))}:${port}`;
    } catch (error) {
      await server.stop();
      throw error;
    }
    this.current = server;
    return server;
  }

  /** The follower's snapshot directory (`state.snapshot_dir`, resolved against the data directory). */
  private get snapshotDir(): string {
    return snapshotDirOf(this.init.walOptions.dir, this.init.serverOptions.state?.snapshotDir ?? DEFAULT_SNAPSHOT_DIR);
  }

  /** Truncates the divergent records, or installs the leader's snapshot, on the closed log. */
  private async offlineWork(outcome: Exclude<FollowOutcome, { kind: 'stopped' }>): Promise<void> {
    const dir = this.init.walOptions.dir;
    if (outcome.kind === 'truncate') {
      checkDivergenceCut(this.storage, dir, this.snapshotDir, outcome.offset);
      // Snapshots first: a crash between the two steps leaves the divergent records in the log,
      // which the next start finds and cuts again. The other order would leave a cut log with a
      // snapshot of the divergent state, skipped only until the log grows past it again.
      const moved = setAsideSnapshotsAbove(this.storage, this.snapshotDir, outcome.offset).length;
      const report = truncateLogFrom(this.storage, dir, outcome.offset);
      const sideFile = report.sideFile === undefined ? undefined : join(dir, report.sideFile);
      this.logger.warn(
        { offset: outcome.offset, leaderEpoch: outcome.leaderEpoch, removedRecords: report.removedRecords, sideFile, snapshotsMoved: moved },
        'replication: truncated records the leader does not hold (kept in the side file)',
      );
      return;
    }
    const identity = await this.leaderIdentity(outcome.snapshotOffset);
    const installed = await installLeaderSnapshot(this.channel, this.storage, dir, outcome.snapshotId, identity, this.logger, this.snapshotDir);
    this.logger.warn({ ...installed, leaderFirstOffset: outcome.leaderFirstOffset }, 'replication: the leader compacted past this follower: installed its snapshot');
  }

  /**
   * The leader's frame seed (from the header of its segment at `offset`, sent with the first frames
   * of a tail, or with its first heartbeat when the leader holds nothing at `offset` yet: an idle
   * leader whose snapshot is at its head) and the part of its epoch history up to `offset`, for a
   * log that starts there. A leader that sends no header on a heartbeat (older, or its segment is
   * of format version 1, seed 0) is waited for until it has a frame at `offset`.
   */
  private async leaderIdentity(offset: number): Promise<{ frameSeed: number; epochHistory: EpochStart[] }> {
    const stats = await this.channel.getStats();
    const epochHistory = stats.epochHistory
      .map((entry) => ({ epoch: Number(entry.epoch), startOffset: Number(entry.startOffset) }))
      .filter((entry) => entry.startOffset <= offset);
    const call = this.channel.tailFrames(offset, 64 * 1024, this.followerId);
    try {
      for await (const message of call as AsyncIterable<TailWalResponse>) {
        if (message.frames.length === 0 && message.segmentHeader.length === 0) continue;
        const decoded = decodeSegmentHeader(message.segmentHeader);
        if (!decoded.ok) break;
        if (message.frames.length === 0 && decoded.header.frameSeed === 0) continue;
        return { frameSeed: decoded.header.frameSeed, epochHistory };
      }
    } finally {
      call.cancel();
    }
    throw new WalError('WAL_CORRUPTION', `the leader sent no segment header with its frames at offset ${offset}`, { offset, reason: 'no segment header' });
  }

  /**
   * The promotion's stop of the follow loop. Refused while the cycle does offline work (the server
   * stops, the log is truncated or replaced): the promotion would begin its epoch on a log about to change.
   *
   * @throws WalError `WAL_SHUTTING_DOWN` then (the client retries once the next server serves).
   */
  private async stopFollowing(): Promise<void> {
    if (this.isOffline) {
      throw new WalError('WAL_SHUTTING_DOWN', 'this follower is restarting its server to truncate or replace its log; promote it once it serves again', {});
    }
    await this.follower?.stop();
  }

  /**
   * Stops following and the server (gracefully: see `WaldServer.stop`); resolves once the cycle is
   * over, so that no server opens afterwards.
   */
  async stop(): Promise<void> {
    this.isStopping = true;
    this.stopping.abort();
    await this.follower?.stop();
    await this.current?.stop();
    this.channel.close();
    await this.cycling;
  }
}

/**
 * Whether `error`, from an offline step, came from the leader's side (a gRPC status: the leader
 * is down, compacted past the snapshot, or no longer holds it) and is worth another attempt,
 * rather than a local fault (the disk, a corrupt file), which stops the follower.
 */
function isLeaderSideFailure(error: unknown): boolean {
  return isServiceError(error) || isWalError(error, 'WAL_SNAPSHOT_NOT_FOUND');
}

/**
 * Refuses a divergence cut at `offset` that would leave a data directory the server cannot open,
 * before anything is changed: below the log's first offset (this node compacted while it led, past
 * where its history left the leader's), or in a compacted log below every snapshot that reaches
 * its first offset (moving them aside would leave no way to rebuild the key-value view: the rule
 * `wald repair` applies). The node then stops, its directory as it was.
 *
 * @throws WalError `WAL_OFFSET_COMPACTED` (details `truncateAt`, `firstOffset`, `minTruncateAt` when a snapshot sets it).
 */
function checkDivergenceCut(storage: Storage, dir: string, snapshotDir: string, offset: number): void {
  const bases = storage.list(dir).map(parseSegmentFileName).filter((base): base is number => base !== undefined);
  const firstOffset = bases.length === 0 ? 0 : Math.min(...bases);
  const remedy = 'nothing was changed; start this follower on an empty data directory to copy the leader afresh';
  if (offset < firstOffset) {
    throw new WalError('WAL_OFFSET_COMPACTED', `this log leaves the leader's history at offset ${offset}, below its first retained offset ${firstOffset} (it compacted while it led): ${remedy}`, { truncateAt: offset, firstOffset });
  }
  const minTruncateAt = cutStrandingView(listSnapshots(storage, snapshotDir).snapshots, firstOffset, offset);
  if (minTruncateAt !== undefined) {
    throw new WalError(
      'WAL_OFFSET_COMPACTED',
      `this log leaves the leader's history at offset ${offset}, below every snapshot that reaches its first offset ${firstOffset} (the lowest is at ${minTruncateAt}): cut there, its key-value view could not be rebuilt; ${remedy}`,
      { truncateAt: offset, firstOffset, minTruncateAt },
    );
  }
}
