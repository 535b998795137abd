/**
 * Key compaction (`compact --aggressive`): the key-value layer decides which records of the sealed
 * segments are still needed, the engine (`Wal.rewriteSegments`) rewrites the segments without the
 * others, keeping every offset. The rule for each record is in docs/state.md, "Key compaction".
 */
import { DEFAULT_REWRITE_THRESHOLD_PERCENT, type JudgedSegment, type SegmentRewritePlan } from '../engine/segment-rewriter.js';
import type { WalRecord } from '../engine/types.js';
import type { Wal } from '../engine/wal.js';
import type { StateKeeper } from './state-keeper.js';
import { judgePrepare } from './txn-redundancy.js';

/** Default of {@link KeyCompactionOptions.thresholdPercent} (`--threshold`): the engine's, 20. */
export const DEFAULT_KEY_COMPACTION_THRESHOLD_PERCENT = DEFAULT_REWRITE_THRESHOLD_PERCENT;

/** How to compact. */
export interface KeyCompactionOptions {
  /**
   * `--threshold PERCENT`: a sealed segment is rewritten only when at least this share of its
   * records is redundant (superseded PUTs, droppable tombstones), percent, 0..100. Default 20.
   */
  readonly thresholdPercent?: number | undefined;
  /**
   * How long a `DELETE` is kept at least, ms (by its timestamp against `clock`). Default: the
   * keeper's `tombstone_retention_ms` (24 h unless configured).
   */
  readonly tombstoneRetentionMs?: number | undefined;
  /** Only estimate: judge every record and report, write nothing. */
  readonly dryRun?: boolean | undefined;
  /**
   * Rewrite only segments wholly below this offset too (the Compactor passes the lowest standing
   * retention lease: a follower tailing from there must get the records as they were, not
   * `compacted`). Default: no bound but what the view applied.
   */
  readonly belowOffset?: number | undefined;
  /** Wall clock in ms (tombstone ages, duration); tests inject one. Default `Date.now`. */
  readonly clock?: (() => number) | undefined;
}

/** What a key compaction did (in a dry run: would do). */
export interface KeyCompactionResult {
  readonly dryRun: boolean;
  /** Sealed segments judged (those wholly below what the view had applied at the start). */
  readonly segmentsConsidered: number;
  /** Of them, rewritten (would be, in a dry run): at or above the threshold. */
  readonly segmentsRewritten: number;
  /** Records in the segments considered. */
  readonly recordsConsidered: number;
  /** Records dropped (would be): the redundant records of the segments rewritten. */
  readonly recordsDropped: number;
  /**
   * The redundancy ratio of the segments considered: redundant records (superseded PUTs and
   * droppable tombstones, in segments rewritten or not) per record considered, percent.
   */
  readonly redundancyPercent: number;
  /** `before_size_bytes`: bytes of the rewritten segments' files before. */
  readonly beforeSizeBytes: number;
  /** `after_size_bytes`: bytes of those files after (exact in a dry run too). */
  readonly afterSizeBytes: number;
  /** `freed_bytes`: `beforeSizeBytes - afterSizeBytes`. */
  readonly freedBytes: number;
  /** `reduction_percent`: `freedBytes` per `beforeSizeBytes`, percent (0 when nothing was rewritten). */
  readonly reductionPercent: number;
  /** `duration_ms`. */
  readonly durationMs: number;
}

/**
 * Rewrites the sealed segments of `wal` without the records the key-value view no longer needs,
 * offsets unchanged (key compaction, `compact --aggressive`), and reports the figures of the
 * Compact RPC: `beforeSizeBytes`, `afterSizeBytes`, `freedBytes`, `reductionPercent`,
 * `durationMs`, with `segmentsRewritten` and the redundancy ratio; with `dryRun`, the same
 * figures as an estimate, nothing written.
 *
 * What is kept (docs/state.md, "Key compaction"):
 * - keyless records, `checkpoint` and `flush_all` records: always;
 * - a keyed `PUT`: only while it is the view's latest for its key (its offset is the key's);
 * - a `DELETE`: while younger than `tombstoneRetentionMs`; older, it is dropped only when no
 *   rebuild of the view can miss it: it lies below the oldest full or incremental snapshot (a
 *   rebuild starts at a snapshot), or there is no snapshot and the log starts at offset 0, and,
 *   while the log starts at 0, no `PUT` of its key stays in the log below it (a rebuild from the
 *   log alone would see that `PUT` and nothing deleting it).
 *
 * Only segments wholly below what the view had applied when the call began are considered, and
 * never the active segment. Appends, reads, tails and the view go on meanwhile.
 *
 * Rejects with the errors of `Wal.rewriteSegments` (`WAL_CLOSED`, `WAL_CORRUPTION`,
 * `WAL_NO_SPACE`, `WAL_IO_ERROR`) and of listing snapshots (`WAL_IO_ERROR`), and with `RangeError`
 * for an option out of range (`thresholdPercent` outside 0..100, a negative retention).
 */
