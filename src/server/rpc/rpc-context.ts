import type { Logger } from 'pino';
import type { Wal } from '../../engine/wal.js';
import type { Compactor } from '../../state/compactor.js';
import type { PointInTimeReplays } from '../../state/point-in-time-replays.js';
import type { StateKeeper } from '../../state/state-keeper.js';
import type { AppendStreamSession } from '../append-stream.js';
import type { FollowerRegistry } from '../followers/follower-registry.js';
import type { ReplicaAcks } from '../followers/replica-acks.js';
import type { ReportFollowerSession } from '../followers/report-follower-session.js';
import type { ServerEvents } from '../metrics/server-events.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { ReplicationState } from '../replication-state.js';
import type { ResolvedServerOptions } from '../server-options.js';
import type { StreamRegistry } from '../stream-registry.js';
import type { TailQueueBudget } from '../tail-queue-budget.js';
import type { TailStream } from '../tail-stream.js';
import type { SnapshotSendStream } from '../snapshot-send-stream.js';

/**
 * What every RPC handler works with: the log and its key-value view, the server's options and
 * logger, and the state shared by all calls. Handlers never see the server's lifecycle: whether a
 * call may run at all is decided before the handler is called, by `RpcAdmission`.
 */
export interface RpcContext {
  readonly wal: Wal;
  /** The key-value view kept over the log (Get, ListKeys, FlushAll, the cap on new keys). */
  readonly state: StateKeeper;
  /** Compaction of the log below a snapshot (Compact, DeleteSegmentsBefore, the automatic runs). */
  readonly compactor: Compactor;
  /** States at points in time (StateAt), built apart from the live view, at most `max_point_in_time_builds` at once. */
  readonly pointInTime: PointInTimeReplays;
  readonly options: ResolvedServerOptions;
  readonly logger: Logger;
  /** Open TailWal streams (`maxTailStreams`). */
  readonly tails: StreamRegistry<TailStream>;
  /** The bytes all tails together may hold (`maxTotalTailQueueBytes`). */
  readonly tailQueueBudget: TailQueueBudget;
  /** Open AppendStream streams (`maxAppendStreams`). */
  readonly appendStreams: StreamRegistry<AppendStreamSession>;
  /** Open GetSnapshot streams (`maxSnapshotStreams`). */
  readonly snapshotStreams: StreamRegistry<SnapshotSendStream>;
  /** The server's metrics, counted per call and per append; undefined when `metrics_listen` is off. */
  readonly metrics: ServerMetrics | undefined;
  /** The server's notable events (logged, and counted when metrics are on). */
  readonly events: ServerEvents;
  /** The followers this server leads: their reports, lag, leases, and the appends waiting for them (`min_replicas`). */
  readonly followers: FollowerRegistry;
  /** The wait of appends with `min_replicas` for their followers (Append, AppendStream). */
  readonly replicaAcks: ReplicaAcks;
  /** Open ReportFollower streams (`replication.max_followers`). */
  readonly followerReports: StreamRegistry<ReportFollowerSession>;
  /** The server's replication role: leader, or follower of a named leader (refusing writes). */
  readonly replication: ReplicationState;
}
