import { status as Status } from '@grpc/grpc-js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { memoryStorageBytesOf, storageKindOf, type StorageKindReport } from '../../engine/storage-options.js';
import type { RecoveryReport, WriteState } from '../../engine/types.js';
import type { Wal } from '../../engine/wal.js';
import type { StateKeeper, StateRecoveryReport } from '../../state/state-keeper.js';
import type { FollowerView } from '../followers/follower-registry.js';
import type { TailQueueBudget } from '../tail-queue-budget.js';
import { CounterCells, HistogramCells, type CounterCell, type HistogramCell } from './metric-cells.js';

/** What the gauges of {@link ServerMetrics} read at scrape time. */
export interface MetricSources {
  readonly wal: Wal;
  readonly state: StateKeeper;
  /** Open TailWal streams. */
  readonly tails: { readonly size: number };
  readonly tailQueueBudget: TailQueueBudget;
  /** Open AppendStream streams. */
  readonly appendStreams: { readonly size: number };
  /** The followers the server leads, with their lag (`FollowerRegistry`). */
  readonly followers: { list(): Promise<readonly FollowerView[]> };
}

/** The write states, each a series of `wald_write_state`. */
const WRITE_STATES: readonly WriteState[] = ['writable', 'disk-full', 'read-only'];

/** The storage kinds, each a series of `wald_storage`. */
const STORAGE_KIND_REPORTS: readonly StorageKindReport[] = ['disk', 'memory', 'other'];

/** The figures of an open kept as gauges. */
type RecoveryFigure =
  | 'durationSeconds'
  | 'segments'
  | 'records'
  | 'scannedBytes'
  | 'cutBytes'
  | 'faults'
  | 'stateDurationSeconds'
  | 'stateReplayedRecords';

/** Buckets of latencies, seconds: 50 us to 10 s. */
const LATENCY_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** Buckets of appends per group commit: powers of two up to the default `max_in_flight_appends`. */
const GROUP_COMMIT_APPEND_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** Buckets of bytes per group commit: 1 KiB to 64 MiB in steps of 4x. */
const GROUP_COMMIT_BYTE_BUCKETS = [1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];

/** Buckets of durations of snapshots and compactions, seconds: 10 ms to 10 min. */
const JOB_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600];

/** The cells of one metric (or of a few together), by RPC and status code, made at the first use of each pair and kept. */
class CellsByRpc<C> {
  /** By RPC name, then by status code (a small dense array: codes are 0 to 16). */
  private readonly byRpc = new Map<string, (C | undefined)[]>();

  constructor(private readonly make: (rpc: string, code: Status) => C) {}

  get(rpc: string, code: Status = Status.OK): C {
    let byCode = this.byRpc.get(rpc);
    if (byCode === undefined) {
      byCode = [];
      this.byRpc.set(rpc, byCode);
    }
    let cell = byCode[code];
    if (cell === undefined) {
      cell = this.make(rpc, code);
      byCode[code] = cell;
    }
    return cell;
  }
}

/** The cells an answered append adds to, for one RPC and status. */
interface AppendCells {
  readonly appends: CounterCell;
  readonly records: CounterCell;
  readonly duration: HistogramCell;
}

/** The name of a gRPC status code (`OK`, `INVALID_ARGUMENT`), the `outcome` label of wald's metrics. */
export function statusName(code: Status): string {
  return Status[code] ?? 'UNKNOWN';
}

/**
 * wald's Prometheus metrics, in a registry of their own (so that two servers in one process do not
 * share counters): what the RPCs did (calls, appends and records by RPC and outcome, latencies),
 * what the log did (group commits, fsync latency, segment rolls, I/O), what it holds now (segments,
 * bytes on disk, offsets, tails and their queued bytes, keys and memory of the key-value view, its
 * write state), its recovery, snapshots, compactions, authentication failures, and Node's process
 * metrics. Every name starts `wald_` (but Node's own, `process_*` and `nodejs_*`) and follows the
 * Prometheus conventions: counters end `_total`, units are base units named last (`_seconds`,
 * `_bytes`). docs/server.md lists them.
 *
 * What the server holds is read when the registry is scraped (gauges' `collect`), never updated on
 * the path of an append; what happens on that path is counted as it happens, in plain cells
 * (`metric-cells.ts`) found by a map lookup, so a count costs that lookup and an addition.
 */
