/**
 * wald as a library: the log engine on its own.
 *
 * ```ts
 * import { Wal } from 'wald';
 * ```
 */
export { Wal } from './engine/wal.js';
export type { LogTail } from './engine/log-tail.js';
export type { EpochStart } from './codec/epoch-history-file.js';
export type { EpochEnd } from './engine/epoch-history.js';
export type { FrameRun, RangeHash, RawFrameInfo } from './engine/frame-reader.js';
export type { FrameRejection } from './engine/frame-run-check.js';
export { createEmptyLog, type EmptyLogOptions } from './engine/empty-log.js';
export { truncateLogFrom, TRUNCATED_DIR, type LogTruncation } from './engine/truncate-log-from.js';
export type { JudgedSegment, SegmentRewritePlan, SegmentRewriteResult } from './engine/segment-rewriter.js';
export { WAL_DEFAULTS, type WalOptions } from './engine/wal-options.js';
export type { WalObserver } from './engine/wal-observer.js';
export type * from './engine/types.js';
export { WalError, isWalError, ERROR_CODES, type ErrorCode, type ErrorDetails } from './errors.js';
export type { Storage, StorageFile, StorageLock, OpenMode } from './storage/storage.js';
export { StorageError } from './storage/storage.js';
export { NodeStorage } from './storage/node-storage.js';
export { MemoryStorage, type MemoryStorageOptions, type MemoryStorageStats } from './storage/memory-storage.js';
export { STORAGE_KINDS, type StorageKind } from './engine/storage-options.js';
