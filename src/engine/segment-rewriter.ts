import { randomBytes } from 'node:crypto';
import { align8 } from '../codec/align.js';
import { checkFrame, decodeRecords, encodeFrameOfRecordBytes, FRAME_HEADER_BYTES, recordBounds, stampFrame, type FrameHeader } from '../codec/frame.js';
import { decodeIndexFile, type ProducerState } from '../codec/index-file.js';
import { encodeSegmentHeader, SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_BYTES } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import { writeFileDurably } from '../storage/durable-file.js';
import type { StorageFile } from '../storage/storage.js';
import { encodeSegmentIndex } from './index-writer.js';
import type { ProducerTable } from './producer-table.js';
import { Segment } from './segment.js';
import { newFrameSeed } from './segment-file.js';
import type { SegmentList } from './segment-list.js';
import { TEMP_SUFFIX } from './segment-name.js';
import { walErrorFromStorage } from './storage-errors.js';
import type { IoStats, WalRecord } from './types.js';
import type { ResolvedWalOptions } from './wal-options.js';

/** Bytes read from a segment, and written to its new file, at a time (a turn of the event loop each). */
const CHUNK_BYTES = 1024 * 1024;
/** Default of {@link SegmentRewritePlan.thresholdPercent}. */
export const DEFAULT_REWRITE_THRESHOLD_PERCENT = 20;
/** Suffix of the file a segment is rewritten into before it is renamed over the segment. */
const REWRITE_SUFFIX = '.compact' + TEMP_SUFFIX;

/**
 * What to keep of the sealed segments: the caller decides (the key-value layer, by key), the
 * engine only rewrites. See `Wal.rewriteSegments`.
 */
export interface SegmentRewritePlan {
  /**
   * Judges one record of a sealed segment: true keeps it. Called once for every record of every
   * segment considered, oldest first, in offset order, and for all records of a segment before it
   * is rewritten (or not). A record judged out is dropped only if its segment is rewritten.
   * Must not throw; keep the judge cheap (it runs on the event loop, a chunk of records a turn).
   */
  keep(record: WalRecord): boolean;
  /**
   * Told, for each segment considered, once its records are judged: whether it is rewritten (in a
   * dry run: would be). The records of a segment not rewritten all stay in the log, those judged
   * out too; a judge that reasons about what stays below a record (tombstones) needs this.
   */
  onSegmentJudged?: ((segment: JudgedSegment) => void) | undefined;
  /**
   * Only segments all of whose offsets are below this are considered (default: every sealed
   * segment). The judge must know every record below it (a key-value view that applied them).
   */
  readonly belowOffset?: number | undefined;
  /**
   * A segment is rewritten only when at least this share of its records is judged out, percent
   * (0..100; default 20). Counted in records, not bytes, as the dry run's redundancy ratio is.
   */
  readonly thresholdPercent?: number | undefined;
  /** Judge and report, write nothing. */
  readonly dryRun?: boolean | undefined;
}

/** One segment as judged by a rewrite. */
export interface JudgedSegment {
  readonly baseOffset: number;
  /** The offset after the segment's last one (records and gaps). */
  readonly nextOffset: number;
  /** Records the segment holds (a compacted segment holds fewer than it spans). */
  readonly records: number;
  /** Of them, judged out. */
  readonly redundantRecords: number;
  /** Bytes of the segment file now. */
  readonly sizeBytes: number;
  /** Bytes of its file once rewritten (exact: computed from the records kept). */
  readonly rewrittenSizeBytes: number;
  /** True when it is rewritten (in a dry run: would be): redundant records at or above the threshold. */
  readonly isRewritten: boolean;
}

/** What a rewrite did (or, in a dry run, would do). */
export interface SegmentRewriteResult {
  /** Every segment considered, oldest first. */
  readonly segments: readonly JudgedSegment[];
  readonly segmentsRewritten: number;
  /** Records in the segments considered. */
  readonly records: number;
  /** Records judged out in the segments considered (rewritten or not). */
  readonly redundantRecords: number;
  /** Records dropped: those judged out in the segments rewritten. */
  readonly recordsDropped: number;
  /** Bytes of the rewritten segments' files before. */
  readonly beforeSizeBytes: number;
  /** Bytes of the rewritten segments' files after. */
  readonly afterSizeBytes: number;
}