export class ServerMetrics {
  /** The registry to scrape (`await registry.metrics()`); holds these metrics only. */
  readonly registry = new Registry();
  private sources: MetricSources | undefined;
  private readonly rpcs: CellsByRpc<CounterCell>;
  private readonly rpcDuration: CellsByRpc<HistogramCell>;
  private readonly appendCells: CellsByRpc<AppendCells>;
  private readonly fsyncDuration: HistogramCell;
  private readonly groupCommitAppends: HistogramCell;
  private readonly groupCommitBytes: HistogramCell;
  private readonly segmentRolls: Counter;
  private readonly writeStateChanges: Counter<'state'>;
  private readonly snapshots: Counter;
  private readonly snapshotDuration: Histogram;
  private readonly snapshotBytes: Counter;
  private readonly compactions: Counter;
  private readonly compactionDuration: Histogram;
  private readonly compactionSegments: Counter;
  private readonly compactionBytes: Counter;
  private readonly authFailures: Counter<'reason'>;
  private readonly tooManyPingsClosures: Counter;
  private readonly recovery: Readonly<Record<RecoveryFigure, Gauge>>;
  /** The follower listing of the scrape in progress: the follower gauges of one scrape share one. */
  private followerListing: Promise<readonly FollowerView[]> | undefined;

