import { createHash, randomInt, type Hash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import {
  encodeSnapshotEntryHeader,
  encodeSnapshotHeader,
  encodeSnapshotTrailer,
  SNAPSHOT_ENTRY_HEADER_BYTES,
  SNAPSHOT_TEMP_SUFFIX,
  type SnapshotHeader,
} from '../codec/snapshot-file.js';
import { formatSnapshotId, parseSnapshotId, snapshotFileName } from '../codec/snapshot-id.js';
import { walErrorFromStorage } from '../engine/storage-errors.js';
import { StorageError, type Storage, type StorageFile } from '../storage/storage.js';
import { toByteString, writeByteString } from './byte-string.js';
import { snapshotInfoOf, type SnapshotInfo } from './snapshot-info.js';
import type { StateView, StoredChange } from './state-view.js';

/**
 * Default of {@link SnapshotWriteOptions.chunkBytes}: 256 KiB. Measured on 1M keys: the same write
 * rate as 1 MiB chunks, half the longest event-loop turn (docs/state.md).
 */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Keys scanned between two yields to the event loop while finding an incremental snapshot's changes. */
const SCANNED_KEYS_PER_TURN = 16_384;

/** Which snapshot to write of a view. */
export type SnapshotRequest =
  | { readonly type: 'full' }
  /** The changes since `base` (a full or incremental snapshot of the same state, at or below the view). */
  | { readonly type: 'incremental'; readonly base: SnapshotInfo }
  /** One key's state. */
  | { readonly type: 'point'; readonly key: Uint8Array };

/** How to write a snapshot. */
export interface SnapshotWriteOptions {
  /** gzip-compress the body (the header and trailer stay plain). Default false. */
  readonly compress?: boolean | undefined;
  /** zlib level 0..9 when compressing. Default 1: the state's values are often already dense. */
  readonly compressionLevel?: number | undefined;
  /** Bytes of entries encoded between two yields to the event loop. Default 256 KiB. */
  readonly chunkBytes?: number | undefined;
  /** Clock for the creation time (ms since the epoch). Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** A snapshot just written: its listing row and its checksum. */
export interface WrittenSnapshot extends SnapshotInfo {
  /** SHA-256 of the file before its trailer, lowercase hex (the trailer holds it too). */
  readonly checksum: string;
}

/**
 * Writes a snapshot of `view` into `dir` (created, and its creation made durable, if missing) as
 * `<id>.snap`: `<id>.snap.tmp` -> header, body in chunks, trailer -> `fdatasync` -> rename ->
 * directory fsync. After a crash at any point the directory holds the old snapshots, plus either
 * nothing new or the complete new file (and maybe a `.snap.tmp` left over, which readers ignore).
 *
 * The body is encoded `chunkBytes` at a time, with a turn of the event loop between chunks, so
 * appends, reads and tails go on during the write; at most a chunk (and zlib's window) is held in
 * memory. The view never changes, so the file is the state as of `view.nextOffset`.
 *
 * Throws `RangeError` for a point snapshot of a key the view does not hold, or an incremental
 * whose base the view cannot list changes since (`view.canListChangesSince(base.walOffset)`), and
 * `WalError` `WAL_NO_SPACE` / `WAL_IO_ERROR` when the disk fails (the temp file is removed when it
 * still can be).
 */
export async function writeSnapshot(
  storage: Storage,
  dir: string,
  view: StateView,
  request: SnapshotRequest,
  options: SnapshotWriteOptions = {},
): Promise<WrittenSnapshot> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`options.chunkBytes must be a positive integer, got ${chunkBytes}`);
  const level = options.compressionLevel ?? 1;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`options.compressionLevel must be an integer in 0..9, got ${level}`);
  const body = await planBody(view, request);
  const header: SnapshotHeader = {
    type: request.type,
    isCompressed: options.compress === true,
    walOffset: view.nextOffset,
    putCount: body.putCount,
    tombstoneCount: body.tombstoneCount,
    createdMs: createdMsAfter(request, (options.now ?? Date.now)(), view.nextOffset),
    nonce: randomInt(0x1_0000_0000),
    base: request.type === 'incremental' ? baseParts(request.base) : undefined,
  };
  const headerBytes = encodeSnapshotHeader(header);
  const id = formatSnapshotId(header);
  const path = join(dir, snapshotFileName(id));
  const tempPath = join(dir, `${id}${SNAPSHOT_TEMP_SUFFIX}`);
  let file: StorageFile | undefined;
  try {
    ensureDirectory(storage, dir);
    file = storage.open(tempPath, 'create-new');
    const sink = new HashingSink(file);
    sink.write(headerBytes);
    const chunks = encodeBody(body.items(), chunkBytes);
    if (header.isCompressed) {
      // The pipeline reports its own AbortError when the last stage fails; the disk's error is the one to throw.
      let writeError: unknown;
      await pipeline(Readable.from(chunks), createGzip({ level, chunkSize: 256 * 1024 }), async (compressed: AsyncIterable<Buffer>) => {
        try {
          for await (const chunk of compressed) sink.write(chunk);
        } catch (error) {
          writeError = error;
          throw error;
        }
      }).catch((error: unknown) => {
        throw writeError ?? error;
      });
    } else {
      for await (const chunk of chunks) sink.write(chunk);
    }
    const checksum = sink.digest();
    sink.writeUnhashed(encodeSnapshotTrailer(sink.bytes - headerBytes.length, checksum));
    await file.datasyncAsync();
    const sizeBytes = sink.bytes;
    file.close();
    file = undefined;
    storage.rename(tempPath, path);
    storage.syncDir(dir);
    return { ...snapshotInfoOf(header, path, sizeBytes), checksum: Buffer.from(checksum).toString('hex') };
  } catch (error) {
    if (file !== undefined) removeTemp(storage, file, tempPath);
    throw error instanceof StorageError ? walErrorFromStorage(error, `writing snapshot ${id}`, { snapshot: id }) : error;
  }
}

