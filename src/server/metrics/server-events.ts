import type { Logger } from 'pino';
import type { RecoveryReport, WriteState } from '../../engine/types.js';
import type { WalObserver } from '../../engine/wal-observer.js';
import type { StateRecoveryReport } from '../../state/state-keeper.js';
import type { ServerMetrics } from './server-metrics.js';

/** What a snapshot did, as {@link ServerEvents.snapshotTaken} reports it. */
export interface SnapshotEvent {
  /** The snapshot's id (its file name's stem). */
  readonly id: string;
  /** The offset the snapshot holds the state as of (its next offset). */
  readonly walOffset: number;
  readonly durationMs: number;
  /** Bytes of the snapshot file written. */
  readonly bytes: number;
}

/** What a compaction did, as {@link ServerEvents.compactionRun} reports it. */
export interface CompactionEvent {
  readonly durationMs: number;
  readonly segmentsDeleted: number;
  /** Bytes of the segments (and their indexes) deleted. */
  readonly bytesReclaimed: number;
  /** The log's first retained offset afterwards. */
  readonly firstOffset: number;
}

/** The log line of each write state the log enters, and its level. */
const WRITE_STATE_LINES: Readonly<Record<WriteState, { level: 'info' | 'warn' | 'error'; message: string }>> = {
  'disk-full': { level: 'warn', message: 'disk full: appends are refused until space returns' },
  writable: { level: 'info', message: 'space returned: appends are accepted again' },
  'read-only': { level: 'error', message: 'the log is read-only after a failed write or fsync: restart the server to recover' },
};

/**
 * The server's notable events, each logged once (a JSON line) and counted in the metrics when
 * they are on: segment rolls and write-state changes (as the engine's {@link WalObserver}),
 * recovery, snapshots, compactions and failed authentications (reported by the code that does
 * them: call the method where the work ends). Group commits and fsyncs are only counted, never
 * logged; with metrics off the engine is not even asked to time them.
 */
export class ServerEvents {
  constructor(
    private readonly logger: Logger,
    /** The metrics to count in; undefined when metrics are off. */
    readonly metrics: ServerMetrics | undefined,
  ) {}

  /** The observer to open the log with (`WalOptions.observer`). */
  walObserver(): WalObserver {
    const { logger, metrics } = this;
    const observer: WalObserver = {
      onSegmentRoll: (sealed, created, baseOffset) => {
        logger.info({ sealed, created, baseOffset }, 'segment rolled');
        metrics?.segmentRolled();
      },
      onWriteStateChange: (state, previous) => {
        const line = WRITE_STATE_LINES[state];
        logger[line.level]({ writeState: state, previous }, line.message);
        metrics?.writeStateEntered(state);
      },
    };
    if (metrics !== undefined) {
      observer.onCommit = (appends, _records, bytes) => metrics.committed(appends, bytes);
      observer.onSync = (durationMs) => metrics.synced(durationMs);
    }
    return observer;
  }

  /** Records the figures of the open (the log's and the key-value view's recovery reports). */
  recovered(report: RecoveryReport, stateReport: StateRecoveryReport | undefined): void {
    this.metrics?.recovered(report, stateReport);
  }

  /** Logs and counts a snapshot written. */
  snapshotTaken(event: SnapshotEvent): void {
    this.logger.info({ ...event }, 'snapshot written');
    this.metrics?.snapshotTaken(event.durationMs, event.bytes);
  }

  /** Logs and counts a compaction run. */
  compactionRun(event: CompactionEvent): void {
    this.logger.info({ ...event }, 'compaction done');
    this.metrics?.compactionRun(event.durationMs, event.segmentsDeleted, event.bytesReclaimed);
  }
}