  constructor() {
    const registers = [this.registry];
    const byOutcome = (name: string, help: string): CellsByRpc<CounterCell> => {
      const counter = new CounterCells({ name, help, labelNames: ['rpc', 'outcome'], registers });
      return new CellsByRpc((rpc, code) => counter.cell({ rpc, outcome: statusName(code) }));
    };
    const latencyByRpc = (name: string, help: string): CellsByRpc<HistogramCell> => {
      const histogram = new HistogramCells({ name, help, labelNames: ['rpc'], registers }, LATENCY_BUCKETS_SECONDS);
      return new CellsByRpc((rpc) => histogram.cell({ rpc }));
    };
    const unlabelled = (name: string, help: string, buckets: readonly number[]): HistogramCell =>
      new HistogramCells({ name, help, labelNames: [], registers }, buckets).cell({});
    this.rpcs = byOutcome(
      'wald_rpcs_total',
      'WalService calls finished, by RPC and outcome (the gRPC status name); a stream counts once, when it ends',
    );
    this.rpcDuration = latencyByRpc(
      'wald_rpc_duration_seconds',
      'time from a unary call reaching its handler to its response or failure being sent, by RPC',
    );
    const appends = byOutcome('wald_appends_total', 'appends (batches) answered, by RPC (Append, AppendStream) and outcome');
    const appendRecords = byOutcome(
      'wald_append_records_total',
      'records in the appends answered, by RPC and outcome (for a failed append, the records it asked for)',
    );
    const appendDuration = latencyByRpc(
      'wald_append_duration_seconds',
      'time from an append reaching the server to its answer, by RPC (includes waiting for the group commit and its fsync)',
    );
    this.appendCells = new CellsByRpc((rpc, code) => ({
      appends: appends.get(rpc, code),
      records: appendRecords.get(rpc, code),
      duration: appendDuration.get(rpc),
    }));
    this.fsyncDuration = unlabelled('wald_fsync_duration_seconds', 'time of each fdatasync of the active segment', LATENCY_BUCKETS_SECONDS);
    this.groupCommitAppends = unlabelled(
      'wald_group_commit_appends',
      'appends written (and synced) together in one group commit',
      GROUP_COMMIT_APPEND_BUCKETS,
    );
    this.groupCommitBytes = unlabelled('wald_group_commit_bytes', 'frame bytes written in one group commit', GROUP_COMMIT_BYTE_BUCKETS);
    this.segmentRolls = new Counter({ name: 'wald_segment_rolls_total', help: 'active segments sealed and replaced by a new one', registers });
    this.writeStateChanges = new Counter({
      name: 'wald_write_state_changes_total',
      help: 'times the log entered a write state (disk-full, read-only, writable again)',
      labelNames: ['state'],
      registers,
    });
    this.snapshots = new Counter({ name: 'wald_snapshots_total', help: 'snapshots of the key-value view written', registers });
    this.snapshotDuration = new Histogram({
      name: 'wald_snapshot_duration_seconds',
      help: 'time to write one snapshot',
      buckets: JOB_BUCKETS_SECONDS,
      registers,
    });
    this.snapshotBytes = new Counter({ name: 'wald_snapshot_written_bytes_total', help: 'bytes of snapshot files written', registers });
    this.compactions = new Counter({ name: 'wald_compactions_total', help: 'compactions run', registers });
    this.compactionDuration = new Histogram({
      name: 'wald_compaction_duration_seconds',
      help: 'time of one compaction',
      buckets: JOB_BUCKETS_SECONDS,
      registers,
    });
    this.compactionSegments = new Counter({ name: 'wald_compaction_deleted_segments_total', help: 'segments deleted by compactions', registers });
    this.compactionBytes = new Counter({ name: 'wald_compaction_reclaimed_bytes_total', help: 'bytes of segments deleted by compactions', registers });
    this.authFailures = new Counter({
      name: 'wald_authentication_failures_total',
      help: 'calls refused for a missing, unknown or insufficient credential, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.tooManyPingsClosures = new Counter({
      name: 'wald_too_many_pings_total',
      help: 'connections closed with GOAWAY ENHANCE_YOUR_CALM too_many_pings (keepalive enforcement)',
      registers,
    });
    const figure = (name: string, help: string): Gauge => new Gauge({ name, help, registers });
    this.recovery = {
      durationSeconds: figure('wald_recovery_duration_seconds', 'time the log took to open and recover'),
      segments: figure('wald_recovery_segments', 'segments found at the open'),
      records: figure('wald_recovery_records', 'records in the log after recovery'),
      scannedBytes: figure('wald_recovery_scanned_bytes', 'bytes re-read and checked during the open'),
      cutBytes: figure('wald_recovery_cut_bytes', 'bytes cut from a torn tail at the open (0 after a clean stop)'),
      faults: figure('wald_recovery_faults', 'faults recovery classified (torn tails cut, ...)'),
      stateDurationSeconds: figure('wald_state_recovery_duration_seconds', 'time the key-value view took to load its snapshot and replay the log'),
      stateReplayedRecords: figure('wald_state_recovery_replayed_records', 'records of the log the key-value view replayed at the open'),
    };
    this.defineScrapedGauges(registers);
    // The process's metrics start with the first server, once.
    processRegistry();
  }

