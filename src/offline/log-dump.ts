import { join } from 'node:path';
import { decodeProducer, decodeRecords, type ProducerStamp } from '../codec/frame.js';
import type { WalRecord } from '../codec/record.js';
import { decodeEpochHistory } from '../codec/epoch-history-file.js';
import { decodeRecoveryPoint } from '../codec/recovery-point-file.js';
import { EPOCHS_FILE, parseSegmentFileName, RECOVERY_POINT_FILE } from '../engine/segment-name.js';
import { StorageError, type Storage } from '../storage/storage.js';
import type { LogFault } from './log-fault.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import { readWholeFile, sizeOrZero } from './read-whole-file.js';
import { scanSegment, type ScannedFrame } from './segment-scan.js';

/** A frame as `wald dump --frames` shows it: where it lies and its header fields. */
export interface DumpedFrame {
  readonly segment: string;
  readonly position: number;
  /** Header + payload bytes (without padding). */
  readonly length: number;
  readonly crc: number;
  /** Frame type (1: records). */
  readonly type: number;
  readonly flags: number;
  readonly recordCount: number;
  readonly baseOffset: number;
  readonly timestamp: number;
  readonly leaderEpoch: number;
  readonly syncLag: number;
  /** The producer section of an idempotent append, if the frame has one. */
  readonly producer: ProducerStamp | undefined;
}

/** What {@link dumpLog} walks and where it sends what it decodes. */
export interface DumpOptions {
  /** First offset to show (frames: the first frame holding it or a later offset). */
  readonly fromOffset: number;
  /** Most records (or frames, with `onFrame`) to show. */
  readonly limit: number;
  /** Receives each record, with the frame holding it. Either this or `onFrame`. */
  readonly onRecord?: ((record: WalRecord, frame: DumpedFrame) => void) | undefined;
  /** Receives each frame instead of its records. */
  readonly onFrame?: ((frame: DumpedFrame) => void) | undefined;
  /** Receives damage as it is met; the dump goes on at the next valid frame. */
  readonly onFault: (fault: LogFault) => void;
  /** Receives what is not damage but worth saying (a segment compacted away under a live dump). */
  readonly onNote?: ((note: string) => void) | undefined;
  readonly progress?: Progress | undefined;
}

/** What a dump went through. */
export interface DumpSummary {
  readonly records: number;
  readonly frames: number;
  readonly faults: number;
}

function dumpedFrame(segment: string, frame: ScannedFrame): DumpedFrame {
  const { header, buf, position } = frame;
  return {
    segment,
    position,
    length: header.length,
    crc: frame.crc,
    type: buf[position + 8]!,
    flags: frame.flags,
    recordCount: header.recordCount,
    baseOffset: header.baseOffset,
    timestamp: header.timestamp,
    leaderEpoch: header.leaderEpoch,
    syncLag: header.syncLag,
    producer: decodeProducer(buf, position, header),
  };
}

/**
 * Decodes the log in `dir` offline, segment by segment, frame by frame (like Kafka's
 * DumpLogSegments): the records from `fromOffset` on (or the frames, with `onFrame`), at most
 * `limit`. Segments wholly below `fromOffset` are skipped by their names. Damage is reported to
 * `onFault` (classified as `wald verify` does) and the dump goes on at the next valid frame, so what
 * can be read is shown. Throws `StorageError` when a segment cannot be read.
 */
export async function dumpLog(storage: Storage, dir: string, options: DumpOptions): Promise<DumpSummary> {
  const progress = options.progress ?? NO_PROGRESS;
  const names = storage.list(dir).sort();
  const recoveryPoint = names.includes(RECOVERY_POINT_FILE) ? decodeRecoveryPoint(storage.readFile(join(dir, RECOVERY_POINT_FILE))) : undefined;
  const epochs = names.includes(EPOCHS_FILE) ? decodeEpochHistory(storage.readFile(join(dir, EPOCHS_FILE))) : undefined;
  // A follower's frames carry its leader's sync lags: classified as recovery would (docs/engine.md).
  const trustsFrameClaims = epochs?.ok !== true || !epochs.file.isReplicated;
  const all = names.filter((name) => parseSegmentFileName(name) !== undefined);
  // A segment holds no offset at or above the next one's base: those before the one holding
  // `fromOffset` are skipped unread.
  const first = Math.max(0, all.findLastIndex((name) => parseSegmentFileName(name)! <= options.fromOffset));
  const segments = all.slice(first);
  for (const name of segments) progress.addTotal(sizeOrZero(storage, join(dir, name)));
  let records = 0;
  let frames = 0;
  let faults = 0;
  const out: WalRecord[] = [];
  for (let i = 0; i < segments.length && records + frames < options.limit; i++) {
    const name = segments[i]!;
    let buf: Buffer;
    try {
      buf = await readWholeFile(storage, join(dir, name), (bytes) => progress.advance(bytes));
    } catch (error) {
      // Only a live server (a dump without the lock) deletes segments under the dump.
      if (!(error instanceof StorageError && error.code === 'ENOENT')) throw error;
      options.onNote?.(`${name} was removed while the dump ran (compaction by the server that holds the log)`);
      continue;
    }
    const context = { isLast: first + i === all.length - 1, durableBefore: recoveryPoint?.durableNext ?? 0, hasRecoveryPoint: recoveryPoint !== undefined, trustsFrameClaims };
    const scan = scanSegment(buf, name, parseSegmentFileName(name)!, context, (frame) => {
      const { header } = frame;
      if (header.baseOffset + header.recordCount <= options.fromOffset) return true;
      const dumped = dumpedFrame(name, frame);
      if (options.onFrame !== undefined) {
        options.onFrame(dumped);
        frames++;
        return frames < options.limit;
      }
      out.length = 0;
      const decoded = decodeRecords(buf, frame.position, header, options.fromOffset, options.limit - records, out);
      if (typeof decoded === 'string') {
        faults++;
        options.onFault({ kind: 'corruption', file: name, position: frame.position, reason: `records of the frame: ${decoded}`, lastGoodOffset: header.baseOffset - 1 });
        return true;
      }
      for (const record of out) options.onRecord?.(record, dumped);
      records += decoded;
      return records < options.limit;
    });
    for (const fault of scan.faults) options.onFault(fault);
    faults += scan.faults.length;
    if (records + frames >= options.limit) break;
    // Read whole: does the next segment start where it ends, and the log end at its recovery point?
    const end = Math.max(scan.endOffset, scan.header?.compactedNextOffset ?? 0);
    const next = segments[i + 1];
    const nextBase = next === undefined ? undefined : parseSegmentFileName(next)!;
    if (next !== undefined && nextBase !== end) {
      faults++;
      options.onFault({ kind: 'corruption', file: next, position: 0, reason: `segment gap: ${name} ends at offset ${end}, ${next} starts at ${nextBase}`, lastGoodOffset: end - 1 });
    } else if (next === undefined && recoveryPoint !== undefined && end < recoveryPoint.durableNext) {
      faults++;
      options.onFault({ kind: 'corruption', file: name, position: scan.dataEnd, reason: `the log ends at offset ${end}, below its recovery point ${recoveryPoint.durableNext}: durable records are missing`, lastGoodOffset: end - 1 });
    }
  }
  return { records, frames, faults };
}