export async function compactKeys(keeper: StateKeeper, wal: Wal, options: KeyCompactionOptions = {}): Promise<KeyCompactionResult> {
  const clock = options.clock ?? Date.now;
  const started = clock();
  const retentionMs = options.tombstoneRetentionMs ?? keeper.tombstoneRetentionMs;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) throw new RangeError(`tombstoneRetentionMs must be a non-negative integer, got ${String(retentionMs)}`);
  const dryRun = options.dryRun === true;
  const snapshotFloor = keeper.snapshotSummary().oldest?.walOffset;
  const plan = new KeyCompactionPlan(keeper, {
    now: started,
    retentionMs,
    snapshotFloor,
    isLogFromStart: wal.firstOffset === 0,
  });
  const result = await wal.rewriteSegments({
    keep: (record) => plan.keep(record),
    onSegmentJudged: (segment) => plan.segmentJudged(segment),
    belowOffset: Math.min(keeper.appliedOffset, options.belowOffset ?? Number.MAX_SAFE_INTEGER),
    thresholdPercent: options.thresholdPercent ?? DEFAULT_KEY_COMPACTION_THRESHOLD_PERCENT,
    dryRun,
  });
  const freedBytes = result.beforeSizeBytes - result.afterSizeBytes;
  return {
    dryRun,
    segmentsConsidered: result.segments.length,
    segmentsRewritten: result.segmentsRewritten,
    recordsConsidered: result.records,
    recordsDropped: result.recordsDropped,
    redundancyPercent: result.records === 0 ? 0 : (result.redundantRecords * 100) / result.records,
    beforeSizeBytes: result.beforeSizeBytes,
    afterSizeBytes: result.afterSizeBytes,
    freedBytes,
    reductionPercent: result.beforeSizeBytes === 0 ? 0 : (freedBytes * 100) / result.beforeSizeBytes,
    durationMs: clock() - started,
  };
}

/** What the tombstone rule needs to know, fixed when a compaction begins. */
interface TombstoneRule {
  readonly now: number;
  readonly retentionMs: number;
  /** The wal offset of the oldest full or incremental snapshot; undefined: none. */
  readonly snapshotFloor: number | undefined;
  /** The log starts at offset 0: a rebuild may replay it from there, with no snapshot. */
  readonly isLogFromStart: boolean;
}

/** The judge of one key compaction: the `keep` of a {@link SegmentRewritePlan}, and what it remembers between segments. */
class KeyCompactionPlan {
  /**
   * Hashes of the keys of the `PUT`s that stay in the log below the record being judged: every
   * superseded `PUT` of a segment not rewritten. (A kept, live `PUT` is the latest record of its
   * key, so no tombstone of that key lies above it in what is judged.) Only while the log starts at
   * 0 (a rebuild from the log alone is possible). Hashes, not keys, to cost a number per record: a
   * collision only keeps a tombstone that could have gone.
   */
  private readonly keysPutBelow = new Set<number>();
  /** Key hashes of the current segment's superseded PUTs, until it is judged. */
  private segmentSuperseded: number[] = [];

  constructor(
    private readonly keeper: StateKeeper,
    private readonly rule: TombstoneRule,
  ) {}

  keep(record: WalRecord): boolean {
    const key = record.key;
    if (key === undefined || record.type === 'checkpoint' || record.type === 'flush_all') return true;
    // Transaction ends are markers every replay needs (the outcome, and the refusal rules).
    if (record.type === 'commit' || record.type === 'abort') return true;
    if (record.type === 'prepare') return this.keepPrepare(record);
    if (record.type === 'put') {
      const isLive = this.keeper.latestOffsetOf(key) === record.offset;
      if (!isLive && this.rule.isLogFromStart) this.segmentSuperseded.push(keyHash(key));
      return isLive;
    }
    return !this.canDropTombstone(record, key);
  }

  /**
   * A PREPARE goes when `judgePrepare` finds it redundant. One that stays puts its superseded PUT
   * writes in the log below what follows, as a superseded PUT in a segment kept whole does: the
   * tombstones of those keys then stay while the log starts at 0.
   */
  private keepPrepare(record: WalRecord): boolean {
    const verdict = judgePrepare(this.keeper, record);
    if (this.rule.isLogFromStart) {
      // Kept: its superseded writes stay below what follows. Dropped: only if its segment is not rewritten.
      if (verdict.isRedundant) for (const key of verdict.supersededPutKeys) this.segmentSuperseded.push(keyHash(key));
      else for (const key of verdict.supersededPutKeys) this.keysPutBelow.add(keyHash(key));
    }
    return !verdict.isRedundant;
  }

  segmentJudged(segment: JudgedSegment): void {
    // In a segment kept as it is, every PUT stays, superseded ones too.
    if (!segment.isRewritten) for (const hash of this.segmentSuperseded) this.keysPutBelow.add(hash);
    this.segmentSuperseded = [];
  }

  /**
   * A `DELETE` may go once it is older than the retention and no rebuild of the view could start
   * below it with its key still set. (A `PUT` of the key in the same segment, below it, is
   * superseded by it: dropped too when the segment is rewritten, and when it is not, nothing is.)
   */
  private canDropTombstone(record: WalRecord, key: Uint8Array): boolean {
    const { now, retentionMs, snapshotFloor, isLogFromStart } = this.rule;
    if (now - record.timestamp < retentionMs) return false;
    if (snapshotFloor !== undefined ? record.offset >= snapshotFloor : !isLogFromStart) return false;
    return !isLogFromStart || !this.keysPutBelow.has(keyHash(key));
  }
}

/** FNV-1a of a key's bytes (32 bits). */
function keyHash(key: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key[i]!, 0x01000193);
  return hash >>> 0;
}