/** What goes in a body: the counts for the header, and the entries in key order. */
interface BodyPlan {
  readonly putCount: number;
  readonly tombstoneCount: number;
  readonly items: () => Iterator<readonly [string, StoredChange]>;
}

async function planBody(view: StateView, request: SnapshotRequest): Promise<BodyPlan> {
  if (request.type === 'full') return { putCount: view.size, tombstoneCount: 0, items: () => view.entries() };
  if (request.type === 'point') {
    const key = toByteString(request.key);
    const entry = view.getStored(key);
    if (entry === undefined) throw new RangeError('request.key: the view holds no such key');
    return { putCount: 1, tombstoneCount: 0, items: () => [[key, entry] as const][Symbol.iterator]() };
  }
  const since = request.base.walOffset;
  if (request.base.type === 'point') throw new RangeError('request.base: a point snapshot cannot be a base');
  if (!view.canListChangesSince(since)) {
    throw new RangeError(`request.base: the view (at ${view.nextOffset}, changes known since ${view.changesKnownSince}) cannot list changes since ${since}`);
  }
  // The header comes first and holds the counts, so the changes are found in a first pass over
  // the view (with turns of the event loop), keeping references to them (not their bytes) for the
  // second.
  const keys: string[] = [];
  const changes: StoredChange[] = [];
  let tombstoneCount = 0;
  for (const item of view.changesSince(since, SCANNED_KEYS_PER_TURN)) {
    if (item === undefined) {
      await nextTurn();
      continue;
    }
    keys.push(item[0]);
    changes.push(item[1]);
    if (item[1].value === undefined) tombstoneCount++;
  }
  return { putCount: keys.length - tombstoneCount, tombstoneCount, items: () => pairsOf(keys, changes) };
}

function* pairsOf(keys: readonly string[], changes: readonly StoredChange[]): Generator<readonly [string, StoredChange]> {
  for (let i = 0; i < keys.length; i++) yield [keys[i]!, changes[i]!];
}

function createdMsAfter(request: SnapshotRequest, now: number, walOffset: number): number {
  if (request.type !== 'incremental' || request.base.walOffset !== walOffset) return now;
  return Math.max(now, request.base.createdMs + 1);
}

function baseParts(base: SnapshotInfo): SnapshotHeader['base'] {
  const parts = parseSnapshotId(base.id);
  if (parts === undefined) throw new RangeError(`request.base.id: not a snapshot id: ${base.id}`);
  return parts;
}

/** Encodes entries into chunks of about `chunkBytes`, yielding to the event loop after each. */
async function* encodeBody(items: Iterator<readonly [string, StoredChange]>, chunkBytes: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(chunkBytes);
  let position = 0;
  for (let step = items.next(); step.done !== true; step = items.next()) {
    const [key, change] = step.value;
    const value = change.value ?? '';
    const needed = SNAPSHOT_ENTRY_HEADER_BYTES + key.length + value.length;
    if (position + needed > buf.length) {
      if (position > 0) {
        yield buf.subarray(0, position);
        await nextTurn();
      }
      // A fresh buffer per chunk: the consumer (zlib) may still hold the previous one.
      buf = Buffer.allocUnsafe(Math.max(chunkBytes, needed));
      position = 0;
    }
    position = encodeSnapshotEntryHeader(buf, position, change.value === undefined ? 'tombstone' : 'put', key.length, value.length, change.offset, change.timestamp);
    position += writeByteString(buf, key, position);
    position += writeByteString(buf, value, position);
  }
  if (position > 0) yield buf.subarray(0, position);
}

/** Appends to a file at its end while hashing what it writes. */
class HashingSink {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(private readonly file: StorageFile) {}

  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.writeUnhashed(chunk);
  }

  /** Writes bytes the checksum does not cover (the trailer). */
  writeUnhashed(chunk: Buffer): void {
    this.file.writev([chunk], this.bytes);
    this.bytes += chunk.length;
  }

  /** The SHA-256 of everything written so far (call once). */
  digest(): Buffer {
    return this.hash.digest();
  }
}

/** Creates `dir` when missing and makes its entry durable in its parent. */
function ensureDirectory(storage: Storage, dir: string): void {
  if (storage.exists(dir)) return;
  storage.mkdirp(dir);
  storage.syncDir(dirname(dir));
}

function removeTemp(storage: Storage, file: StorageFile, tempPath: string): void {
  try {
    file.close();
  } catch {
    // Already failing; the close error adds nothing.
  }
  try {
    storage.unlink(tempPath);
  } catch {
    // A dead disk or process: the temp file stays as debris, which readers ignore.
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
