import { join } from 'node:path';
import { decodeRecords, type FrameHeader } from '../codec/frame.js';
import type { WalRecord } from '../codec/record.js';
import { decodeRecoveryPoint } from '../codec/recovery-point-file.js';
import { parseSegmentFileName, RECOVERY_POINT_FILE } from '../engine/segment-name.js';
import { WalError } from '../errors.js';
import type { PointInTimeLog } from '../state/point-in-time.js';
import type { Storage } from '../storage/storage.js';
import { readWholeFile } from './read-whole-file.js';
import { scanSegment } from './segment-scan.js';

/** Records handed on at a time. */
const BATCH_RECORDS = 1000;

/** One segment file read and scanned: its bytes and where its frames are. */
interface ReadSegment {
  readonly index: number;
  readonly buf: Buffer;
  readonly frames: { readonly position: number; readonly header: FrameHeader }[];
  /** The offset after its last record that recovery would keep (a torn tail of the last segment cut). */
  readonly nextOffset: number;
}

/**
 * A log's segment files read offline, without opening the log (nothing is written, no torn tail is
 * cut): the {@link PointInTimeLog} that `wald replay` builds states from. Frames are checked as
 * `wald verify` checks them (segment-scan.ts): damage recovery would call corruption is a
 * `WAL_CORRUPTION`; a torn tail of the last segment ends the log where recovery would cut it.
 * Segments are read whole, one at a time (the last one read is kept for the next call).
 */
export class OfflineLog implements PointInTimeLog {
  private readonly replayed = new Set<number>();
  private cached: ReadSegment | undefined;

  private constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    private readonly names: readonly string[],
    private readonly bases: readonly number[],
    private readonly durableBefore: number | undefined,
    readonly firstOffset: number,
    private end: number,
  ) {}

  /**
   * The log in `dir`. Reads the last segment to find the log's end. Throws `WalError`
   * `WAL_CORRUPTION` for damage in it and `StorageError` when a file cannot be read.
   */
  static async open(storage: Storage, dir: string): Promise<OfflineLog> {
    const all = storage.list(dir).sort();
    const names = all.filter((name) => parseSegmentFileName(name) !== undefined);
    const bases = names.map((name) => parseSegmentFileName(name)!);
    const recoveryPoint = all.includes(RECOVERY_POINT_FILE) ? decodeRecoveryPoint(storage.readFile(join(dir, RECOVERY_POINT_FILE))) : undefined;
    const log = new OfflineLog(storage, dir, names, bases, recoveryPoint?.durableNext, bases[0] ?? 0, bases[0] ?? 0);
    if (names.length > 0) log.end = (await log.segment(names.length - 1)).nextOffset;
    if (recoveryPoint !== undefined && names.length > 0 && log.end < recoveryPoint.durableNext) {
      // As the server's open and wald verify refuse it: a segment at the end is missing or cut.
      throw corruption(names.at(-1)!, 0, `the log ends at offset ${log.end}, below its recovery point ${recoveryPoint.durableNext}: durable records are missing`);
    }
    return log;
  }

  /** The offset after the last whole record of the log. */
  get endOffset(): number {
    return this.end;
  }

  /** Segment files {@link batches} read records from, in every call so far. */
  get segmentsReplayed(): number {
    return this.replayed.size;
  }

  /** Segment files of the log. */
  get segmentCount(): number {
    return this.names.length;
  }

  /** Reads the segments from the first until a frame stamped at or after `timestampMs`. */
  async offsetForTimestamp(timestampMs: number): Promise<number> {
    for (let i = 0; i < this.names.length; i++) {
      const segment = await this.segment(i);
      for (const frame of segment.frames) if (frame.header.timestamp >= timestampMs) return Math.max(frame.header.baseOffset, this.firstOffset);
    }
    return this.end;
  }

  async timestampAt(offset: number): Promise<number | undefined> {
    if (offset < this.firstOffset || offset >= this.end) return undefined;
    const segment = await this.segment(this.segmentIndexOf(offset));
    const frame = segment.frames.find((f) => f.header.baseOffset <= offset && offset < f.header.baseOffset + f.header.recordCount);
    return frame?.header.timestamp;
  }

  async *batches(fromOffset: number, toOffset: number): AsyncIterableIterator<readonly WalRecord[]> {
    const to = Math.min(toOffset, this.end);
    if (fromOffset >= to) return;
    let out: WalRecord[] = [];
    for (let i = this.segmentIndexOf(fromOffset); i < this.names.length && this.bases[i]! < to; i++) {
      const segment = await this.segment(i);
      this.replayed.add(i);
      for (const { position, header } of segment.frames) {
        if (header.baseOffset + header.recordCount <= fromOffset) continue;
        if (header.baseOffset >= to) break;
        const decoded = decodeRecords(segment.buf, position, header, fromOffset, to - Math.max(fromOffset, header.baseOffset), out);
        if (typeof decoded === 'string') throw corruption(this.names[i]!, position, `records of the frame: ${decoded}`);
        if (out.length >= BATCH_RECORDS) {
          yield out;
          out = [];
        }
      }
    }
    if (out.length > 0) yield out;
  }

  /** The segment holding `offset` (the last whose base is at or below it; the first for offsets below the log). */
  private segmentIndexOf(offset: number): number {
    return Math.max(0, this.bases.findLastIndex((base) => base <= offset));
  }

  private async segment(index: number): Promise<ReadSegment> {
    if (this.cached?.index === index) return this.cached;
    const name = this.names[index]!;
    const buf = await readWholeFile(this.storage, join(this.dir, name));
    const frames: { position: number; header: FrameHeader }[] = [];
    const context = { isLast: index === this.names.length - 1, durableBefore: this.durableBefore ?? 0, hasRecoveryPoint: this.durableBefore !== undefined, stopAtDamage: true };
    const scan = scanSegment(buf, name, this.bases[index]!, context, (frame) => {
      frames.push({ position: frame.position, header: frame.header });
      return true;
    });
    const fault = scan.faults.find((f) => f.kind === 'corruption');
    if (fault !== undefined) throw corruption(name, fault.position ?? 0, fault.reason);
    // A missing segment: its offsets are not absent by key compaction, they are gone.
    const end = Math.max(scan.nextOffset, scan.header?.compactedNextOffset ?? 0);
    const nextBase = this.bases[index + 1];
    if (nextBase !== undefined && nextBase !== end) {
      throw corruption(this.names[index + 1]!, 0, `segment gap: ${name} ends at offset ${end}, ${this.names[index + 1]} starts at ${nextBase}`);
    }
    this.cached = { index, buf, frames, nextOffset: scan.nextOffset };
    return this.cached;
  }
}

function corruption(segment: string, position: number, reason: string): WalError {
  return new WalError('WAL_CORRUPTION', `${segment} at byte ${position}: ${reason} (wald verify reports the damage; wald repair cuts the log before it)`, { segment, position, reason });
}
