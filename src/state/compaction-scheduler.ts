import { EventEmitter } from 'node:events';
import type { Wal } from '../engine/wal.js';
import type { CompactionOptionValues, CompactionResult, Compactor } from './compactor.js';
import type { StateKeeper } from './state-keeper.js';

/** Why an automatic compaction ran: the threshold that was reached. */
export type CompactionTrigger = 'events' | 'size';

/** One automatic compaction: why it ran, the figures it saw, and what it did. */
export interface AutoCompaction {
  readonly trigger: CompactionTrigger;
  /** Records after the newest snapshot when it started. */
  readonly recordsSinceSnapshot: number;
  /** Bytes of segment files when it started. */
  readonly logBytes: number;
  readonly result: CompactionResult;
}

/** Events of a {@link CompactionScheduler}. */
export interface CompactionSchedulerEvents {
  /** An automatic compaction finished. */
  compacted: [run: AutoCompaction];
  /** An automatic compaction failed; the scheduler goes on checking. */
  failed: [error: unknown, trigger: CompactionTrigger];
}

/** What {@link CompactionScheduler} works with. */
export interface CompactionSchedulerInit {
  readonly wal: Wal;
  readonly state: StateKeeper;
  readonly compactor: Compactor;
  readonly options: CompactionOptionValues;
  /** Clock in ms for the minimum interval (the compactor's clock should be the same); tests inject one. */
  readonly clock?: (() => number) | undefined;
}

/**
 * Automatic compaction (`compaction.enabled`): every `check_interval_ms` it checks the thresholds
 * and runs `Compactor.compact` when the records after the newest snapshot reach
 * `events_threshold`, or the segment files reach `size_threshold_bytes` and a compaction would
 * delete some of them (retention may keep them all) -- never sooner than `min_interval_ms` after
 * the start of the last compaction (automatic or asked for). A run's figures go out as a
 * `compacted` event, a failure as `failed`; neither stops the checks. {@link check} runs one
 * check now (tests call it with an injected clock instead of waiting for the timer).
 */
export class CompactionScheduler extends EventEmitter<CompactionSchedulerEvents> {
  private readonly wal: Wal;
  private readonly state: StateKeeper;
  private readonly compactor: Compactor;
  private readonly options: CompactionOptionValues;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<AutoCompaction | undefined> | undefined;
  private isStopped = false;

  constructor(init: CompactionSchedulerInit) {
    super();
    this.wal = init.wal;
    this.state = init.state;
    this.compactor = init.compactor;
    this.options = init.options;
    this.clock = init.clock ?? Date.now;
  }

  /** Starts the periodic checks (does nothing unless `compaction.enabled`). Idempotent. */
  start(): void {
    if (!this.options.enabled || this.timer !== undefined || this.isStopped) return;
    this.timer = setInterval(() => void this.check(), this.options.checkIntervalMs);
    this.timer.unref();
  }

  /** Stops the checks; resolves once a compaction in progress has finished. Idempotent. */
  async stop(): Promise<void> {
    this.isStopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
  }

  /**
   * The threshold reached now, if any, and the minimum interval passed: what a check would run
   * for. Throws `WalError` `WAL_IO_ERROR` when the snapshot directory cannot be read.
   */
  dueTrigger(): CompactionTrigger | undefined {
    const { eventsThreshold, sizeThresholdBytes, minIntervalMs } = this.options;
    const last = this.compactor.lastStartedMs;
    if (last !== undefined && this.clock() - last < minIntervalMs) return undefined;
    if (eventsThreshold > 0 && this.recordsSinceSnapshot() >= eventsThreshold) return 'events';
    if (sizeThresholdBytes > 0 && this.wal.stats().bytesOnDisk >= sizeThresholdBytes && this.compactor.reclaimableBytes() > 0) return 'size';
    return undefined;
  }

  /**
   * Checks the thresholds once and compacts when one is due; resolves with the run, or undefined
   * when none was due (or a check is already running, or the scheduler stopped). Never rejects:
   * a failure is emitted as `failed`.
   */
  check(): Promise<AutoCompaction | undefined> {
    if (this.isStopped || this.checking !== undefined) return Promise.resolve(undefined);
    this.checking = this.checkOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<AutoCompaction | undefined> {
    let trigger: CompactionTrigger | undefined;
    try {
      trigger = this.dueTrigger();
      if (trigger === undefined) return undefined;
      const recordsSinceSnapshot = this.recordsSinceSnapshot();
      const logBytes = this.wal.stats().bytesOnDisk;
      const result = await this.compactor.compact();
      const run: AutoCompaction = { trigger, recordsSinceSnapshot, logBytes, result };
      this.emit('compacted', run);
      return run;
    } catch (error) {
      try {
        if (this.listenerCount('failed') > 0) this.emit('failed', error, trigger ?? 'events');
      } catch {
        // A listener that throws must not turn a failed run into an unhandled rejection of the timer.
      }
      return undefined;
    }
  }

  private recordsSinceSnapshot(): number {
    const newest = this.state.snapshotSummary().newest;
    return this.wal.highWatermark + 1 - (newest?.walOffset ?? 0);
  }
}