/** What the rewriter needs of the log. */
export interface RewriteContext {
  readonly options: ResolvedWalOptions;
  readonly segments: SegmentList;
  readonly producers: ProducerTable;
  readonly io: IoStats;
  /** False once the log is closing: the rewrite stops at its next step and removes its file. */
  isOpen(): boolean;
  /**
   * Makes every record written so far durable (`fdatasync` of the log when anything is unsynced).
   * Called before a swap: the judge may have dropped a record because of a later one that, under
   * `none` or `interval`, was still only in the page cache; a power cut after the swap must not
   * lose both.
   */
  syncLog(): void;
}

/** The judgements of one segment's records, in frame order (1: keep). */
interface Judgement {
  readonly keeps: Uint8Array;
  readonly records: number;
  readonly redundant: number;
  readonly rewrittenSizeBytes: number;
}

/**
 * Key compaction's engine half: rewrites sealed segments keeping only the records a caller's
 * plan keeps, with their offsets, so that a compacted segment has gaps (docs/engine.md, "Key
 * compaction"). The active segment is never touched: the writer goes on meanwhile.
 *
 * Each segment is read twice, in chunks, while appends, reads and tails go on: once to judge its
 * records, then, when enough are judged out, to write the kept ones into `<segment>.compact.tmp`
 * (one frame per run of consecutive kept records of a batch, their bytes copied as they are,
 * with the batch's timestamp), which
 * is synced; then, in one synchronous step, the new index is written (temp -> fdatasync -> rename
 * -> directory fsync), the new file renamed over the segment, the segment list pointed at it, and
 * the directory synced. Reads that started in the old file finish on its open descriptor.
 */
export async function rewriteSegments(context: RewriteContext, plan: SegmentRewritePlan): Promise<SegmentRewriteResult> {
  const threshold = plan.thresholdPercent ?? DEFAULT_REWRITE_THRESHOLD_PERCENT;
  const belowOffset = plan.belowOffset ?? Number.MAX_SAFE_INTEGER;
  const candidates = [...context.segments].filter((s) => s !== context.segments.active && s.nextOffset <= belowOffset);
  const judged: JudgedSegment[] = [];
  let beforeSizeBytes = 0;
  let afterSizeBytes = 0;
  for (const segment of candidates) {
    checkOpen(context);
    // Deleted meanwhile (compaction by snapshot): nothing of it is left to judge.
    if (!context.segments.includes(segment)) continue;
    const judgement = await judge(context, segment, plan);
    if (judgement === undefined) continue;
    const isRewritten = judgement.redundant > 0 && judgement.redundant * 100 >= threshold * judgement.records;
    const row: JudgedSegment = {
      baseOffset: segment.baseOffset,
      nextOffset: segment.nextOffset,
      records: judgement.records,
      redundantRecords: judgement.redundant,
      sizeBytes: segment.fileSize,
      rewrittenSizeBytes: judgement.rewrittenSizeBytes,
      isRewritten,
    };
    judged.push(row);
    plan.onSegmentJudged?.(row);
    if (!isRewritten || plan.dryRun === true) continue;
    const replacement = await rewrite(context, segment, judgement);
    if (replacement === undefined) continue;
    beforeSizeBytes += row.sizeBytes;
    afterSizeBytes += replacement.fileSize;
  }
  const rewritten = judged.filter((s) => s.isRewritten);
  return {
    segments: judged,
    segmentsRewritten: rewritten.length,
    records: judged.reduce((sum, s) => sum + s.records, 0),
    redundantRecords: judged.reduce((sum, s) => sum + s.redundantRecords, 0),
    recordsDropped: rewritten.reduce((sum, s) => sum + s.redundantRecords, 0),
    beforeSizeBytes: plan.dryRun === true ? rewritten.reduce((sum, s) => sum + s.sizeBytes, 0) : beforeSizeBytes,
    afterSizeBytes: plan.dryRun === true ? rewritten.reduce((sum, s) => sum + s.rewrittenSizeBytes, 0) : afterSizeBytes,
  };
}

