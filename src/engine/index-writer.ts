import { join } from 'node:path';
import { encodeCleanMarker } from '../codec/clean-marker.js';
import { encodeIndexFile, type ProducerState } from '../codec/index-file.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { ProducerTable } from './producer-table.js';
import type { Segment } from './segment.js';
import { CLEAN_MARKER_FILE, PRODUCERS_FILE, TEMP_SUFFIX } from './segment-name.js';
import type { IoStats } from './types.js';
import type { ResolvedWalOptions } from './wal-options.js';

/**
 * Writes the files derived from the log, each whole or not at all (`writeFileDurably`): a sealed
 * segment's index, the producer table on its own, the clean-shutdown marker.
 *
 * Every method throws `StorageError` when the write fails.
 */
export class IndexWriter {
  constructor(
    private readonly options: ResolvedWalOptions,
    private readonly producers: ProducerTable,
    private readonly io: IoStats,
  ) {}

  /**
   * The index of `segment`, with the producer table as of its end: `producers` when given (a
   * segment recovery rebuilt, below the end of the log), else the table as it stands (a segment
   * just sealed: the log's state is its end's).
   */
  writeIndex(segment: Segment, producers: readonly ProducerState[] = this.producers.snapshot()): void {
    this.write(segment.indexPath, encodeSegmentIndex(segment, producers));
  }

  /**
   * The producer table in `PRODUCERS` (index-file layout, no entries), as of `durableNext` in the
   * active segment, with the latest timestamp given out. The caller synced the log up to there.
   */
  writeProducers(active: Segment, durableNext: number, durableEnd: number, lastTimestamp: number): void {
    this.write(
      join(this.options.dir, PRODUCERS_FILE),
      encodeIndexFile({
        baseOffset: active.baseOffset,
        segmentId: active.segmentId,
        nextOffset: durableNext,
        dataEnd: durableEnd,
        firstTimestamp: 0,
        lastTimestamp: Math.max(lastTimestamp, 0),
        offsets: [],
        positions: [],
        timestamps: [],
        entryCount: 0,
        producers: this.producers.snapshot(),
      }),
    );
  }

  /** The clean-shutdown marker for `active`, whose index was just written. */
  writeCleanMarker(active: Segment): void {
    this.write(join(this.options.dir, CLEAN_MARKER_FILE), encodeCleanMarker({ baseOffset: active.baseOffset, dataEnd: active.dataEnd }));
  }

  private write(path: string, bytes: Buffer): void {
    writeFileDurably(this.options.storage, path, path + TEMP_SUFFIX, bytes);
    this.io.fsyncs++;
  }
}

/** The index file of `segment` as it is in memory, holding `producers` (the producer table as of its end). */
export function encodeSegmentIndex(segment: Segment, producers: readonly ProducerState[]): Buffer {
  const arrays = segment.index.toArrays();
  return encodeIndexFile({
    baseOffset: segment.baseOffset,
    segmentId: segment.segmentId,
    nextOffset: segment.nextOffset,
    dataEnd: segment.dataEnd,
    firstTimestamp: Math.max(segment.firstTimestamp, 0),
    lastTimestamp: Math.max(segment.lastTimestamp, 0),
    offsets: arrays.offsets,
    positions: arrays.positions,
    timestamps: arrays.timestamps,
    entryCount: arrays.count,
    producers,
  });
}