  /** The gauges read at scrape time from the {@link watch}ed sources. */
  private defineScrapedGauges(registers: Registry[]): void {
    const gauge = (name: string, help: string, read: (sources: MetricSources) => number): void => {
      const metrics = this;
      new Gauge({
        name,
        help,
        registers,
        collect() {
          if (metrics.sources !== undefined) this.set(read(metrics.sources));
        },
      });
    };
    const counter = (name: string, help: string, read: (sources: MetricSources) => number): void => {
      const metrics = this;
      new Counter({
        name,
        help,
        registers,
        collect() {
          if (metrics.sources !== undefined) {
            // The engine keeps the count; the counter shows it as it is at the scrape.
            this.reset();
            this.inc(read(metrics.sources));
          }
        },
      });
    };
    const stats = (sources: MetricSources) => sources.wal.stats();
    counter('wald_written_bytes_total', 'bytes written to segment files', (s) => stats(s).io.bytesWritten);
    counter('wald_read_bytes_total', 'bytes read from segment files', (s) => stats(s).io.bytesRead);
    counter('wald_writes_total', 'write calls to segment files', (s) => stats(s).io.writes);
    counter('wald_reads_total', 'read calls to segment files', (s) => stats(s).io.reads);
    counter('wald_fsyncs_total', 'fdatasync calls on segment files', (s) => stats(s).io.fsyncs);
    gauge('wald_segments', 'segment files of the log', (s) => stats(s).segmentCount);
    gauge('wald_disk_bytes', 'bytes of the log on disk (segments and their indexes)', (s) => stats(s).bytesOnDisk);
    gauge('wald_records', 'records retained in the log (from the first offset to the last written)', (s) => stats(s).recordCount);
    gauge('wald_high_watermark', 'the last durable offset, visible to readers (-1 while the log is empty)', (s) => s.wal.highWatermark);
    gauge('wald_first_offset', 'the first retained offset', (s) => s.wal.firstOffset);
    gauge('wald_next_offset', 'the offset the next appended record gets', (s) => s.wal.nextOffset);
    gauge('wald_tail_streams', 'TailWal streams open', (s) => s.tails.size);
    gauge('wald_tail_queue_bytes', 'message bytes all tails hold, waiting for their transports', (s) => s.tailQueueBudget.usedBytes);
    gauge('wald_append_streams', 'AppendStream streams open', (s) => s.appendStreams.size);
    gauge('wald_state_keys', 'keys in the key-value view', (s) => s.state.keyCount);
    gauge('wald_state_memory_bytes', 'memory of the key-value view, by its estimate', (s) => s.state.memoryBytes);
    gauge('wald_storage_memory_bytes', 'bytes the files of a memory storage hold (0 on disk)', (s) => memoryStorageBytesOf(s.wal.storage));
    const metrics = this;
    new Gauge({
      name: 'wald_storage',
      help: 'where the log lives: 1 for the current one of disk, memory, other',
      labelNames: ['storage'],
      registers,
      collect() {
        if (metrics.sources === undefined) return;
        const current = storageKindOf(metrics.sources.wal.storage);
        for (const storage of STORAGE_KIND_REPORTS) this.set({ storage }, storage === current ? 1 : 0);
      },
    });
    new Gauge({
      name: 'wald_write_state',
      help: 'the write state of the log: 1 for the current one of writable, disk-full, read-only',
      labelNames: ['state'],
      registers,
      collect() {
        if (metrics.sources === undefined) return;
        const current = metrics.sources.wal.stats().writeState;
        for (const state of WRITE_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    this.defineFollowerGauges(registers);
    new Gauge({
      name: 'wald_log_open',
      help: '1 while the log is open, 0 once it is closing or closed',
      registers,
      collect() {
        if (metrics.sources !== undefined) this.set(metrics.sources.wal.status === 'open' ? 1 : 0);
      },
    });
  }

  /**
   * The gauges of the followers, one series per follower id (those forgotten disappear): lag in
   * records, bytes and seconds (the ms of `FollowerInfo.lag_ms` in the base unit), and whether a
   * frames tail is open. The registry reads the timestamp of the first record a lagging follower
   * lacks, so the listing is async and shared by the four gauges of a scrape.
   */
  private defineFollowerGauges(registers: Registry[]): void {
    const metrics = this;
    const listing = (): Promise<readonly FollowerView[]> => {
      if (metrics.followerListing === undefined && metrics.sources !== undefined) {
        const pending = metrics.sources.followers.list().finally(() => {
          if (metrics.followerListing === pending) metrics.followerListing = undefined;
        });
        metrics.followerListing = pending;
      }
      return metrics.followerListing ?? Promise.resolve([]);
    };
    const perFollower = (name: string, help: string, read: (view: FollowerView) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['follower_id'],
        registers,
        async collect() {
          const views = await listing();
          this.reset();
          for (const view of views) this.set({ follower_id: view.followerId }, read(view));
        },
      });
    };
    perFollower('wald_follower_lag_records', 'records a follower lacks: the leader\'s next offset minus its durable next offset, by follower id', (v) => v.lagRecords);
    perFollower('wald_follower_lag_bytes', 'bytes of frames a follower lacks (an estimate from segment extents), by follower id', (v) => v.lagBytes);
    perFollower(
      'wald_follower_lag_seconds',
      'how far behind a follower is in time: now minus the timestamp of the first record it lacks (0 when it lacks none), by follower id',
      (v) => v.lagMs / 1000,
    );
    perFollower('wald_follower_connected', '1 while a follower has a frames-mode TailWal open, else 0, by follower id', (v) => (v.isConnected ? 1 : 0));
  }

  /** Where the scraped gauges read from: the server's log, view, tails and append streams. */
  watch(sources: MetricSources): void {
    this.sources = sources;
  }

  /** Records the figures of the open: the log's recovery report and the key-value view's. */
  recovered(report: RecoveryReport, stateReport: StateRecoveryReport | undefined): void {
    const { recovery } = this;
    recovery.durationSeconds.set(report.durationMs / 1000);
    recovery.segments.set(report.segments);
    recovery.records.set(report.records);
    recovery.scannedBytes.set(report.bytesScanned);
    recovery.cutBytes.set(report.bytesCut);
    recovery.faults.set(report.faults.length);
    if (stateReport !== undefined) {
      recovery.stateDurationSeconds.set(stateReport.durationMs / 1000);
      recovery.stateReplayedRecords.set(stateReport.recordsReplayed);
    }
  }

  /** Counts a finished call of `rpc` with status `code`; a unary call's `durationMs` goes to its histogram. */
  rpcFinished(rpc: string, code: Status, durationMs?: number): void {
    this.rpcs.get(rpc, code).value++;
    if (durationMs !== undefined) this.rpcDuration.get(rpc).observe(durationMs / 1000);
  }

  /** Counts an answered append of `records` records through `rpc`, with status `code`, after `durationMs`. */
  appendAnswered(rpc: string, records: number, code: Status, durationMs: number): void {
    const cells = this.appendCells.get(rpc, code);
    cells.appends.value++;
    cells.records.value += records;
    cells.duration.observe(durationMs / 1000);
  }

  /** Records a group commit of `appends` appends in `bytes` bytes of frames. */
  committed(appends: number, bytes: number): void {
    this.groupCommitAppends.observe(appends);
    this.groupCommitBytes.observe(bytes);
  }

  /** Records an fdatasync of `durationMs`. */
  synced(durationMs: number): void {
    this.fsyncDuration.observe(durationMs / 1000);
  }

  /** Counts a segment roll. */
  segmentRolled(): void {
    this.segmentRolls.inc();
  }

  /** Counts the log entering `state`. */
  writeStateEntered(state: WriteState): void {
    this.writeStateChanges.inc({ state });
  }

  /** Records a snapshot written in `durationMs`, of `bytes` bytes. */
  snapshotTaken(durationMs: number, bytes: number): void {
    this.snapshots.inc();
    this.snapshotDuration.observe(durationMs / 1000);
    this.snapshotBytes.inc(bytes);
  }

  /** Records a compaction of `durationMs` that deleted `segmentsDeleted` segments of `bytesReclaimed` bytes. */
  compactionRun(durationMs: number, segmentsDeleted: number, bytesReclaimed: number): void {
    this.compactions.inc();
    this.compactionDuration.observe(durationMs / 1000);
    this.compactionSegments.inc(segmentsDeleted);
    this.compactionBytes.inc(bytesReclaimed);
  }

  /** Counts a call refused for its credential; `reason` is the error code sent (`WAL_UNAUTHENTICATED`, ...). */
  authenticationFailed(reason: string): void {
    this.authFailures.inc({ reason });
  }

  /** Counts a connection closed for too many PINGs (`keepalive-enforcement.ts`). */
  tooManyPings(): void {
    this.tooManyPingsClosures.inc();
  }

  /** The exposition text of every metric, and its content type, as `/metrics` serves them. */
  async exposition(): Promise<{ text: string; contentType: string }> {
    return { text: (await this.registry.metrics()) + (await processRegistry().metrics()), contentType: this.registry.contentType };
  }
}

let processMetrics: Registry | undefined;

/**
 * The process's own metrics (CPU, memory, GC, event-loop delay: prom-client's defaults), collected
 * once per process into a registry of their own and served after each server's. Collected per
 * server, their GC observer and event-loop monitor (never stopped) held the server's registry,
 * whose gauges hold the server: every `WaldServer` stopped (a follower makes a new one after each
 * truncation or snapshot install) stayed in memory with its log and key-value view.
 */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}