/** Asks the plan about every record of `segment`; undefined when the segment was deleted meanwhile. */
async function judge(context: RewriteContext, segment: Segment, plan: SegmentRewritePlan): Promise<Judgement | undefined> {
  let keeps = new Uint8Array(Math.max(16, Math.min(segment.recordCount, 1 << 20)));
  let records = 0;
  let redundant = 0;
  let rewrittenSizeBytes = SEGMENT_HEADER_BYTES;
  const decoded: WalRecord[] = [];
  const bounds: number[] = [];
  const isRead = await scanFrames(context, segment, (buf, rel, header) => {
    decoded.length = 0;
    decodeFrame(segment, buf, rel, header, decoded);
    boundsOf(segment, buf, rel, header, bounds);
    if (records + decoded.length > keeps.length) {
      const grown = new Uint8Array(Math.max(keeps.length * 2, records + decoded.length));
      grown.set(keeps);
      keeps = grown;
    }
    let runStart = -1;
    for (let i = 0; i < decoded.length; i++) {
      const isKept = plan.keep(decoded[i]!);
      keeps[records++] = isKept ? 1 : 0;
      if (isKept) {
        if (runStart < 0) runStart = i;
        continue;
      }
      redundant++;
      if (runStart >= 0) rewrittenSizeBytes += align8(FRAME_HEADER_BYTES + bounds[i]! - bounds[runStart]!);
      runStart = -1;
    }
    if (runStart >= 0) rewrittenSizeBytes += align8(FRAME_HEADER_BYTES + bounds[decoded.length]! - bounds[runStart]!);
  });
  return isRead ? { keeps, records, redundant, rewrittenSizeBytes } : undefined;
}

/**
 * Writes the kept records of `segment` into a new file and puts it in the segment's place.
 * Returns the new segment, or undefined when the segment left the log meanwhile (its file is then
 * removed again). Throws `WAL_CLOSED` when the log closes meanwhile, `WAL_NO_SPACE` /
 * `WAL_IO_ERROR` when the disk fails (the log goes on with the old segment).
 */
