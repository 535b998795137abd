import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeSegmentHeader, SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_BYTES, type SegmentHeader } from '../codec/segment-header.js';
import { WalError } from '../errors.js';
import { StorageError, type StorageFile } from '../storage/storage.js';
import { Segment } from './segment.js';
import { PREALLOCATED_FILE, TEMP_SUFFIX } from './segment-name.js';
import type { IoStats } from './types.js';
import type { ResolvedWalOptions } from './wal-options.js';

/**
 * Creates a segment durably, its frames checksummed from `frameSeed` (the log's, from
 * {@link newFrameSeed}): temp file (the preallocated one when given) -> header -> fdatasync ->
 * rename (over a segment file of that name, if any) -> directory fsync. Returns the segment with
 * its open file attached. With `target` (a follower writing its leader's segment) the header is
 * the target's bytes, as they are: its id, seed and creation time, not new ones.
 *
 * Throws `StorageError` (the caller maps it) when a step before the rename fails (the temp file
 * is then removed when possible), and {@link SegmentInPlaceError} when a step after the rename
 * fails (the directory fsync, the file's size: the segment is then in the directory).
 */
export function createSegmentFile(
  options: ResolvedWalOptions,
  baseOffset: number,
  prepared: StorageFile | undefined,
  io: IoStats,
  frameSeed: number,
  target?: SegmentTarget,
): { segment: Segment; file: StorageFile } {
  const { storage, dir } = options;
  if (target !== undefined && (target.header.baseOffset !== baseOffset || target.header.frameSeed !== frameSeed)) {
    throw new RangeError(`segment ${target.header.segmentId} starts at ${target.header.baseOffset}, not at ${baseOffset}`);
  }
  const segmentId = target?.header.segmentId ?? randomBytes(16).toString('hex');
  const header = target?.bytes ?? encodeSegmentHeader({ formatVersion: SEGMENT_FORMAT_VERSION, baseOffset, segmentId, createdAtMs: options.clock(), frameSeed });
  const segment = new Segment(dir, baseOffset, segmentId, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES);
  segment.frameSeed = frameSeed;
  const tempPath = prepared === undefined ? segment.path + TEMP_SUFFIX : join(dir, PREALLOCATED_FILE);
  const file = prepared ?? storage.open(tempPath, 'create-new');
  let isInPlace = false;
  try {
    file.writev([header], 0);
    file.datasync();
    io.writes++;
    io.bytesWritten += header.length;
    io.fsyncs++;
    storage.rename(tempPath, segment.path);
    isInPlace = true;
    storage.syncDir(dir);
    segment.fileSize = Math.max(file.size(), SEGMENT_HEADER_BYTES);
  } catch (error) {
    try {
      file.close();
      if (!isInPlace) storage.unlink(tempPath);
    } catch {
      // Debris is removed at the next open.
    }
    if (isInPlace) throw new SegmentInPlaceError(segment.name, error);
    throw error;
  }
  segment.attach(file);
  return { segment, file };
}

/**
 * The directory fsync after a new segment was renamed into place failed: the segment (its header,
 * synced) is in the directory under its name, and may or may not stay there after a power cut.
 * A log that goes on writing into the segment before it would then leave an empty segment that no
 * longer follows it (the next open refuses the gap): a writer that meets this stops writing.
 */
export class SegmentInPlaceError extends WalError {
  constructor(segmentName: string, cause: unknown) {
    const code = cause instanceof StorageError ? cause.code : 'EUNKNOWN';
    const step = cause instanceof StorageError && cause.syscall !== '' ? cause.syscall : 'a step';
    super('WAL_IO_ERROR', `${step} after renaming the new segment ${segmentName} into place failed: ${code}`, { segment: segmentName, errno: code }, { cause });
  }
}

/** A segment of another log to write as it is (a follower's copy of its leader's): its header, decoded and as bytes. */
export interface SegmentTarget {
  readonly bytes: Buffer;
  readonly header: SegmentHeader;
}

/**
 * Zero-fills a file of `segmentSizeBytes` under a temp name and syncs it, off the main thread, so
 * that rotation finds a segment whose blocks are already allocated: syncing overwritten blocks does
 * not have to commit a new file size. On failure the file is removed (when possible) and the
 * promise rejects with the `StorageError`.
 */
export async function prepareSegmentFile(options: ResolvedWalOptions): Promise<StorageFile> {
  const { storage, dir, segmentSizeBytes } = options;
  const path = join(dir, PREALLOCATED_FILE);
  let file: StorageFile | undefined;
  try {
    if (storage.exists(path)) storage.unlink(path);
    file = storage.open(path, 'create-new');
    await file.fillZeros(0, segmentSizeBytes);
    await file.datasyncAsync();
    return file;
  } catch (error) {
    try {
      file?.close();
      if (storage.exists(path)) storage.unlink(path);
    } catch {
      // Debris is removed at the next open.
    }
    throw error;
  }
}

/** A random frame checksum seed for a log's segments (never 0, which stands for format version 1). */
export function newFrameSeed(): number {
  return randomBytes(4).readUInt32LE(0) || 1;
}