async function rewrite(context: RewriteContext, segment: Segment, judgement: Judgement): Promise<Segment | undefined> {
  const { storage, dir, indexIntervalBytes } = context.options;
  const tempPath = segment.path + REWRITE_SUFFIX;
  const seed = context.segments.active.frameSeed || segment.frameSeed || newFrameSeed();
  const segmentId = randomBytes(16).toString('hex');
  const replacement = new Segment(dir, segment.baseOffset, segmentId, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES);
  replacement.frameSeed = seed;
  replacement.hasGaps = true;
  let file: StorageFile | undefined;
  let isIndexWritten = false;
  let isRenamed = false;
  let producers: readonly ProducerState[] = [];
  try {
    if (storage.exists(tempPath)) storage.unlink(tempPath);
    const out = storage.open(tempPath, 'create-new');
    file = out;
    const header = encodeSegmentHeader({
      formatVersion: SEGMENT_FORMAT_VERSION,
      baseOffset: segment.baseOffset,
      segmentId,
      createdAtMs: context.options.clock(),
      frameSeed: seed,
      compactedNextOffset: segment.nextOffset,
    });
    let pending: Buffer[] = [header];
    let pendingBytes = header.length;
    let position = 0;
    const writePending = (): void => {
      if (pendingBytes === 0) return;
      out.writev(pending, position);
      context.io.writes++;
      context.io.bytesWritten += pendingBytes;
      position += pendingBytes;
      pending = [];
      pendingBytes = 0;
    };
    let ordinal = 0;
    const bounds: number[] = [];
    const isRead = await scanFrames(context, segment, (buf, rel, frameHeader) => {
      boundsOf(segment, buf, rel, frameHeader, bounds);
      const count = frameHeader.recordCount;
      // Each run of consecutive kept records becomes one frame: its records' bytes copied as they
      // are, the batch's timestamp and leader epoch, sync lag 0 (no durability claim: a sealed
      // segment needs none, recovery reads claims only in the active segment).
      const flushRun = (from: number, to: number): void => {
        const frame = encodeFrameOfRecordBytes(buf.subarray(bounds[from]!, bounds[to]!), to - from);
        const baseOffset = frameHeader.baseOffset + from;
        stampFrame(frame, baseOffset, frameHeader.timestamp, frameHeader.leaderEpoch, 0, seed);
        replacement.noteFrame(position + pendingBytes, frame.length, baseOffset, to - from, frameHeader.timestamp, indexIntervalBytes);
        pending.push(frame);
        pendingBytes += frame.length;
      };
      let runStart = -1;
      for (let i = 0; i < count; i++) {
        if (judgement.keeps[ordinal++] === 1) {
          if (runStart < 0) runStart = i;
        } else if (runStart >= 0) {
          flushRun(runStart, i);
          runStart = -1;
        }
      }
      if (runStart >= 0) flushRun(runStart, count);
      if (pendingBytes >= CHUNK_BYTES) writePending();
    });
    writePending();
    if (!isRead) {
      file = undefined;
      return discard(context, out, tempPath);
    }
    if (ordinal !== judgement.records) throw new Error(`segment ${segment.name} changed while it was compacted (${ordinal} records, judged ${judgement.records})`);
    replacement.nextOffset = segment.nextOffset;
    replacement.fileSize = replacement.dataEnd;
    await out.datasyncAsync();
    context.io.fsyncs++;
    checkOpen(context);
    if (!context.segments.includes(segment)) {
      file = undefined;
      return discard(context, out, tempPath);
    }
    out.close();
    file = undefined;
    context.syncLog();
    // From here on synchronous: no append, read, deletion or close comes in between. The index
    // first, so that a crash before the segment's rename leaves the old segment with an index of
    // another segment id, which recovery detects and rebuilds from the old segment, never a new
    // segment with an index that does not hold its producer table.
    // Without the old index, no table as of this segment's end is known: none is saved (a retry of
    // an append of this segment may then be written again) rather than the head's, whose entries
    // may name appends a torn tail later cuts.
    producers = savedProducers(context, segment) ?? [];
    writeFileDurably(storage, segment.indexPath, segment.indexPath + TEMP_SUFFIX, encodeSegmentIndex(replacement, producers));
    isIndexWritten = true;
    context.io.fsyncs++;
    storage.rename(tempPath, segment.path);
    isRenamed = true;
    context.segments.replace(segment, replacement);
    try {
      storage.syncDir(dir);
    } catch (error) {
      // The rewritten segment is in place (the log reads it now): the rewrite is done. Which of the
      // two files a power cut leaves is not known; either is a valid segment of the log, and an
      // open finds the index of the other one stale and rebuilds it.
      context.options.onWarning(`compacting ${segment.name}: the directory sync after the swap failed; the rewritten segment is in place`, error);
    }
    return replacement;
  } catch (error) {
    try {
      file?.close();
      if (!isRenamed && storage.exists(tempPath)) storage.unlink(tempPath);
      // The old segment stays: give it its own index back (else the next open rebuilds it).
      if (isIndexWritten && !isRenamed) {
        writeFileDurably(storage, segment.indexPath, segment.indexPath + TEMP_SUFFIX, encodeSegmentIndex(segment, producers));
      }
    } catch {
      // Debris, or an index of the other file: both are dealt with at the next open.
    }
    if (error instanceof WalError) throw error;
    throw walErrorFromStorage(error, `compacting ${segment.name} failed; the log goes on with the segment as it was`, { segment: segment.name });
  }
}

/** Gives up a rewrite whose segment left the log meanwhile: closes and removes its file. */
function discard(context: RewriteContext, file: StorageFile, tempPath: string): undefined {
  file.close();
  context.options.storage.unlink(tempPath);
  return undefined;
}

/** The producer table of `segment`'s index file as it is on disk, if it is the segment's own. */
function savedProducers(context: RewriteContext, segment: Segment): readonly ProducerState[] | undefined {
  const { storage } = context.options;
  if (!storage.exists(segment.indexPath)) return undefined;
  const decoded = decodeIndexFile(storage.readFile(segment.indexPath));
  return decoded.ok && decoded.index.segmentId === segment.segmentId ? decoded.index.producers : undefined;
}

/**
 * Reads every frame of sealed `segment` in chunks, checking each, and hands each whole frame to
 * `onFrame` (its bytes are valid during the call only). Resolves false when the segment was
 * deleted before the scan could start. Throws `WAL_CORRUPTION` for a frame that does not check
 * out, `WAL_IO_ERROR` when the file cannot be read, `WAL_CLOSED` when the log closes meanwhile.
 */
async function scanFrames(context: RewriteContext, segment: Segment, onFrame: (buf: Buffer, rel: number, header: FrameHeader) => void): Promise<boolean> {
  const file = context.segments.files.acquire(segment);
  if (file === undefined) return false;
  try {
    let position = SEGMENT_HEADER_BYTES;
    let chunkBytes = CHUNK_BYTES;
    while (position < segment.dataEnd) {
      checkOpen(context);
      const length = Math.min(segment.dataEnd - position, chunkBytes);
      const buf = Buffer.allocUnsafe(length);
      const got = await file.read(buf, length, position).catch((error: unknown) => {
        throw walErrorFromStorage(error, `reading ${segment.name} failed`, { segment: segment.name, position });
      });
      context.io.reads++;
      context.io.bytesRead += got;
      let rel = 0;
      while (rel < got) {
        const check = checkFrame(buf, rel, got, segment.frameSeed);
        if (check.kind === 'incomplete' && position + rel + check.length <= segment.dataEnd) break;
        if (check.kind !== 'ok') {
          const reason = check.kind === 'invalid' ? check.reason : check.kind === 'zero' ? 'zeros inside the log' : 'frame runs past the end';
          throw new WalError('WAL_CORRUPTION', `corruption in segment ${segment.name} at byte ${position + rel} (${reason})`, {
            segment: segment.name,
            position: position + rel,
            reason,
          });
        }
        onFrame(buf, rel, check.header);
        rel += align8(check.header.length);
      }
      // A frame longer than the chunk: read the whole of it next time.
      if (rel === 0) chunkBytes = Math.max(chunkBytes, align8(buf.readUInt32LE(0)));
      position += rel;
    }
    return true;
  } finally {
    segment.release();
  }
}

/** Sets `out` to the byte bounds of the records of a checked frame (`recordBounds`); a payload that does not parse is corruption. */
function boundsOf(segment: Segment, buf: Buffer, rel: number, header: FrameHeader, out: number[]): void {
  const defect = recordBounds(buf, rel, header, out);
  if (defect !== undefined) {
    throw new WalError('WAL_CORRUPTION', `undecodable frame in segment ${segment.name} (${defect})`, { segment: segment.name, reason: defect, offset: header.baseOffset });
  }
}

/** Decodes every record of a checked frame into `out`; a payload that does not parse is corruption. */
function decodeFrame(segment: Segment, buf: Buffer, rel: number, header: FrameHeader, out: WalRecord[]): void {
  const result = decodeRecords(buf, rel, header, 0, header.recordCount, out);
  if (typeof result === 'string') {
    throw new WalError('WAL_CORRUPTION', `undecodable frame in segment ${segment.name} (${result})`, { segment: segment.name, reason: result, offset: header.baseOffset });
  }
}

function checkOpen(context: RewriteContext): void {
  if (!context.isOpen()) throw new WalError('WAL_CLOSED', 'the log is closed', {});
}
